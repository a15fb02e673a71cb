"""The device registry: app installations, their push endpoints, who they belong to, and
every rule about them.

A device row is one app installation, found by its push endpoint (``channel`` + ``token``,
unique per channel) or by the ``fingerprint`` its app chose (unique per user). It is tied to
the credential that registered it (a session, until it ends) and to that credential's user.
Every wire format that shows devices is a view of these functions.
"""

import functools
import re
import uuid

from flask import current_app
from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from app import policies, security
from app.database import OWN_TRANSACTION
from app.errors import Forbidden, InvalidAttribute, NotAuthorized, NotFound, Where
from app.extensions import db
from app.ids import uuid_id
from app.models import (
    APNS_CHANNELS,
    Channel,
    Credential,
    CredentialKind,
    Device,
    Environment,
)
from app.models.types import utcnow
from app.resources import credentials
from app.resources.listing import Filter, boolean, eager_loading, list_page
from app.upsert import insert_for

HEX = re.compile(r"[0-9a-f]*\Z")
MIN_APNS_TOKEN_LENGTH = 64
MAX_APNS_TOKEN_LENGTH = 200
# Google documents no maximum for an FCM registration token (today's are about 160
# characters); the bound keeps the unique index on (channel, token) small with room to grow.
MAX_FCM_TOKEN_LENGTH = 1024
FCM_TOKEN = re.compile(r"[\x21-\x7e]+\Z")  # printable ASCII, no whitespace
# What only APNs devices have: ignored when a device on another channel registers.
APNS_ONLY = ("environment", "is_voip", "live_activity_token")
# What clients may set on a device (beyond its token and fingerprint).
UPDATABLE = ("bundle_id", "app_version", "build_number", "environment", "is_voip",
             "device_model", "os_version", "time_zone", "live_activity_token")
# What a registration changes on an existing row, beside what the client sent.
OWNER_COLUMNS = ("user_id", "session_id", "is_invalidated", "invalidated_reason",
                 "invalidated_at", "last_seen_at", "updated_at")
CLIENT_REPORTED = "ClientReported"
NEW = "new_"  # the parameters of the values a registration writes (``_upsert_within_caps``)
MOMENTS = ("created_at", "last_seen_at", "updated_at")  # a new row's: the same moment
CALLER = "caller_"  # the credential's columns in ``_upsert_by_secret``'s row


def environment(text):
    if text not in tuple(Environment):
        raise ValueError("sandbox or production")
    return text


FILTERS = {declared.name: declared for declared in (
    Filter("bundle_id", Device.bundle_id),
    Filter("channel", Device.channel),
    Filter("environment", Device.environment, environment),
    Filter("is_voip", Device.is_voip, boolean),
    Filter("is_invalidated", Device.is_invalidated, boolean),
)}
ORDERS = {"created_at": Device.created_at, "updated_at": Device.updated_at,
          "last_seen_at": Device.last_seen_at}
DEFAULT_ORDER = (("created_at", False),)
LATEST_SEEN_FIRST = (("last_seen_at", True),)


def apns_token(raw, what="A device token"):
    """Apple's variable-length hex token in canonical form: no spaces or ``<>``, lowercase.
    ``what`` names the kind of token in the error."""
    token = raw.translate({ord(c): None for c in " <>"}).lower()
    if not HEX.match(token) or len(token) % 2:
        raise ValueError(f"{what} is an even number of hexadecimal digits.")
    if not MIN_APNS_TOKEN_LENGTH <= len(token) <= MAX_APNS_TOKEN_LENGTH:
        raise ValueError(f"{what} has {MIN_APNS_TOKEN_LENGTH} to "
                         f"{MAX_APNS_TOKEN_LENGTH} hex digits.")
    return token


def _fcm_token(raw):
    """An FCM registration token is opaque: kept exactly as sent, within bounds."""
    if not FCM_TOKEN.match(raw):
        raise ValueError("An FCM registration token is printable ASCII without whitespace.")
    if len(raw) > MAX_FCM_TOKEN_LENGTH:
        raise ValueError(f"An FCM registration token has at most {MAX_FCM_TOKEN_LENGTH} "
                         "characters.")
    return raw


TOKEN_RULES = {Channel.IOS_PUSH: apns_token, Channel.FCM: _fcm_token}


