"""Sessions: created anonymously, logged in by phone number and texted code, logged out."""

from app import policies
from app.errors import InvalidAttribute, NotAuthorized, NotFound
from app.extensions import db
from app.models import Credential, CredentialKind, Device
from app.resources import devices, verification
from app.security import digest, new_session_id


def create_session(is_cookie_based=False):
    """A new session and its id, the bearer secret (shown only now; stored as a digest)."""
    if is_cookie_based:
        raise InvalidAttribute("Cookie-based sessions are not supported; send false.",
                               field="is_cookie_based")
    secret = new_session_id()
    session = Credential(kind=CredentialKind.SESSION, secret_digest=digest(secret))
    db.session.add(session)
    db.session.commit()
    return session, secret


def held_session(principal, public_id):
    """The caller's own session named ``public_id``; anything else is not found."""
    if not policies.presented_session(principal, public_id):
        raise NotFound("There is no such session of yours.")
    return db.session.get(Credential, principal.session_id)


def _locked_session(principal, public_id):
    """The caller's session, its row locked until the commit (``FOR UPDATE``; SQLite's
    write lock already serialises writers).

    Every change to a session and what hangs off it (codes, devices) takes this lock
    first, so a login and a logout of one session run one after the other instead of
    deadlocking on rows taken in opposite orders. A session that went while we waited
    is a credential that no longer works.
    """
    held_session(principal, public_id)
    session = db.session.get(Credential, principal.session_id, with_for_update=True,
                             populate_existing=True)
    if session is None:
        raise NotAuthorized()
    return session


def update_session(principal, public_id, *, phone_number=None, verification_code=None,
                   client_address=None):
    """Text a code to ``phone_number``, or log in with ``verification_code``."""
    session = _locked_session(principal, public_id)
    if phone_number is not None and verification_code is not None:
        raise InvalidAttribute("Send phone_number or verification_code, not both.",
                               field="verification_code")
    if phone_number is not None:
        verification.send_code(session, phone_number, client_address)
    elif verification_code is not None:
        log_in(session, verification.check_code(session, verification_code))
    db.session.commit()
    return session


def log_in(session, user):
    session.user = user
    devices.attach_session_devices(session.id, user.id)


def delete_session(principal, public_id):
    """Log out: the session goes, and its devices stop belonging to its user."""
    session = _locked_session(principal, public_id)
    devices.detach(Device.session_id == session.id)
    db.session.delete(session)
    db.session.commit()
