"""How long credentials last, and the lookup that honours it.

A session ends ``SESSION_IDLE_TIMEOUT`` after its last use, ``SESSION_MAX_AGE`` after it
was made, or, if it never logged in, ``SESSION_ANONYMOUS_MAX_AGE`` after it was made. An
ended session is refused like an unknown one, and ``flask prune`` deletes it. The rule is
one SQL condition (``ended``), used both to look a credential up and to prune.
"""

from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, not_, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app.database import commit_early
from app.extensions import db
from app.models import Credential, CredentialKind
from app.models.types import utcnow
from app.security import digest

# last_used_at is written at most this often a credential, so requests stay read-only;
# the idle lifetime is then exact to within this (or a tenth of it, if that is shorter).
USE_RESOLUTION = timedelta(hours=1)


def _seconds(setting):
    return timedelta(seconds=current_app.config[setting])


def ended(now):
    """SQL condition: the credential's lifetime is over at ``now``."""
    return and_(Credential.kind == CredentialKind.SESSION, or_(
        Credential.last_used_at < now - _seconds("SESSION_IDLE_TIMEOUT"),
        Credential.created_at < now - _seconds("SESSION_MAX_AGE"),
        and_(Credential.user_id.is_(None),
             Credential.created_at < now - _seconds("SESSION_ANONYMOUS_MAX_AGE")),
    ))


def find_live(secret):
    """The credential whose secret this is, if it has not ended; its use noted."""
    now = utcnow()
    credential = db.session.scalar(select(Credential).where(
        Credential.secret_digest == digest(secret), not_(ended(now))))
    if credential is not None:
        _note_use(credential, now)
    return credential


def _note_use(credential, now):
    """Move ``last_used_at`` forward when it is older than the resolution: one conditional
    UPDATE now and then, not a write on every request."""
    stale_before = now - min(USE_RESOLUTION, _seconds("SESSION_IDLE_TIMEOUT") / 10)
    if credential.last_used_at >= stale_before:
        return
    db.session.execute(
        update(Credential)
        .where(Credential.id == credential.id, Credential.last_used_at < stale_before)
        # being used is no change to the session: updated_at keeps its value
        .values(last_used_at=now, updated_at=Credential.updated_at)
        .execution_options(synchronize_session=False))
    set_committed_value(credential, "last_used_at", now)  # written above, not dirty
    commit_early("a read-only request must still record that the session is in use, "
                 "or an active session would reach its idle timeout")