def normalise_token(channel, raw, *, field="token", where=Where.ATTRIBUTE):
    """A channel's token in canonical form, or an error naming where it was sent."""
    try:
        return TOKEN_RULES[channel](raw)
    except ValueError as exc:
        raise InvalidAttribute(str(exc), field=field, where=where,
                               code="INVALID_DEVICE_TOKEN") from exc


# -- registration ---------------------------------------------------------------------


def register_from(principal, attributes):
    """A registration as sent: the push endpoint (``channel`` + ``token``) and the
    ``fingerprint`` among the attributes, at least one of the two."""
    attributes = dict(attributes)
    channel, token, fingerprint = (attributes.pop(name, None)
                                   for name in ("channel", "token", "fingerprint"))
    if token is None and fingerprint is None:
        raise InvalidAttribute("Send a token (with its channel), a fingerprint, or both.",
                               field="token")
    if token is not None and channel is None:
        raise InvalidAttribute("A token needs its channel.", field="channel")
    if token is None and channel is not None:
        raise InvalidAttribute("A channel is the token's: send the token too.", field="token")
    return register(principal, channel, token, attributes, fingerprint)


def register(principal, channel, raw_token, attributes, fingerprint=None):
    """Create or refresh a device and tie it to the caller's session and user: (device,
    created). It is found by its token, else by its ``fingerprint`` among the user's
    devices; a token that was another device's moves to this one.

    Without a fingerprint (the hot path) it is one ``INSERT … ON CONFLICT`` statement:
    racing registrations of one token end in one row whose owner is whoever wrote last. A
    logout racing it either detaches the row afterwards or removes the session first, and
    then the row's foreign key refuses it.
    """
    if fingerprint is not None and principal.user_id is None:
        raise Forbidden(_FINGERPRINT_NEEDS_USER, field="fingerprint")
    token = None if raw_token is None else normalise_token(channel, raw_token)
    attributes = _sealed(_for_channel(channel, attributes))
    try:
        device, created, capped = (_upsert_by_token(principal, channel, token, attributes)
                                   if fingerprint is None else (None, False, False))
        if device is None:
            device, created = _claim(principal, channel, token, fingerprint, attributes)
    except IntegrityError:
        db.session.rollback()
        _require_credential(principal)
        raise
    if not capped:
        keep_within_caps(user_id=principal.user_id, session_id=principal.session_id)
    db.session.commit()
    return device, created


def registers_by_secret():
    """Whether ``register_by_secret`` can run here: it needs PostgreSQL's data-modifying
    WITH."""
    return db.session.get_bind().dialect.name == "postgresql"


def register_by_secret(secret, kinds, channel, raw_token, attributes):
    """``register`` for whoever holds the credential with this ``secret``, looked up by the
    same statement: the hottest request in one round trip. (credential, device, created):
    ``credential`` is ``credentials.find_live``'s row for the secret, or None; the device
    is registered only when the credential is of one of ``kinds``, and is None otherwise
    or when the token is an installation's that ``register`` must move (``_claim``)."""
    now = utcnow()
    token = normalise_token(channel, raw_token)
    attributes = _sealed(_for_channel(channel, attributes))
    given = tuple(name for name in UPDATABLE if name in attributes)
    values = _new_row(channel, token, attributes, now, user_id=None, session_id=None)
    statement = _upsert_by_secret(given, frozenset(kinds), credentials.live_by_secret())
    try:
        row = db.session.connection().execute(statement, {
            **_new_parameters(values), **credentials.by_secret(secret, now)}).one_or_none()
    except IntegrityError:
        db.session.rollback()
        if credentials.find_live(secret) is None:  # it went meanwhile (a logout)
            raise NotAuthorized() from None
        raise
    if row is None:
        return None, None, False
    fields = row._mapping
    credential = credentials.Live(*(fields[CALLER + name] for name in credentials.Live._fields))
    credentials.note_use(credential, now)
    if fields["id"] is None:
        return credential, None, False
    device = _as_model({column.name: fields[column.name] for column in Device.__table__.c})
    db.session.commit()
    return credential, device, device.created_at == now


def _for_channel(channel, attributes):
    """The attributes that apply to the channel: an FCM device has no APNs environment,
    VoIP token or Live Activity token (its ``environment`` stays null)."""
    if channel is None or channel in APNS_CHANNELS:
        return attributes
    return {name: value for name, value in attributes.items() if name not in APNS_ONLY}


