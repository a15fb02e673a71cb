"""The registration's SQL, built once per shape and cached (its values are parameters), and
the shapes of one registered row that feed it.

Every statement here is a Core statement on the table: the ORM's bulk paths would rebuild
it on each request.
"""

import functools
import uuid

from flask import current_app
from sqlalchemy import Integer, and_, bindparam, case, delete, or_, select, true, union_all

from app.database.engine import OWN_TRANSACTION
from app.database.upsert import insert_for
from app.models import CredentialKind, Device
from app.resources.devices.tokens import CLIENT_REPORTED, UPDATABLE, default_environment

# What a registration changes on an existing row, beside what the client sent.
OWNER_COLUMNS = ("user_id", "session_id", "is_invalidated", "invalidated_reason",
                 "invalidated_at", "last_seen_at", "updated_at")
NEW = "new_"  # the names of ``insert_parameters``, apart from their columns'
MOMENTS = ("created_at", "last_seen_at", "updated_at")  # a new row's: the same moment
CALLER = "caller_"  # the credential's columns in ``upsert_for_secret``'s row


# -- the shapes of one row ------------------------------------------------------------


def rewritten_columns(user_id, session_id, attributes, now):
    """The columns a registration writes on the device it lands on, new or not."""
    invalidated = bool(attributes.get("is_invalidated", False))
    return {
        **{name: attributes[name] for name in UPDATABLE if name in attributes},
        "user_id": user_id,
        "session_id": session_id,
        "is_invalidated": invalidated,
        "invalidated_reason": CLIENT_REPORTED if invalidated else None,
        "invalidated_at": now if invalidated else None,
        "last_seen_at": now,
        "updated_at": now,
    }


def new_row(channel, token, attributes, now, user_id, session_id):
    """Every column of a device registered now, as its INSERT writes it."""
    return {"id": uuid.uuid4(), "channel": channel, "token": token, "created_at": now,
            "environment": default_environment(channel), "is_voip": False,
            **rewritten_columns(user_id, session_id, attributes, now)}


def insert_parameters(given):
    """The values a registration's INSERT writes, by column, as bound parameters. Inside a
    CTE an INSERT takes no values from the execution: each is a parameter, named apart from
    its column (``NEW``), typed as its column (psycopg casts it: the SELECT of an INSERT …
    SELECT gives a parameter no type of its own). The moment of registration is one
    parameter."""
    table = Device.__table__
    now = bindparam(NEW + "now", type_=Device.updated_at.type)
    return {name: now if name in MOMENTS else bindparam(NEW + name, type_=table.c[name].type)
            for name in dict.fromkeys(("id", "channel", "token", "created_at", "environment",
                                       "is_voip", *OWNER_COLUMNS, *given))}


def insert_arguments(row):
    """The values of ``insert_parameters`` for a ``new_row``, with the caps'."""
    return {NEW + name: value for name, value in row.items() if name not in MOMENTS} | {
        NEW + "now": row["updated_at"]} | caps(taken=1)


# -- the upserts ----------------------------------------------------------------------


@functools.cache
def upsert(dialect_name, given, signed=False):
    """The upsert for one set of client-given attributes, built once (``signed``: for a
    channel whose endpoints have a signing secret)."""
    return _upsert_statement(dialect_name, given, signed=signed)


def same_owner(user_id, session_id, new_user_id, new_session_id):
    """Whether a device owned by ``user_id``/``session_id`` stays with the same owner when
    registered by ``new_user_id``/``new_session_id`` (SQL expressions): the same user, or,
    for a device of no user, the same session (which may have logged in since). A device
    of nobody (detached at a logout) has no owner to stay with."""
    return or_(and_(user_id.is_not(None), user_id == new_user_id),
               and_(user_id.is_(None), session_id.is_not(None), session_id == new_session_id))


def keeps_owner(user_id, session_id, new_user_id, new_session_id) -> bool:
    """``same_owner`` for values at hand."""
    if user_id is not None:
        return user_id == new_user_id
    return session_id is not None and session_id == new_session_id


def _upsert_statement(dialect_name, given, values=None, signed=False):
    """Re-registration updates the owner, validity and what the client sent, never
    ``created_at``; it returns no row for a token that must move instead (see
    ``registration``). Its values are the execution's parameters, or ``values`` (by column,
    or a SELECT of labelled columns). ``signed``: an endpoint that moves to another owner
    loses its signing secret (the one its former owner knows); ``signing.py`` issues the
    new owner a new one."""
    table = Device.__table__
    statement = insert_for(dialect_name, table)
    if isinstance(values, dict):
        statement = statement.values(values)
    elif values is not None:
        statement = statement.from_select(list(values.selected_columns.keys()), values)
    changed = {name: statement.excluded[name] for name in (*OWNER_COLUMNS, *given)}
    if signed:
        excluded = statement.excluded
        changed["signing_secret"] = case(
            (same_owner(table.c.user_id, table.c.session_id, excluded.user_id,
                        excluded.session_id), table.c.signing_secret), else_=None)
    return statement.on_conflict_do_update(
        index_elements=["channel", "token"],
        set_=changed,
        # an installation of another user (or of nobody) keeps its fingerprint: its token
        # is moved by the registration's claiming path instead
        where=or_(table.c.fingerprint.is_(None), table.c.user_id == statement.excluded.user_id),
    ).returning(*table.columns)


