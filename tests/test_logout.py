"""Poparazzi's logout (the token PATCH without Authorization) ends the session the token was
registered with, as DELETE /api/sessions/<id> does: its bearer is refused from then on and
its devices leave its user. Nobody else's session or devices change."""

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Device
from tests.factories import (
    bearer,
    create_session,
    log_in,
    new_token,
    register_token,
    token_document,
)


def _owner(app, token):
    with app.app_context():
        try:
            return tuple(db.session.execute(select(Device.user_id, Device.session_id)
                                            .where(Device.token == token)).one())
        finally:
            db.session.remove()


def _token_patch_without_session(client, session_id, tokens):
    response = client.patch(f"/api/apple_device_tokens/{tokens[0]}",
                            json=token_document(tokens[0]))
    assert response.status_code == 401
    assert response.get_json()["errors"][0]["code"] == "NOT_AUTHORIZED"


def _delete_session(client, session_id, tokens):
    response = client.delete(f"/api/sessions/{session_id}", headers=bearer(session_id))
    assert response.status_code == 204


LOGOUTS = {"token PATCH without Authorization": _token_patch_without_session,
           "DELETE of the session": _delete_session}


@pytest.mark.parametrize("logged_in", [True, False], ids=["logged in", "anonymous"])
@pytest.mark.parametrize("log_out", LOGOUTS.values(), ids=LOGOUTS)
def test_logout_ends_the_session_and_frees_its_devices(client, app, log_out, logged_in):
    session_id = log_in(client, app)[0] if logged_in else create_session(client)
    tokens = [register_token(client, session_id), register_token(client, session_id)]
    other_session, _ = log_in(client, app)
    others_token = register_token(client, other_session)
    others_owner = _owner(app, others_token)

    log_out(client, session_id, tokens)

    response = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id))
    assert response.status_code == 401
    assert response.get_json()["errors"][0]["code"] == "NOT_AUTHORIZED"
    assert [_owner(app, token) for token in tokens] == [(None, None), (None, None)]
    assert client.get(f"/api/sessions/{other_session}",
                      headers=bearer(other_session)).status_code == 200
    assert _owner(app, others_token) == others_owner


@pytest.mark.parametrize("token", [new_token(), "not-a-token"], ids=["unknown", "malformed"])
def test_a_token_patch_naming_no_device_changes_nothing(client, app, token):
    session_id, _ = log_in(client, app)
    registered = register_token(client, session_id)

    response = client.patch(f"/api/apple_device_tokens/{token}", json=token_document(token))

    assert response.status_code == 401
    assert client.get(f"/api/sessions/{session_id}",
                      headers=bearer(session_id)).status_code == 200
    assert _owner(app, registered)[1] is not None


def test_a_token_whose_session_is_gone_still_leaves_its_user(client, app):
    """A device tied to a user but to no session (a row from before sessions ended this
    way) is detached all the same."""
    session_id, _ = log_in(client, app)
    token = register_token(client, session_id)
    with app.app_context():
        device = db.session.scalar(select(Device).where(Device.token == token))
        device.session_id = None
        db.session.commit()
        db.session.remove()

    response = client.patch(f"/api/apple_device_tokens/{token}", json=token_document(token))

    assert response.status_code == 401
    assert _owner(app, token) == (None, None)