def _default_environment(channel):
    return Environment.PRODUCTION if channel in APNS_CHANNELS else None


_FINGERPRINT_NEEDS_USER = ("A fingerprint names a device among its user's: log in before "
                           "sending one.")


def _registration(user_id, session_id, attributes, now):
    """The columns a registration writes on a device, whoever had it before."""
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


def _new_row(channel, token, attributes, now, user_id, session_id):
    """Every column of a device registered now, as its INSERT writes it."""
    return {"id": uuid.uuid4(), "channel": channel, "token": token, "created_at": now,
            "environment": _default_environment(channel), "is_voip": False,
            **_registration(user_id, session_id, attributes, now)}


def _upsert_by_token(principal, channel, token, attributes):
    """The one-statement registration: (device, created, whether the caps were kept), or
    (None, False, False) when the token is an installation's (a device with a fingerprint)
    that is not the caller's user's — moving it is ``_claim``'s work. On PostgreSQL the
    same statement keeps the owner's devices within their caps: one round trip fewer on the
    hottest request."""
    now = utcnow()
    given = tuple(name for name in UPDATABLE if name in attributes)
    row = _new_row(channel, token, attributes, now, principal.user_id, principal.session_id)
    dialect = db.session.get_bind().dialect.name
    within_caps = dialect == "postgresql"
    if within_caps:
        statement = _upsert_within_caps(given, principal.session_id is not None,
                                        principal.user_id is not None)
        row = _new_parameters(row)
    else:
        statement = _upsert(dialect, given)
    # a Core statement: the session's connection runs it without the ORM's execute
    returned = db.session.connection().execute(statement, row).one_or_none()
    if returned is None:
        return None, False, False
    device = _as_model(returned._mapping)
    return device, device.created_at == now, within_caps


CLAIM_ATTEMPTS = 3


def _claim(principal, channel, token, fingerprint, attributes):
    """Registration that may move a token between devices, in a SAVEPOINT. Claims of one
    token or one installation wait for each other (``_serialise_claims``), so the one
    that waited finds the row the other wrote; a one-statement registration of the token
    (which takes no such lock) may still insert it first: then a unique constraint fails
    the try, and the next one finds that row."""
    _serialise_claims(principal, channel, token, fingerprint)
    for _ in range(CLAIM_ATTEMPTS - 1):
        try:
            with db.session.begin_nested():
                return _claim_once(principal, channel, token, fingerprint, attributes)
        except IntegrityError:
            pass  # a racing insert won: the next try finds its row
    with db.session.begin_nested():
        return _claim_once(principal, channel, token, fingerprint, attributes)


def _serialise_claims(principal, channel, token, fingerprint):
    """On PostgreSQL, a transaction-scoped advisory lock on the token and on the
    installation, in one order: without it, of many claims racing for one new token each
    retry can lose to another's insert again. (SQLite's BEGIN IMMEDIATE already runs one
    writer at a time.)"""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    keys = [f"token {channel} {token}" if token is not None else None,
            f"installation {principal.user_id} {fingerprint}" if fingerprint is not None
            else None]
    for key in sorted(key for key in keys if key is not None):
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def _claim_once(principal, channel, token, fingerprint, attributes):
    """Lock the device with this token and the user's device with this fingerprint (one
    statement, in id order); the fingerprint's device is this installation (its id stays:
    credentials hang off it), and the token's device gives the token up. A token's device
    without a fingerprint is adopted when the fingerprint has none."""
    by_token, by_fingerprint = _locked(principal, channel, token, fingerprint)
    device = by_fingerprint
    if by_token is not None and by_token is not by_fingerprint:
        if by_fingerprint is None and _adoptable(by_token, principal, fingerprint):
            device = by_token
        else:
            _give_up_token(by_token)
    now = utcnow()
    created = device is None
    if created:
        device = Device(id=uuid.uuid4(), created_at=now, environment=Environment.PRODUCTION,
                        is_voip=False)
        db.session.add(device)
    values = _registration(principal.user_id, principal.session_id, attributes, now)
    if token is not None:
        values |= {"channel": channel, "token": token}
        if channel not in APNS_CHANNELS:
            values |= {"environment": None, "is_voip": False, "live_activity_token": None}
    if fingerprint is not None:
        values["fingerprint"] = fingerprint
    for name, value in values.items():
        setattr(device, name, value)
    db.session.flush()
    return device, created


