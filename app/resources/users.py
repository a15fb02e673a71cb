"""Users: profiles anyone signed in may read; only the user may change their own."""

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.jsonapi.errors import Conflict, Forbidden, NotFound
from app.jsonapi.pagination import paginate
from app.models import User

SORTABLE = {"created_at": User.created_at, "updated_at": User.updated_at}
DEFAULT_ORDER = (("created_at", False),)


def get_user(user_id):
    user = None
    parsed = _parse_id(user_id)
    if parsed is not None:
        user = db.session.get(User, parsed)
    if user is None:
        raise NotFound(f"There is no user {user_id}.")
    return user


def _parse_id(user_id):
    try:
        return uuid.UUID(user_id)
    except ValueError:
        return None


def update_user(principal, user_id, attributes):
    user = get_user(user_id)
    if principal.user_id != user.id:
        raise Forbidden("You may change only your own profile.")
    if attributes.get("username") is not None:
        attributes["username"] = attributes["username"].lower()
    for name, value in attributes.items():
        setattr(user, name, value)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("That username is taken.", pointer="/data/attributes/username",
                       code="USERNAME_TAKEN") from exc
    return user


def list_users(query, options=()):
    statement = select(User).options(*options)
    if "username" in query.filters:
        statement = statement.where(User.username == query.filters["username"].lower())
    order = [(SORTABLE[key], descending) for key, descending in query.sort or DEFAULT_ORDER]
    return paginate(db.session, statement, [*order, (User.id, False)], query)
