"""Poparazzi's client flow through the Flask test client (the gunicorn run is in
test_live.py)."""

from tests.factories import bearer, create_session, log_in, register_token, token_document


def test_login_ties_registered_token_to_the_new_user(client, app):
    session_id = create_session(client)
    token = register_token(client, session_id)
    session_id_after, user_id = log_in(client, app)
    assert session_id_after != session_id

    response = client.get(f"/api/apple_device_tokens/{token}", headers=bearer(session_id))
    assert response.get_json()["data"]["relationships"]["user"]["data"] is None

    register_token(client, session_id_after, token)
    response = client.get(f"/api/apple_device_tokens/{token}", headers=bearer(session_id_after))
    data = response.get_json()["data"]
    assert data["relationships"]["user"]["data"] == {"type": "users", "id": user_id}
    assert data["relationships"]["session"]["data"] == {"type": "sessions", "id": session_id_after}


def test_logout_patch_without_authorization_ends_the_session(client, app):
    session_id, _user_id = log_in(client, app)
    token = register_token(client, session_id)

    response = client.patch(f"/api/apple_device_tokens/{token}", json=token_document(token))
    assert response.status_code == 401
    assert response.get_json()["errors"][0]["code"] == "NOT_AUTHORIZED"

    listed = client.get("/api/apple_device_tokens", headers=bearer(session_id))
    assert listed.status_code == 401