def _locked(principal, channel, token, fingerprint):
    wanted = []
    if token is not None:
        wanted.append(and_(Device.channel == channel, Device.token == token))
    if fingerprint is not None:
        wanted.append(and_(Device.user_id == principal.user_id,
                           Device.fingerprint == fingerprint))
    rows = db.session.scalars(select(Device).where(or_(*wanted)).order_by(Device.id)
                              .with_for_update().execution_options(populate_existing=True))
    by_token = by_fingerprint = None
    for row in rows:
        if token is not None and (row.channel, row.token) == (channel, token):
            by_token = row
        if fingerprint is not None and (row.user_id, row.fingerprint) == (
                principal.user_id, fingerprint):
            by_fingerprint = row
    return by_token, by_fingerprint


def _adoptable(device, principal, fingerprint):
    """May the registration take over this device (rather than only its token)?"""
    if device.fingerprint is None:
        return True
    return fingerprint is None and device.user_id is not None \
        and device.user_id == principal.user_id


def _give_up_token(device):
    """A device loses its token to another: a bare token row goes, an installation (which
    credentials may hang off) stays without a push endpoint."""
    if device.fingerprint is None:
        db.session.delete(device)
    else:
        device.channel = device.token = None
        device.updated_at = utcnow()
    db.session.flush()  # before the token is written elsewhere: it is unique


def _sealed(attributes):
    """The attributes as stored: the Live Activity token encrypted."""
    secret = attributes.get("live_activity_token")
    if secret is None:
        return attributes
    return {**attributes, "live_activity_token": security.seal(secret)}


def installation(user_id, fingerprint):
    """The user's device with this fingerprint, made when there is none (an auth token is
    issued for a device the app names this way). One upsert: racing requests get one row."""
    now = utcnow()
    statement = insert_for(db.session.get_bind(), Device).values(
        id=uuid.uuid4(), user_id=user_id, fingerprint=fingerprint, is_voip=False,
        is_invalidated=False, last_seen_at=now, created_at=now, updated_at=now,
    ).on_conflict_do_update(index_elements=["user_id", "fingerprint"],
                            set_={"last_seen_at": now}).returning(Device.id)
    device_id = db.session.execute(statement).scalar_one()
    keep_within_caps(user_id=user_id)
    return db.session.get(Device, device_id)


def update_installation(principal, fingerprint, attributes):
    """Change the metadata of the user's device with this fingerprint, made when there is
    none; its push endpoint, owner and validity stay as they are."""
    if principal.user_id is None:
        raise Forbidden(_FINGERPRINT_NEEDS_USER, field="fingerprint")
    device = installation(principal.user_id, fingerprint)
    return update_owned(principal, str(device.id), attributes)


def _require_credential(principal):
    """After a refused write: a credential that went meanwhile (a logout) is a 401."""
    held = select(Credential.id).where(Credential.id == principal.credential_id)
    if db.session.scalar(held) is None:
        raise NotAuthorized()


def _as_model(columns):
    """The returned row (its columns by name) as a Device of this session, without reading
    it again. (A Core statement: the ORM's bulk-insert path costs a third more CPU on the
    hottest request.)"""
    device = Device.__mapper__.class_manager.new_instance()
    device.__dict__.update(columns)  # as loaded: no change to write back
    make_transient_to_detached(device)
    if db.session.identity_map.get(inspect(device).key) is not None:
        return db.session.merge(device, load=False)  # this session holds the row already
    db.session.add(device)
    return device


@functools.cache
def _upsert(dialect_name, given):
    """The upsert for one set of client-given attributes, built once."""
    return _upsert_statement(dialect_name, given)


def _upsert_statement(dialect_name, given, values=None):
    """Re-registration updates the owner, validity and what the client sent, never
    ``created_at``; it returns no row for a token ``_claim`` must move. Its values are the
    execution's parameters, or ``values`` (by column, or a SELECT of labelled columns)."""
    table = Device.__table__
    statement = insert_for(dialect_name, table)
    if isinstance(values, dict):
        statement = statement.values(values)
    elif values is not None:
        statement = statement.from_select(list(values.selected_columns.keys()), values)
    return statement.on_conflict_do_update(
        index_elements=["channel", "token"],
        set_={name: statement.excluded[name] for name in (*OWNER_COLUMNS, *given)},
        # an installation of another user (or of nobody) keeps its fingerprint: its token
        # is moved by _claim instead
        where=or_(table.c.fingerprint.is_(None), table.c.user_id == statement.excluded.user_id),
    ).returning(*table.columns)


