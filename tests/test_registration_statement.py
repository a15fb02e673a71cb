"""The token PATCH of a caller presenting a bearer secret: on PostgreSQL the upsert looks the
caller up itself, so the hottest request is one statement. Whoever calls, it answers as the
usual path does: an unknown or ended secret is a logout, an API key is refused, a malformed
document is reported after who is calling, and nothing is written for a caller who may not
register."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Credential, Device
from app.models.types import utcnow
from app.resources import api_keys
from app.security.crypto import digest
from tests.factories import (
    bearer,
    create_session,
    log_in,
    new_token,
    stored_credential,
    token_document,
)
from tests.jsonapi_helpers import counted_statements, error_of

TOKENS = "/api/apple_device_tokens"


def patch(client, secret, token, document=None):
    return client.patch(f"{TOKENS}/{token}", json=document or token_document(token),
                        headers=bearer(secret))


def stored(app, token):
    """(user id, session id) of the device with this token, or None."""
    with app.app_context():
        row = db.session.execute(select(Device.user_id, Device.session_id)
                                 .where(Device.token == token)).one_or_none()
        db.session.remove()
    return None if row is None else tuple(row)


def device_count(app):
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Device))
        db.session.remove()
    return count


def set_last_use(app, session_id, ago):
    with app.app_context():
        db.session.execute(update(Credential)
                           .where(Credential.secret_digest == digest(session_id))
                           .values(last_used_at=utcnow() - ago))
        db.session.commit()
        db.session.remove()


@pytest.mark.committed  # as served: no test transaction's SAVEPOINTs around each commit
def test_a_registration_on_postgresql_is_one_statement(client, app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no data-modifying WITH: it looks the caller up first")
    session_id, user_id = log_in(client, app)
    assert patch(client, session_id, new_token()).status_code == 200
    token = new_token()

    with counted_statements(app) as statements:
        response = patch(client, session_id, token)

    assert response.status_code == 200, response.get_json()
    assert len(statements) == 1, statements
    assert response.get_json()["data"]["relationships"]["user"]["data"]["id"] == user_id
    assert stored(app, token)[0] is not None


def test_a_session_registers_for_itself_and_its_user(client, app):
    session_id, user_id = log_in(client, app)
    token = new_token()

    response = patch(client, session_id, token)

    assert response.status_code == 200, response.get_json()
    user, session = stored(app, token)
    assert str(user) == user_id
    assert session == stored_credential(app, session_id).id


def test_an_api_key_with_a_valid_document_registers_nothing(client, app):
    with app.app_context():
        _, key = api_keys.create("sender", ["notifications:send"])
        db.session.commit()  # as `flask keys create` does
        db.session.remove()
    token = new_token()
    before = device_count(app)

    response = patch(client, key, token)

    assert error_of(response, 403)["code"] == "FORBIDDEN_FOR_API_KEYS"
    assert stored(app, token) is None
    assert device_count(app) == before


@pytest.mark.parametrize("secret", ["never-issued", None])
def test_an_unknown_or_ended_session_is_a_logout_and_registers_nothing(client, app, secret):
    session_id = create_session(client)
    old_token = new_token()
    assert patch(client, session_id, old_token).status_code == 200
    if secret is None:  # this session, past its anonymous lifetime
        with app.app_context():
            db.session.execute(update(Credential)
                               .where(Credential.secret_digest == digest(session_id))
                               .values(created_at=utcnow() - timedelta(days=2)))
            db.session.commit()
            db.session.remove()
        secret = session_id
    new = new_token()

    response = patch(client, secret, new)

    assert error_of(response, 401)
    assert stored(app, new) is None
    # the logout of a token the caller names ends that token's session
    assert patch(client, secret, old_token).status_code == 401
    assert stored(app, old_token) == (None, None)


def test_a_stale_last_use_is_recorded_by_a_registration(client, app):
    session_id, _ = log_in(client, app)
    set_last_use(app, session_id, timedelta(hours=2))

    assert patch(client, session_id, new_token()).status_code == 200

    assert utcnow() - stored_credential(app, session_id).last_used_at < timedelta(minutes=1)


def test_a_malformed_document_is_reported_after_who_is_calling(client, app):
    session_id, _ = log_in(client, app)
    token = new_token()
    malformed = {"data": {"type": "apple_device_tokens", "id": token,
                          "attributes": {"is_voip": "sometimes"}}}

    assert error_of(patch(client, "never-issued", token, malformed), 401)
    refused = error_of(patch(client, session_id, token, malformed), 400)

    assert refused["source"] == {"pointer": "/data/attributes/is_voip"}
    assert stored(app, token) is None


def test_a_document_naming_another_token_is_refused(client, app):
    session_id, _ = log_in(client, app)
    token, other = new_token(), new_token()

    response = patch(client, session_id, token, token_document(other))

    assert error_of(response, 409)
    assert stored(app, token) is None and stored(app, other) is None
