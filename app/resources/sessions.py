"""Sessions: created anonymously, logged in by phone number and texted code, logged out."""

from app import policies
from app.errors import InvalidAttribute, NotFound
from app.extensions import db
from app.models import Credential, CredentialKind, Device
from app.resources import devices, verification
from app.security import digest, new_session_id


def create_session(is_cookie_based=False, phone_number=None, verification_code=None):
    """A new session and its id, the bearer secret (shown only now; stored as a digest).
    A phone number or code goes to the session once it exists (``update_session``)."""
    _refuse_cookie_based(is_cookie_based)
    for name, value in (("phone_number", phone_number),
                        ("verification_code", verification_code)):
        if value is not None:
            raise InvalidAttribute(f"Create the session first, then send it {name}.",
                                   field=name)
    secret = new_session_id()
    session = Credential(kind=CredentialKind.SESSION, secret_digest=digest(secret))
    db.session.add(session)
    db.session.commit()
    return session, secret


def _refuse_cookie_based(is_cookie_based):
    if is_cookie_based:
        raise InvalidAttribute("Cookie-based sessions are not supported; send false.",
                               field="is_cookie_based")


def held_session(principal, public_id):
    """The caller's own session named ``public_id``; anything else is not found."""
    if not policies.presented_session(principal, public_id):
        raise NotFound("There is no such session of yours.")
    return db.session.get(Credential, principal.session_id)


def update_session(principal, public_id, *, phone_number=None, verification_code=None,
                   is_cookie_based=False, client_address=None):
    """Text a code to ``phone_number``, or log in with ``verification_code``. (A session
    stays what it was created as: ``is_cookie_based`` false changes nothing.)"""
    session = held_session(principal, public_id)
    _refuse_cookie_based(is_cookie_based)
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
    session = held_session(principal, public_id)
    devices.detach(Device.session_id == session.id)
    db.session.delete(session)
    db.session.commit()