@functools.cache
def _upsert_within_caps(given, for_session, for_user):
    """``_upsert`` (PostgreSQL) with ``keep_within_caps``'s DELETE beside it in one
    statement."""
    values = _new_values(given)
    registered, capped = _within_caps(_upsert_statement("postgresql", given, values),
                                      for_session, for_user)
    # a statement its caller commits at once (register): no transaction of its own
    return select(registered).add_cte(capped).execution_options(**{OWN_TRANSACTION: True})


@functools.lru_cache(maxsize=64)
def _upsert_by_secret(given, kinds, caller):
    """``_upsert_within_caps`` whose owners are the holder of a secret, looked up by the
    ``caller`` select (``credentials.live_by_secret``, one object per configuration): the
    device is written only for a credential of ``kinds``, and the row returned carries the
    credential's columns (named ``CALLER`` + column) beside the device's (all null when
    none was written); no row when no live credential has the secret."""
    caller = caller.cte("caller")
    values = _new_values(given)
    values["user_id"] = caller.c.user_id
    values["session_id"] = case((caller.c.kind == CredentialKind.SESSION, caller.c.id))
    rows = select(*(value.label(name) for name, value in values.items())).where(
        caller.c.kind.in_(sorted(kinds)))
    registered, capped = _within_caps(_upsert_statement("postgresql", given, rows),
                                      for_session=True, for_user=True)
    return select(*(column.label(CALLER + column.name) for column in caller.c),
                  registered).select_from(caller.outerjoin(registered, true())).add_cte(
        capped).execution_options(**{OWN_TRANSACTION: True})


def _new_values(given):
    """The values a registration's INSERT writes, by column. Inside a CTE an INSERT takes
    no values from the execution: each is a parameter, named apart from its column
    (``NEW``), typed as its column (psycopg casts it: the SELECT of an INSERT … SELECT
    gives a parameter no type of its own). The moment of registration is one parameter."""
    table = Device.__table__
    now = bindparam(NEW + "now", type_=Device.updated_at.type)
    return {name: now if name in MOMENTS else bindparam(NEW + name, type_=table.c[name].type)
            for name in dict.fromkeys(("id", "channel", "token", "created_at", "environment",
                                       "is_voip", *OWNER_COLUMNS, *given))}


def _new_parameters(row):
    """``_new_values``' parameters for a new row (``_new_row``), with the caps'."""
    return {NEW + name: value for name, value in row.items() if name not in MOMENTS} | {
        NEW + "now": row["updated_at"]} | _caps(taken=1)


def _within_caps(upsert, for_session, for_user):
    """The ``registered`` CTE of ``upsert`` (returning its row) and a ``capped`` CTE that
    keeps the row's owners within their caps. Both see the table as it was before the
    statement: the registered row, newest of its owner's, is left out of the count and
    takes one place under each cap (``_caps(taken=1)``); when no row is registered nothing
    is deleted."""
    registered = upsert.cte("device")  # short: see _beyond_newest
    # the owners' other devices: each subquery joins the registered row, so none is
    # deleted when no row is registered
    capped = delete(Device.__table__).where(_beyond_caps(
        registered.c.session_id if for_session else None,
        registered.c.user_id if for_user else None, lambda id_: id_ != registered.c.id))
    return registered, capped.cte("capped")


# -- ownership ------------------------------------------------------------------------


def attach_session_devices(session_id, user_id):
    """A session logged in: its devices now belong to its user."""
    db.session.execute(update(Device).where(Device.session_id == session_id)
                       .values(user_id=user_id))
    keep_within_caps(user_id=user_id)


def keep_within_caps(*, user_id=None, session_id=None):
    """Delete, in one statement, a session's devices beyond its newest
    ``DEVICES_PER_SESSION_MAX`` and a user's beyond their newest ``DEVICES_PER_USER_MAX``:
    no caller can make the devices they own (and every page and count of them) grow
    without end."""
    if user_id is None and session_id is None:
        return
    db.session.execute(_caps_delete(session_id is not None, user_id is not None),
                       _cap_values(user_id, session_id))