@functools.cache
def upsert_within_caps(given, for_session, for_user, signed=False):
    """``upsert`` (PostgreSQL) with the caps' DELETE beside it in one statement."""
    values = insert_parameters(given)
    registered, capped = _within_caps(
        _upsert_statement("postgresql", given, values, signed), for_session, for_user)
    # a statement its caller commits at once (register): no transaction of its own
    return select(registered).add_cte(capped).execution_options(**{OWN_TRANSACTION: True})


@functools.lru_cache(maxsize=64)
def upsert_for_secret(given, kinds, caller):
    """``upsert_within_caps`` whose owners are the holder of a secret, looked up by the
    ``caller`` select (``credentials.live_by_secret``, one object per configuration): the
    device is written only for a credential of ``kinds``, and the row returned carries the
    credential's columns (named ``CALLER`` + column) beside the device's (all null when
    none was written); no row when no live credential has the secret."""
    caller = caller.cte("caller")
    values = insert_parameters(given)
    values["user_id"] = caller.c.user_id
    values["session_id"] = case((caller.c.kind == CredentialKind.SESSION, caller.c.id))
    rows = select(*(value.label(name) for name, value in values.items())).where(
        caller.c.kind.in_(sorted(kinds)))
    registered, capped = _within_caps(_upsert_statement("postgresql", given, rows),
                                      for_session=True, for_user=True)
    return select(*(column.label(CALLER + column.name) for column in caller.c),
                  registered).select_from(caller.outerjoin(registered, true())).add_cte(
        capped).execution_options(**{OWN_TRANSACTION: True})


def _within_caps(upsert, for_session, for_user):
    """The ``registered`` CTE of ``upsert`` (returning its row) and a ``capped`` CTE that
    keeps the row's owners within their caps. Both see the table as it was before the
    statement: the registered row, newest of its owner's, is left out of the count and
    takes one place under each cap (``caps(taken=1)``); when no row is registered nothing
    is deleted."""
    registered = upsert.cte("device")  # short: see _beyond_newest
    # the owners' other devices: each subquery joins the registered row, so none is
    # deleted when no row is registered
    capped = delete(Device.__table__).where(_beyond_caps(
        registered.c.session_id if for_session else None,
        registered.c.user_id if for_user else None, lambda id_: id_ != registered.c.id))
    return registered, capped.cte("capped")


# -- the caps -------------------------------------------------------------------------


def caps(taken=0):
    """Each owner's cap less the places ``taken`` already."""
    config = current_app.config
    return {"session_cap": config["DEVICES_PER_SESSION_MAX"] - taken,
            "user_cap": config["DEVICES_PER_USER_MAX"] - taken}


def cap_arguments(user_id, session_id):
    """The values of ``caps_delete``'s parameters for these owners."""
    return {"cap_session_id": session_id, "cap_user_id": user_id} | caps()


@functools.cache
def caps_delete(for_session, for_user):
    """The caps DELETE, built once for each kind of owner (its values are parameters)."""
    return delete(Device.__table__).where(_beyond_caps(
        bindparam("cap_session_id", type_=Device.session_id.type) if for_session else None,
        bindparam("cap_user_id", type_=Device.user_id.type) if for_user else None))


def _beyond_caps(session, user, counted=None):
    """Devices beyond the cap of the session ``session`` and of the user ``user`` (SQL
    expressions of their ids; None: no such owner), among those whose id meets
    ``counted(id)``."""
    devices = Device.__table__
    beyond = []
    if session is not None:
        beyond.append(_beyond_newest("session_cap", "session_id", session, counted))
    if user is not None:
        # counting only what the session's cap keeps, so no device goes for nothing: the
        # session's are named once, as a CTE both read
        if beyond:
            beyond[0] = select(beyond[0].cte("beyond_session_cap"))
        beyond.append(_beyond_newest("user_cap", "user_id", user, counted, *beyond))
    if len(beyond) == 1:
        return devices.c.id.in_(beyond[0])
    # One IN of both, never an OR of two: PostgreSQL answers that OR by reading every row
    # of the table, on every registration.
    return devices.c.id.in_(union_all(beyond[0], select(beyond[1].subquery().c.id)))


def _beyond_newest(cap, owner_column, owner, counted, *spared):
    """The devices whose ``owner_column`` is ``owner`` past the owner's newest ``cap``, not
    counting those in ``spared``. Its own scan of the table, under a short name of its own:
    the hottest statement stays within what psycopg caches the conversion of (4,096
    characters)."""
    devices = Device.__table__.alias("d").c
    conditions = [devices[owner_column] == owner, *(devices.id.not_in(ids) for ids in spared)]
    if counted is not None:
        conditions.append(counted(devices.id))
    newest_first = (devices.updated_at.desc(), devices.created_at.desc(), devices.id.desc())
    return select(devices.id).where(*conditions).order_by(*newest_first).offset(
        bindparam(cap, type_=Integer))
