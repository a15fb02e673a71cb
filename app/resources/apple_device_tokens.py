"""APNs device tokens as Poparazzi registers them: upsert by token, tied to the caller."""

import functools
import re
import uuid

from sqlalchemy import or_, select, update
from sqlalchemy.orm import make_transient_to_detached

from app.extensions import db
from app.jsonapi.errors import Forbidden, InvalidAttribute, InvalidQueryParameter, NotFound
from app.jsonapi.pagination import paginate
from app.models import Channel, CredentialKind, Device
from app.models.types import utcnow
from app.upsert import insert_for

HEX = re.compile(r"^[0-9a-f]*$")
MIN_TOKEN_LENGTH = 64
MAX_TOKEN_LENGTH = 200
IOS = Channel.IOS_PUSH.value
OWNER_COLUMNS = ("user_id", "session_id", "is_invalidated", "invalidated_reason",
                 "invalidated_at", "updated_at")
UPDATABLE = ("bundle_id", "bundle_version", "build_number", "is_production", "is_voip")
SORTABLE = {"created_at": Device.created_at, "updated_at": Device.updated_at}
FILTERABLE = {"bundle_id": Device.bundle_id, "is_production": Device.is_production,
              "is_voip": Device.is_voip, "is_invalidated": Device.is_invalidated}
DEFAULT_ORDER = (("created_at", False),)


def normalise_token(raw, pointer="/data/id"):
    """Apple's variable-length hex token in canonical form: no spaces or ``<>``, lowercase."""
    token = raw.translate({ord(c): None for c in " <>"}).lower()
    if not HEX.match(token) or len(token) % 2:
        raise InvalidAttribute("A device token is an even number of hexadecimal digits.",
                               pointer=pointer, code="INVALID_DEVICE_TOKEN")
    if not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise InvalidAttribute(
            f"A device token has {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} hex digits.",
            pointer=pointer, code="INVALID_DEVICE_TOKEN")
    return token


def register_token(principal, token, attributes):
    """Create or refresh the token and tie it to the caller's session and user.

    One ``INSERT … ON CONFLICT`` statement: racing registrations of one token end in
    one row whose owner is whoever wrote last.
    """
    now = utcnow()
    invalidated = bool(attributes.get("is_invalidated", False))
    given = tuple(name for name in UPDATABLE if name in attributes)
    row = {
        "id": uuid.uuid4(), "channel": IOS, "token": token, "created_at": now,
        "is_production": True, "is_voip": False,
        **{name: attributes[name] for name in given},
        "user_id": principal.user_id,
        "session_id": principal.credential.id
        if principal.kind == CredentialKind.SESSION else None,
        "is_invalidated": invalidated,
        "invalidated_reason": "ClientReported" if invalidated else None,
        "invalidated_at": now if invalidated else None,
        "updated_at": now,
    }
    statement = _upsert(db.session.get_bind().dialect.name, given)
    device = _as_model(db.session.execute(statement, row).one())
    db.session.commit()
    return device


def _as_model(row):
    """The returned row as a Device of this session, without reading it again. (A Core
    statement: the ORM's bulk-insert path costs a third more CPU on the hottest
    request.)"""
    device = Device(**row._mapping)
    make_transient_to_detached(device)
    db.session.add(device)
    return device


@functools.cache
def _upsert(dialect_name, given):
    """The upsert for one set of client-given attributes, built once: re-registration
    updates the owner, validity and what the client sent, never ``created_at``."""
    table = Device.__table__
    statement = insert_for(dialect_name, table)
    return statement.on_conflict_do_update(
        index_elements=["channel", "token"],
        set_={name: statement.excluded[name] for name in (*OWNER_COLUMNS, *given)},
    ).returning(*table.columns)


def detach_token(token):
    """Poparazzi's logout: the device stops belonging to any session or user."""
    db.session.execute(
        update(Device).where(Device.channel == IOS, Device.token == token)
        .values(user_id=None, session_id=None, updated_at=utcnow())
    )
    db.session.commit()


def _owned_by(principal):
    clauses = [Device.session_id == principal.credential.id]
    if principal.user_id is not None:
        clauses.append(Device.user_id == principal.user_id)
    return or_(*clauses)


def get_token(principal, token, options=()):
    device = db.session.scalar(
        select(Device).options(*options)
        .where(Device.channel == IOS, Device.token == token, _owned_by(principal))
    )
    if device is None:
        raise NotFound("You have no such device token.")
    return device


def find_own_token(principal, raw_token):
    return get_token(principal, normalise_token(raw_token, pointer=None))


def list_tokens(principal, query, options=()):
    return _page(_owned_by(principal), query, options)


def page_of_user(principal, user, query, options=()):
    """A user's tokens, for the user themself only."""
    _require_self(principal, user)
    return _page(Device.user_id == user.id, query, options)


def detach_from_user(principal, user, raw_tokens):
    """Stop pushing to some of your devices: they stay registered but belong to nobody."""
    _require_self(principal, user)
    wanted = [normalise_token(raw, pointer=f"/data/{index}/id")
              for index, raw in enumerate(raw_tokens)]
    db.session.execute(
        update(Device)
        .where(Device.channel == IOS, Device.user_id == user.id, Device.token.in_(wanted))
        .values(user_id=None, session_id=None, updated_at=utcnow())
    )
    db.session.commit()


def _require_self(principal, user):
    if principal.user_id != user.id:
        raise Forbidden("Only the user themself may see or change their devices.")


def _page(owner_clause, query, options):
    statement = select(Device).options(*options).where(Device.channel == IOS, owner_clause)
    for name, value in query.filters.items():
        statement = statement.where(FILTERABLE[name] == _filter_value(name, value))
    order = [(SORTABLE[key], descending) for key, descending in query.sort or DEFAULT_ORDER]
    return paginate(db.session, statement, [*order, (Device.id, False)], query)


def _filter_value(name, value):
    if name == "bundle_id":
        return value
    if value not in ("true", "false"):
        raise InvalidQueryParameter(f"filter[{name}] is true or false.",
                                    parameter=f"filter[{name}]")
    return value == "true"


def delete_token(principal, token):
    device = get_token(principal, token)
    db.session.delete(device)
    db.session.commit()