def _cap_values(user_id, session_id):
    """The caps' parameters for these owners."""
    return {"cap_session_id": session_id, "cap_user_id": user_id} | _caps()


def _caps(taken=0):
    """Each owner's cap less the places ``taken`` already."""
    config = current_app.config
    return {"session_cap": config["DEVICES_PER_SESSION_MAX"] - taken,
            "user_cap": config["DEVICES_PER_USER_MAX"] - taken}


@functools.cache
def _caps_delete(for_session, for_user):
    """The caps DELETE, built once for each kind of owner (its values are parameters). A
    Core statement on the table: the ORM's bulk-delete path would rebuild it each time."""
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
    # of the table (half a second at a million devices, on every registration).
    return devices.c.id.in_(union_all(beyond[0], select(beyond[1].subquery().c.id)))


def _beyond_newest(cap, owner_column, owner, counted, *spared):
    """The devices whose ``owner_column`` is ``owner`` past the owner's newest ``cap``, not
    counting those in ``spared``. Its
    own scan of the table, under a short name of its own: the hottest statement stays
    within what psycopg caches the conversion of (4,096 characters)."""
    devices = Device.__table__.alias("d").c
    conditions = [devices[owner_column] == owner, *(devices.id.not_in(ids) for ids in spared)]
    if counted is not None:
        conditions.append(counted(devices.id))
    newest_first = (devices.updated_at.desc(), devices.created_at.desc(), devices.id.desc())
    return select(devices.id).where(*conditions).order_by(*newest_first).offset(
        bindparam(cap, type_=Integer))


def detach(*conditions):
    """The matching devices stop belonging to any session or user; they stay registered."""
    db.session.execute(update(Device).where(*conditions)
                       .values(user_id=None, session_id=None, updated_at=utcnow()))


def find(channel, raw_token):
    """The device registered with this token, whoever owns it; None for a malformed token
    or one never registered."""
    try:
        token = normalise_token(channel, raw_token)
    except InvalidAttribute:
        return None
    return db.session.scalar(select(Device).where(Device.channel == channel,
                                                  Device.token == token))


def detach_ids_from_user(principal, user, raw_ids):
    """The same, the devices named by their ids (a malformed one names its item)."""
    policies.require_self(principal, user.id, _ONLY_SELF)
    wanted = [_device_id(raw, field=str(index), where=Where.ITEM)
              for index, raw in enumerate(raw_ids)]
    detach(Device.user_id == user.id, Device.id.in_(wanted))
    db.session.commit()


def detach_from_user(principal, user, channel, raw_tokens):
    """Stop pushing to some of your devices: they stay registered but belong to nobody."""
    policies.require_self(principal, user.id, _ONLY_SELF)
    wanted = [normalise_token(channel, raw, field=str(index), where=Where.ITEM)
              for index, raw in enumerate(raw_tokens)]
    detach(Device.channel == channel, Device.user_id == user.id, Device.token.in_(wanted))
    db.session.commit()


_ONLY_SELF = "Only the user themself may see or change their devices."


def owned_by(principal):
    """The devices the caller may see: their session's, and their user's."""
    return or_(false(), *_owners(principal))


def _owners(principal):
    """``owned_by`` as its alternatives, which a page walks one by one."""
    clauses = [Device.session_id == principal.session_id] if principal.session_id else []
    if principal.user_id is not None:
        clauses.append(Device.user_id == principal.user_id)
    return clauses


# -- reading and deleting -------------------------------------------------------------


def get_owned(principal, channel, raw_token, *, where=Where.URL, load=()):
    token = normalise_token(channel, raw_token, field="id", where=where)
    statement = select(Device).where(Device.channel == channel, Device.token == token,
                                     owned_by(principal))
    device = db.session.scalar(statement.options(*eager_loading(Device, load)))
    if device is None:
        raise NotFound(_NO_SUCH_TOKEN)
    return device


_NO_SUCH_TOKEN = "You have no such device token."
_NO_SUCH_DEVICE = "You have no such device."


def _device_id(raw, *, field="id", where=Where.URL):
    """A device id as a UUID. In a URL a malformed one names no device of the caller's:
    404, like another user's; in a list of ids it names its item."""
    key = uuid_id(raw)
    if key is not None:
        return key
    if where == Where.URL:
        raise NotFound(_NO_SUCH_DEVICE)
    raise InvalidAttribute("Not a device id.", field=field, where=where)


