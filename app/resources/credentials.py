"""How long credentials last, and the lookup that honours it.

Each kind has an idle lifetime (after its last use) and an absolute one (after it was
made): sessions ``SESSION_IDLE_TIMEOUT`` and ``SESSION_MAX_AGE`` (and, if one never logged
in, ``SESSION_ANONYMOUS_MAX_AGE``), auth tokens ``AUTH_TOKEN_*``, API keys ``API_KEY_*``
(0: no such limit). An ended credential is refused like an unknown one, and ``flask
prune`` deletes it. The rule is one SQL condition (``ended``), used both to look a
credential up and to prune.
"""

import functools
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import and_, bindparam, delete, false, not_, or_, select, update

from app.database.engine import OWN_TRANSACTION, EarlyCommit, commit_early
from app.database.results import rows_changed
from app.extensions import db
from app.models import Credential, CredentialKind
from app.models.types import utcnow
from app.security.crypto import digest

# last_used_at is written at most this often a credential, so requests stay read-only;
# the idle lifetime is then exact to within this (or a tenth of it, if that is shorter).
USE_RESOLUTION = timedelta(hours=1)


LIFETIMES = {  # kind → (idle lifetime setting, absolute lifetime setting)
    CredentialKind.SESSION: ("SESSION_IDLE_TIMEOUT", "SESSION_MAX_AGE"),
    CredentialKind.AUTH_TOKEN: ("AUTH_TOKEN_IDLE_TIMEOUT", "AUTH_TOKEN_MAX_AGE"),
    CredentialKind.API_KEY: ("API_KEY_IDLE_TIMEOUT", "API_KEY_MAX_AGE"),
}
ANONYMOUS_MAX_AGE = "SESSION_ANONYMOUS_MAX_AGE"
SETTINGS = (*(setting for pair in LIFETIMES.values() for setting in pair), ANONYMOUS_MAX_AGE)


def ended(now, kinds=tuple(CredentialKind)):
    """SQL condition: the credential's lifetime is over at ``now``."""
    lifetimes = _lifetimes()
    cutoffs = _cutoffs(now, lifetimes)
    return _ended(kinds, lifetimes, cutoffs.__getitem__)


def _lifetimes():
    """The lifetime settings, in seconds (0: no such limit)."""
    config = current_app.config
    return tuple((setting, config[setting]) for setting in SETTINGS)


def _cutoffs(now, lifetimes):
    """For each lifetime setting, the moment before which a credential is over it."""
    return {setting: now - timedelta(seconds=seconds) for setting, seconds in lifetimes}


def _ended(kinds, lifetimes, cutoff):
    """The ``ended`` condition, each setting's cutoff given by ``cutoff(setting)``: a value
    or a bound parameter."""
    limited = {setting for setting, seconds in lifetimes if seconds}
    over = ((kind, _limits(kind, limited, cutoff)) for kind in kinds)
    return or_(false(), *(and_(Credential.kind == kind, or_(*limits))
                          for kind, limits in over if limits))


def _limits(kind, limited, cutoff):
    """The conditions of which any ends a credential of this kind (none: it never ends)."""
    idle, absolute = LIFETIMES[kind]
    limits = []
    if idle in limited:
        limits.append(Credential.last_used_at < cutoff(idle))
    if absolute in limited:
        limits.append(Credential.created_at < cutoff(absolute))
    if kind == CredentialKind.SESSION:
        limits.append(and_(Credential.user_id.is_(None),
                           Credential.created_at < cutoff(ANONYMOUS_MAX_AGE)))
    return limits


class Live(NamedTuple):
    """What a caller's identity needs of a live credential (``find_live``'s row)."""

    id: int
    kind: CredentialKind
    user_id: uuid.UUID | None
    scopes: str | None
    last_used_at: datetime


@functools.lru_cache(maxsize=16)
def _live(key, lifetimes):
    """The credential with this ``key`` column value that has not ended: built once per
    configuration (its cutoffs are parameters), so no request builds or hashes it again.
    A Core row of what a caller's identity needs, not a mapped object: every request
    authenticates, and loading an instance costs more CPU than the round trip itself."""
    condition = _ended(tuple(CredentialKind), lifetimes, bindparam)
    columns = Credential.__table__.c
    return select(*(columns[name] for name in Live._fields)).where(
        columns[key] == bindparam("key"), not_(condition))


@functools.lru_cache(maxsize=16)
def _live_lookup(key, lifetimes):
    """``_live`` as a statement of its own: a single read, its own transaction."""
    return _live(key, lifetimes).execution_options(**{OWN_TRANSACTION: True})


def live_by_secret():
    """The select of the live credential whose secret is the parameters' (``by_secret``):
    for a statement that authenticates its caller itself (its columns are ``find_live``'s
    row's)."""
    return _live("secret_digest", _lifetimes())


def by_secret(secret, now):
    """The parameters of ``live_by_secret`` for this secret at ``now``."""
    return {"key": digest(secret), **_cutoffs(now, _lifetimes())}


def _find_live(key, value):
    now = utcnow()
    lifetimes = _lifetimes()
    # the session's connection, past the ORM's execute: a Core statement needs none of it
    credential = db.session.connection().execute(
        _live_lookup(key, lifetimes), {"key": value, **_cutoffs(now, lifetimes)}).one_or_none()
    if credential is not None:
        note_use(credential, now)
    return credential


def find_live(secret):
    """The credential whose secret this is, if it has not ended (a row of ``id``, ``kind``,
    ``user_id``, ``scopes``, ``last_used_at``); its use noted."""
    return _find_live("secret_digest", digest(secret))


def note_use(credential, now):
    """Move ``last_used_at`` forward when it is older than the resolution: one conditional
    UPDATE now and then, not a write on every request."""
    idle = current_app.config[LIFETIMES[credential.kind][0]]
    stale_before = now - (min(USE_RESOLUTION, timedelta(seconds=idle) / 10) if idle
                          else USE_RESOLUTION)
    if credential.last_used_at >= stale_before:
        return
    db.session.execute(
        update(Credential)
        .where(Credential.id == credential.id, Credential.last_used_at < stale_before)
        # being used is no change to the session: updated_at keeps its value
        .values(last_used_at=now, updated_at=Credential.updated_at)
        .execution_options(synchronize_session=False))
    commit_early(EarlyCommit.CREDENTIAL_IN_USE)


def find_live_by_public_id(public_id):
    """A credential by its public id (an access token names it), if it has not ended;
    its use noted like a presented secret's."""
    return _find_live("public_id", public_id)


def public_id_of(credential_id):
    return db.session.scalar(select(Credential.public_id).where(Credential.id == credential_id))


def prune_ended(now):
    """Delete the auth tokens and API keys whose lifetime is over (sessions end through
    ``sessions.end_sessions``, which also detaches their devices)."""
    kinds = (CredentialKind.AUTH_TOKEN, CredentialKind.API_KEY)
    return rows_changed(db.session.execute(delete(Credential).where(ended(now, kinds))))
