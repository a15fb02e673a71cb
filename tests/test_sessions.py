"""Sessions: the id is the credential, shown to its holder only; DELETE logs out."""

import hashlib
import re
import uuid

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Credential, Device, VerificationCode
from tests.factories import (
    bearer,
    create_session,
    last_code,
    log_in,
    random_phone,
    register_token,
    request_code,
    session_patch,
)
from tests.jsonapi_helpers import error_of

NEW_SESSION = {"data": {"type": "sessions", "attributes": {"is_cookie_based": False}}}



def raw_credentials(app):
    with app.app_context():
        rows = db.session.execute(Credential.__table__.select()).all()
        db.session.remove()
    return rows


def device_row(app, token):
    with app.app_context():
        device = db.session.scalar(select(Device).where(Device.token == token))
        db.session.expunge_all()
        db.session.remove()
    return device


def test_session_id_is_a_random_uuid4(client):
    response = client.post("/api/sessions", json=NEW_SESSION)
    assert response.status_code == 201
    data = response.get_json()["data"]
    parsed = uuid.UUID(data["id"])
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == data["id"]
    assert response.headers["Location"].endswith(f"/api/sessions/{data['id']}")
    assert data["relationships"]["user"]["data"] is None
    assert set(data["attributes"]) == {"created_at", "updated_at"}
    ids = {create_session(client) for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("attributes, status", [({"is_cookie_based": True}, 400),
                                                ({"is_cookie_based": "false"}, 400)])
def test_create_session_refuses_bad_attributes(client, app, attributes, status):
    response = client.post("/api/sessions",
                           json={"data": {"type": "sessions", "attributes": attributes}})
    assert response.status_code == status
    assert error_of(response)["source"]["pointer"] == "/data/attributes/is_cookie_based"
    assert raw_credentials(app) == []


def test_client_cannot_choose_the_session_id(client, app):
    chosen = str(uuid.uuid4())
    document = {"data": {"type": "sessions", "id": chosen, "attributes": {}}}
    response = client.post("/api/sessions", json=document)
    assert response.status_code == 403
    assert raw_credentials(app) == []
    assert client.get(f"/api/sessions/{chosen}", headers=bearer(chosen)).status_code == 401


def test_get_own_session_includes_the_user(client, app):
    phone = random_phone()
    session_id, user_id = log_in(client, app, phone)
    response = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id))
    assert response.status_code == 200
    document = response.get_json()
    assert document["data"]["id"] == session_id
    assert document["data"]["relationships"]["user"]["data"] == {"type": "users",
                                                                  "id": user_id}
    [user] = document["included"]
    assert (user["type"], user["id"]) == ("users", user_id)
    assert user["attributes"]["phone_number"] == phone


def test_get_own_session_before_login(client):
    session_id = create_session(client)
    document = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id)).get_json()
    assert document["data"]["relationships"]["user"]["data"] is None
    assert document["included"] == []


def test_another_session_is_not_found(client, app):
    mine = create_session(client)
    theirs, _ = log_in(client, app)
    for other in (theirs, str(uuid.uuid4()), "not-a-session", theirs.upper()):
        response = client.get(f"/api/sessions/{other}", headers=bearer(mine))
        assert response.status_code == 404, other
        assert error_of(response)["code"] == "NOT_FOUND"

    response = client.patch(f"/api/sessions/{theirs}",
                            json=session_patch(theirs, phone_number=random_phone()),
                            headers=bearer(mine))
    assert response.status_code == 404
    response = client.delete(f"/api/sessions/{theirs}", headers=bearer(mine))
    assert response.status_code == 404
    # theirs is untouched
    assert client.get(f"/api/sessions/{theirs}", headers=bearer(theirs)).status_code == 200


def test_session_without_authorization_is_401(client):
    session_id = create_session(client)
    response = client.get(f"/api/sessions/{session_id}")
    assert response.status_code == 401
    assert error_of(response)["code"] == "NOT_AUTHORIZED"
    assert session_id not in response.get_data(as_text=True)