def get_owned_by_id(principal, raw_id, *, load=()):
    statement = select(Device).where(Device.id == _device_id(raw_id), owned_by(principal))
    device = db.session.scalar(statement.options(*eager_loading(Device, load)))
    if device is None:
        raise NotFound(_NO_SUCH_DEVICE)
    return device


def find_owned_by_id(principal, raw_id):
    """The caller's device with this id, or None."""
    try:
        return get_owned_by_id(principal, raw_id)
    except NotFound:
        return None


def update_owned(principal, raw_id, attributes):
    """Change a device's metadata: one statement carrying its ownership test, so a device
    moved or deleted meanwhile is a 404, never another user's row changed."""
    values = {name: _unless_fcm(name, value)
              for name, value in _sealed(attributes).items() if name in UPDATABLE}
    statement = (update(Device)
                 .where(Device.id == _device_id(raw_id), owned_by(principal))
                 .values(**values, updated_at=utcnow()).returning(Device)
                 .execution_options(populate_existing=True))
    device = db.session.scalar(statement)
    if device is None:
        raise NotFound(_NO_SUCH_DEVICE)
    db.session.commit()
    return device


def _unless_fcm(name, value):
    """An APNs-only attribute is left as it is on an FCM device (see ``_for_channel``)."""
    if name not in APNS_ONLY:
        return value
    column = getattr(Device, name)
    return case((Device.channel == Channel.FCM, column), else_=literal(value, column.type))


def delete_owned_by_id(principal, raw_id):
    """Forget a device: one statement carrying its ownership test."""
    deleted = db.session.execute(delete(Device).where(
        Device.id == _device_id(raw_id), owned_by(principal))).rowcount
    if deleted != 1:
        raise NotFound(_NO_SUCH_DEVICE)
    db.session.commit()


def list_devices(principal, listing, *, with_endpoint=False):
    """Every device the caller may see, on every channel: the latest seen first
    (``with_endpoint``: only those with a push endpoint)."""
    endpoint = (Device.channel.is_not(None),) if with_endpoint else ()
    return _page(*endpoint, listing=listing, filters=FILTERS,
                 default_order=LATEST_SEEN_FIRST, any_of=_owners(principal))


def list_owned(principal, channel, listing, filters=FILTERS):
    """The caller's devices on one channel; ``filters`` as a view names them."""
    return _page(Device.channel == channel, listing=listing, filters=filters,
                 any_of=_owners(principal))


def list_of_user(principal, user, channel, listing, filters=FILTERS,
                 default_order=DEFAULT_ORDER):
    """A user's devices on one channel (every channel when ``channel`` is None), for the
    user themself only."""
    policies.require_self(principal, user.id, _ONLY_SELF)
    on_channel = () if channel is None else (Device.channel == channel,)
    return _page(*on_channel, Device.user_id == user.id, listing=listing, filters=filters,
                 default_order=default_order)


def _page(*conditions, listing, filters, default_order=DEFAULT_ORDER, any_of=None):
    return list_page(db.session, select(Device).where(*conditions), listing,
                     filters=filters, orders=ORDERS, default_order=default_order,
                     unique=Device.id, any_of=any_of)


def delete_owned(principal, channel, raw_token):
    """One statement that carries its own ownership test: a registration racing the
    delete moves the token first (and nothing is deleted) or comes after it."""
    token = normalise_token(channel, raw_token, field="id", where=Where.URL)
    deleted = db.session.execute(delete(Device).where(
        Device.channel == channel, Device.token == token, owned_by(principal))).rowcount
    if deleted != 1:
        raise NotFound(_NO_SUCH_TOKEN)
    db.session.commit()


# -- housekeeping ---------------------------------------------------------------------


def purge_stale(cutoff):
    """Delete devices invalidated before ``cutoff``, or not seen since it: how many went.
    Their deliveries stay in the ledger, without a device."""
    stale = or_(Device.last_seen_at < cutoff,
                Device.is_invalidated.is_(True) & (Device.invalidated_at < cutoff))
    return db.session.execute(delete(Device).where(stale),
                              execution_options={"synchronize_session": False}).rowcount
