"""Test data: made the way clients make it, through the API; or, for tests of the services
below HTTP, rows made directly (inside an app context)."""

import re
import secrets
import uuid

from sqlalchemy import select

from app.extensions import db
from app.models import Credential, CredentialKind, SmsMessage, User
from app.security.crypto import digest
from app.web.auth import principal_of

CODE_IN_TEXT = re.compile(r"\b(\d{6})\b")


def new_token():
    return secrets.token_hex(32)


def bearer(session_id):
    return {"Authorization": f"Bearer {session_id}"}


def create_session(client):
    response = client.post("/api/sessions", json={
        "data": {"type": "sessions", "attributes": {"is_cookie_based": False}}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]["id"]


def last_code(app, phone_number):
    with app.app_context():
        message = db.session.scalar(select(SmsMessage).where(SmsMessage.to == phone_number)
                                    .order_by(SmsMessage.id.desc()).limit(1))
        db.session.remove()
    return CODE_IN_TEXT.search(message.body).group(1)


def session_patch(session_id, **attributes):
    return {"data": {"type": "sessions", "id": session_id, "attributes": attributes}}


def request_code(client, session_id, phone_number):
    return client.patch(f"/api/sessions/{session_id}",
                        json=session_patch(session_id, phone_number=phone_number),
                        headers=bearer(session_id))


def log_in(client, app, phone_number=None):
    """A logged-in session: (session id, user id)."""
    session_id = create_session(client)
    return session_id, log_in_with(client, app, session_id, phone_number or random_phone())


def log_in_with(client, app, session_id, phone_number):
    """Log an existing session in; the user's id."""
    assert request_code(client, session_id, phone_number).status_code == 200
    response = client.patch(
        f"/api/sessions/{session_id}",
        json=session_patch(session_id, verification_code=last_code(app, phone_number)),
        headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["relationships"]["user"]["data"]["id"]


def random_phone():
    return f"+1555{secrets.randbelow(10**7):07d}"


def token_document(token, **attributes):
    return {"data": {"type": "apple_device_tokens", "id": token, "attributes": {
        "is_invalidated": False, "bundle_version": "3.1.23", "build_number": "839",
        "is_production": True, "bundle_id": "TTYL.Inc.Poparazzi", "is_voip": False,
        **attributes}}}


def register_token(client, session_id, token=None, **attributes):
    token = token or new_token()
    response = client.patch(f"/api/apple_device_tokens/{token}",
                            json=token_document(token, **attributes), headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()
    return token


# -- rows made directly, for service-level tests (inside an app context) ----------------


def stored_credential(app, secret):
    """The credential row whose secret this is (detached), or None."""
    with app.app_context():
        credential = db.session.scalar(
            select(Credential).where(Credential.secret_digest == digest(secret)))
        db.session.expunge_all()
        db.session.remove()
    return credential



def make_user(**attributes):
    user = User(id=uuid.uuid4(), phone_number=random_phone(), badges=[], **attributes)
    db.session.add(user)
    db.session.flush()
    return user


def make_session(user=None):
    """A session credential and the Principal of its holder."""
    secret = str(uuid.uuid4())
    session = Credential(kind=CredentialKind.SESSION, secret_digest=digest(secret),
                         user_id=None if user is None else user.id)
    db.session.add(session)
    db.session.flush()
    return session, principal_of(session.id, session.kind, session.user_id, secret)