def test_session_secret_is_stored_as_a_digest(client, app):
    session_id, _ = log_in(client, app)
    [row] = raw_credentials(app)
    forms = {session_id, session_id.replace("-", ""), uuid.UUID(session_id).hex.upper()}
    for value in row:
        assert not any(form in str(value) for form in forms), value
    record = row._mapping
    assert re.fullmatch(r"[0-9a-f]{64}", record["secret_digest"])
    assert record["secret_digest"] != hashlib.sha256(session_id.encode()).hexdigest()  # keyed


def test_session_id_is_not_shown_to_the_users_other_sessions(client, app):
    phone = random_phone()
    first, user_id = log_in(client, app, phone)
    token = register_token(client, first)
    second, same_user = log_in(client, app, phone)
    assert same_user == user_id

    for response in (
        client.get(f"/api/apple_device_tokens/{token}", headers=bearer(second)),
        client.get("/api/apple_device_tokens", headers=bearer(second)),
        client.get(f"/api/users/{user_id}?include=devices", headers=bearer(second)),
    ):
        assert response.status_code == 200, response.get_json()
        assert first not in response.get_data(as_text=True)
    listed = client.get("/api/apple_device_tokens", headers=bearer(second)).get_json()
    [device] = listed["data"]
    assert device["id"] == token
    assert "data" not in device["relationships"]["session"]

    own = client.get(f"/api/apple_device_tokens/{token}", headers=bearer(first)).get_json()
    assert own["data"]["relationships"]["session"]["data"] == {"type": "sessions", "id": first}


def test_delete_logs_out(client, app):
    session_id, user_id = log_in(client, app)
    token = register_token(client, session_id)
    assert device_row(app, token).user_id is not None

    response = client.delete(f"/api/sessions/{session_id}", headers=bearer(session_id))
    assert response.status_code == 204

    for response in (
        client.get(f"/api/sessions/{session_id}", headers=bearer(session_id)),
        client.get(f"/api/users/{user_id}", headers=bearer(session_id)),
        client.get("/api/apple_device_tokens", headers=bearer(session_id)),
        client.delete(f"/api/sessions/{session_id}", headers=bearer(session_id)),
        client.patch(f"/api/sessions/{session_id}",
                     json=session_patch(session_id, phone_number=random_phone()),
                     headers=bearer(session_id)),
    ):
        assert response.status_code == 401
        assert error_of(response)["code"] == "NOT_AUTHORIZED"
    assert raw_credentials(app) == []


def test_logged_out_sessions_token_has_no_user(client, app):
    phone = random_phone()
    session_id, _ = log_in(client, app, phone)
    token = register_token(client, session_id)
    assert client.delete(f"/api/sessions/{session_id}",
                         headers=bearer(session_id)).status_code == 204

    device = device_row(app, token)
    assert device is not None  # the device stays registered, belonging to nobody
    assert device.user_id is None
    assert device.session_id is None

    # the same person logging in elsewhere does not get the old device back
    again, _ = log_in(client, app, phone)
    assert client.get("/api/apple_device_tokens", headers=bearer(again)).get_json()["data"] == []
    response = client.get(f"/api/apple_device_tokens/{token}", headers=bearer(again))
    assert response.status_code == 404


def test_logout_leaves_other_sessions_and_devices_alone(client, app):
    phone = random_phone()
    leaving, user_id = log_in(client, app, phone)
    staying, _ = log_in(client, app, phone)
    leaving_token = register_token(client, leaving)
    staying_token = register_token(client, staying)

    assert client.delete(f"/api/sessions/{leaving}", headers=bearer(leaving)).status_code == 204
    assert client.get(f"/api/sessions/{staying}", headers=bearer(staying)).status_code == 200
    assert str(device_row(app, staying_token).user_id) == user_id
    assert device_row(app, staying_token).session_id is not None
    assert device_row(app, leaving_token).user_id is None


def test_logout_with_a_pending_code(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    last_code(app, phone)
    assert client.delete(f"/api/sessions/{session_id}",
                         headers=bearer(session_id)).status_code == 204
    with app.app_context():
        assert db.session.scalar(select(VerificationCode)) is None


def test_anonymous_session_can_log_out(client, app):
    session_id = create_session(client)
    token = register_token(client, session_id)
    assert client.delete(f"/api/sessions/{session_id}",
                         headers=bearer(session_id)).status_code == 204
    assert device_row(app, token).session_id is None
    assert raw_credentials(app) == []
