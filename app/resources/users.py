"""Users: profiles anyone signed in may read; only the user may change their own."""

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.database.upsert import insert_for
from app.errors import Conflict, NotFound, Where
from app.extensions import db
from app.formats.ids import uuid_id
from app.models import User
from app.models.types import utcnow
from app.resources.listing import Filter, eager_loading, list_page
from app.security import policies

FILTERS = {"username": Filter("username", User.username, str.lower)}
ORDERS = {"created_at": User.created_at, "updated_at": User.updated_at}
DEFAULT_ORDER = (("created_at", False),)


def get_user(user_id, load=()):
    parsed = uuid_id(user_id)
    user = None if parsed is None else db.session.get(
        User, parsed, options=eager_loading(User, load))
    if user is None:
        raise NotFound(f"There is no user {user_id}.", field="id", where=Where.URL)
    return user


def owner_of_phone(phone_number):
    """The user with this phone number, made if there is none. Racing callers get one
    user: the insert that loses does nothing."""
    now = utcnow()
    db.session.execute(insert_for(db.session.get_bind(), User).values(
        id=uuid.uuid4(), phone_number=phone_number, badges=[], is_private=False,
        created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["phone_number"]))
    return db.session.scalar(select(User).where(User.phone_number == phone_number))


def new_user():
    user = User(badges=[], is_private=False)
    db.session.add(user)
    db.session.flush()
    return user


def update_user(principal, user_id, changes):
    user = get_user(user_id)
    policies.require_self(principal, user.id, "You may change only your own profile.")
    if changes.get("username") is not None:
        changes = {**changes, "username": changes["username"].lower()}
    for name, value in changes.items():
        setattr(user, name, value)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("That username is taken.", field="username",
                       code="USERNAME_TAKEN") from exc
    return user


def list_users(listing):
    return list_page(db.session, select(User), listing, filters=FILTERS, orders=ORDERS,
                     default_order=DEFAULT_ORDER, unique=User.id)
