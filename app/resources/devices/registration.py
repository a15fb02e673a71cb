"""Registering a device: its push endpoint and its installation tied to the caller.

The paths, one per way a registration arrives:

- ``register``: the general path, for a caller already known. Without a fingerprint it is
  one upsert (``_register_by_upsert``); with one, or for a token that is another user's
  installation, it locks and moves rows (``_register_by_claim``).
- ``register_from_attributes``: ``register`` for the JSON:API document, where the endpoint
  and fingerprint are among the attributes.
- ``authenticate_and_register``: the hottest request, on PostgreSQL
  (``can_authenticate_and_register``): the caller's credential is looked up by the
  upsert statement itself.
- ``installation`` / ``update_installation``: the device a fingerprint names, made when
  missing, without touching its push endpoint.
"""

import uuid

from sqlalchemy import and_, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from app.database.locks import advisory_locks
from app.database.upsert import insert_for
from app.errors import Forbidden, InvalidAttribute, NotAuthorized
from app.extensions import db
from app.models import APNS_CHANNELS, Channel, Credential, Device, Environment
from app.models.types import utcnow
from app.resources import credentials
from app.resources.devices import statements
from app.resources.devices.ownership import keep_within_caps, update_owned
from app.resources.devices.statements import CALLER
from app.resources.devices.tokens import UPDATABLE, for_channel, normalise_token, sealed


def register_from_attributes(principal, attributes):
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
    attributes = sealed(for_channel(channel, attributes))
    try:
        device, created, capped = (_register_by_upsert(principal, channel, token, attributes)
                                   if fingerprint is None else (None, False, False))
        if device is None:
            device, created = _register_by_claim(principal, channel, token, fingerprint,
                                                 attributes)
    except IntegrityError:
        db.session.rollback()
        _require_credential(principal)
        raise
    if not capped:
        keep_within_caps(user_id=principal.user_id, session_id=principal.session_id)
    return device, created


def can_authenticate_and_register():
    """Whether ``authenticate_and_register`` can run here: it needs PostgreSQL's
    data-modifying WITH."""
    return db.session.get_bind().dialect.name == "postgresql"


def authenticate_and_register(secret, kinds, channel, raw_token, attributes):
    """``register`` for whoever holds the credential with this ``secret``, looked up by the
    same statement: the hottest request in one round trip. (credential, device, created):
    ``credential`` is ``credentials.find_live``'s row for the secret, or None; the device
    is registered only when the credential is of one of ``kinds``, and is None otherwise
    or when the token is an installation's that ``register`` must move
    (``_register_by_claim``)."""
    now = utcnow()
    token = normalise_token(channel, raw_token)
    attributes = sealed(for_channel(channel, attributes))
    given = tuple(name for name in UPDATABLE if name in attributes)
    new = statements.new_row(channel, token, attributes, now, user_id=None, session_id=None)
    statement = statements.upsert_for_secret(given, frozenset(kinds),
                                             credentials.live_by_secret())
    arguments = statements.insert_arguments(new) | credentials.by_secret(secret, now)
    try:
        row = db.session.connection().execute(statement, arguments).one_or_none()
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
    return credential, device, device.created_at == now


_FINGERPRINT_NEEDS_USER = ("A fingerprint names a device among its user's: log in before "
                           "sending one.")


def _register_by_upsert(principal, channel, token, attributes):
    """The one-statement registration: (device, created, whether the caps were kept), or
    (None, False, False) when the token is an installation's (a device with a fingerprint)
    that is not the caller's user's — moving it is ``_register_by_claim``'s work. On
    PostgreSQL the same statement keeps the owner's devices within their caps: one round
    trip fewer on the hottest request."""
    now = utcnow()
    given = tuple(name for name in UPDATABLE if name in attributes)
    row = statements.new_row(channel, token, attributes, now, principal.user_id,
                             principal.session_id)
    dialect = db.session.get_bind().dialect.name
    within_caps = dialect == "postgresql"
    signed = channel == Channel.WEBHOOK
    if within_caps:
        statement = statements.upsert_within_caps(given, principal.session_id is not None,
                                                  principal.user_id is not None, signed)
        row = statements.insert_arguments(row)
    else:
        statement = statements.upsert(dialect, given, signed)
    # a Core statement: the session's connection runs it without the ORM's execute
    returned = db.session.connection().execute(statement, row).one_or_none()
    if returned is None:
        return None, False, False
    device = _as_model(returned._mapping)
    return device, device.created_at == now, within_caps


CLAIM_ATTEMPTS = 3


def _register_by_claim(principal, channel, token, fingerprint, attributes):
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
    keys = [f"token {channel} {token}" if token is not None else None,
            f"installation {principal.user_id} {fingerprint}" if fingerprint is not None
            else None]
    advisory_locks(db.session.connection(), (key for key in keys if key is not None))


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
            _forget_secret_unless_kept(device, principal)
        else:
            _give_up_token(by_token)
    now = utcnow()
    created = device is None
    if created:
        device = Device(id=uuid.uuid4(), created_at=now, environment=Environment.PRODUCTION,
                        is_voip=False)
        db.session.add(device)
    values = statements.rewritten_columns(principal.user_id, principal.session_id,
                                          attributes, now)
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


def _forget_secret_unless_kept(device, principal):
    """An endpoint that moves to another owner loses the signing secret its former owner
    knows (``signing.py`` issues a new one), as ``statements.same_owner`` says."""
    if not statements.keeps_owner(device.user_id, device.session_id, principal.user_id,
                                  principal.session_id):
        device.signing_secret = None


def _give_up_token(device):
    """A device loses its token to another: a bare token row goes, an installation (which
    credentials may hang off) stays without a push endpoint."""
    if device.fingerprint is None:
        db.session.delete(device)
    else:
        device.channel = device.token = device.signing_secret = None
        device.updated_at = utcnow()
    db.session.flush()  # before the token is written elsewhere: it is unique


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
    it again. (A Core statement: the ORM's bulk-insert path costs more CPU, and this is the
    hottest request.)"""
    device = Device.__mapper__.class_manager.new_instance()
    device.__dict__.update(columns)  # as loaded: no change to write back
    make_transient_to_detached(device)
    if db.session.identity_map.get(inspect(device).key) is not None:
        return db.session.merge(device, load=False)  # this session holds the row already
    db.session.add(device)
    return device


