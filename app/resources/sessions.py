"""Sessions: created anonymously, logged in by phone number and texted code, logged out."""

import hmac

from sqlalchemy import update

from app.extensions import db
from app.jsonapi.errors import InvalidAttribute, NotFound
from app.models import Credential, CredentialKind, Device
from app.models.types import utcnow
from app.resources import verification
from app.security import digest, new_session_id


def create_session(attributes):
    if attributes.get("is_cookie_based"):
        raise InvalidAttribute("Cookie-based sessions are not supported; send false.",
                               pointer="/data/attributes/is_cookie_based")
    secret = new_session_id()
    session = Credential(kind=CredentialKind.SESSION, secret_digest=digest(secret))
    db.session.add(session)
    db.session.commit()
    session.public_id = secret
    return session


def held_session(principal, session_id):
    """The caller's own session named ``session_id``; anything else is not found."""
    credential = principal.credential
    is_own = credential.kind == CredentialKind.SESSION and hmac.compare_digest(
        session_id.encode(), credential.public_id.encode())
    if not is_own:
        raise NotFound(f"There is no session {session_id} of yours.")
    return credential


def update_session(principal, session_id, attributes, client_address):
    session = held_session(principal, session_id)
    phone_number = attributes.get("phone_number")
    code = attributes.get("verification_code")
    if phone_number is not None and code is not None:
        raise InvalidAttribute("Send phone_number or verification_code, not both.",
                               pointer="/data/attributes/verification_code")
    if phone_number is not None:
        verification.send_code(session, phone_number, client_address)
    elif code is not None:
        user = verification.check_code(session, code)
        log_in(session, user)
    db.session.commit()
    return session


def log_in(session, user):
    session.user_id = user.id
    session.user = user
    session.updated_at = utcnow()
    db.session.execute(
        update(Device).where(Device.session_id == session.id).values(user_id=user.id)
    )


def delete_session(principal, session_id):
    """Log out: the session goes, and its devices stop belonging to its user."""
    session = held_session(principal, session_id)
    db.session.execute(
        update(Device).where(Device.session_id == session.id)
        .values(user_id=None, session_id=None, updated_at=utcnow())
    )
    db.session.delete(session)
    db.session.commit()


