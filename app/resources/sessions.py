"""Sessions: created anonymously, logged in by phone number and texted code, logged out.

Anonymous writes (creating a session, Poparazzi's logout) are limited per client address:
nothing else bounds how many rows a client can make or how many devices it can detach.
"""

from sqlalchemy import delete, select

from app.database.results import rows_changed
from app.errors import InvalidAttribute, NotAuthorized, NotFound
from app.extensions import db
from app.models import Credential, CredentialKind, Device
from app.resources import credentials, devices, verification
from app.security import policies, ratelimit
from app.security.crypto import digest, new_session_id


def create_session(is_cookie_based=False, phone_number=None, verification_code=None, *,
                   client_address=None):
    """A new session and its id, the bearer secret (shown only now; stored as a digest).
    A phone number or code goes to the session once it exists (``update_session``)."""
    _refuse_cookie_based(is_cookie_based)
    for name, value in (("phone_number", phone_number),
                        ("verification_code", verification_code)):
        if value is not None:
            raise InvalidAttribute(f"Create the session first, then send it {name}.",
                                   field=name)
    ratelimit.spend(f"session:create:{ratelimit.address_key(client_address)}",
                    "SESSION_CREATE_RATE_LIMIT", "Too many sessions created; try again later.")
    secret = new_session_id()
    session = Credential(kind=CredentialKind.SESSION, secret_digest=digest(secret))
    db.session.add(session)
    db.session.flush()
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
                   is_cookie_based=False, client_address=None):
    """Text a code to ``phone_number``, or log in with ``verification_code``. (A session
    stays what it was created as: ``is_cookie_based`` false changes nothing.)"""
    session = _locked_session(principal, public_id)
    _refuse_cookie_based(is_cookie_based)
    if phone_number is not None and verification_code is not None:
        raise InvalidAttribute("Send phone_number or verification_code, not both.",
                               field="verification_code")
    if phone_number is not None:
        verification.send_code(session, phone_number, client_address)
    elif verification_code is not None:
        log_in(session, verification.check_code(session, verification_code))
    db.session.flush()
    return session


def log_in(session, user):
    session.user = user
    devices.attach_session_devices(session.id, user.id)


def delete_session(principal, public_id):
    """Log out: the session goes, and its devices stop belonging to its user."""
    end_sessions(Credential.id == held_session(principal, public_id).id)


def log_out_device(channel, raw_token, client_address):
    """Poparazzi's logout (the token PATCH without a session): the device leaves its user,
    and the session it was registered with ends, as if deleted by its holder. The caller
    commits even though the request fails: the rate-limit hit counts whatever the token
    named."""
    ratelimit.spend(f"anonymous:write:{ratelimit.address_key(client_address)}",
                    "ANONYMOUS_WRITE_RATE_LIMIT", "Too many requests; try again later.")
    device = devices.find(channel, raw_token)
    if device is not None and device.session_id is not None:
        end_sessions(Credential.id == device.session_id)
    elif device is not None:
        devices.detach(Device.id == device.id)


def end_sessions(*conditions):
    """The one way a session ends (logout, either kind, or its lifetime over): its rows are
    locked first (as every change to a session does, see ``_locked_session``), its devices
    stop belonging to it and its user, and the session row goes. How many ended."""
    ending = list(db.session.scalars(
        select(Credential.id).where(Credential.kind == CredentialKind.SESSION, *conditions)
        .with_for_update()))
    if not ending:
        return 0
    devices.detach(Device.session_id.in_(ending))
    return rows_changed(db.session.execute(delete(Credential).where(Credential.id.in_(ending))))



def prune_ended(now):
    """Delete the sessions whose lifetime is over (``flask prune``)."""
    return end_sessions(credentials.ended(now))
