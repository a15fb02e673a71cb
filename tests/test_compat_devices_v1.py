"""Seed 003, ``/v1/devices``: the push-token registry's plain JSON over the one device
registry."""

import uuid

import pytest

from tests.compat_helpers import access_token, api_key, device_rows, devices_table, send
from tests.factories import bearer, create_session, log_in, new_token

BASE = "/v1/devices"


def registration(**changes):
    return {"channel": "ios_push", "token": new_token(), "environment": "production",
            "app_version": "2.1.0", "device_model": "iPhone15,3", "os_version": "iOS 18.2",
            **changes}


def failed(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert set(document) == {"error"}, document
    assert document["error"]["code"] == code and document["error"]["message"], document
    return document["error"]


@pytest.fixture
def cookie(client, app):
    """A logged-in user whose client sends the access token in the ``access_token`` cookie,
    as the seed's does: (session id, user id, access token)."""
    session_id, user_id = log_in(client, app)
    jwt = access_token(client, session_id)
    client.set_cookie("access_token", jwt)
    return session_id, user_id, jwt


def register(client, **changes):
    response = send(client, "POST", BASE, registration(**changes))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["device"]


def test_register_list_delete(client, app, cookie):
    made = register(client)
    assert uuid.UUID(made["id"]) and "token" not in made
    assert made["environment"] == "production" and made["channel"] == "ios_push"
    listed = send(client, "GET", BASE).get_json()
    assert listed == {"devices": [made]}
    deleted = send(client, "DELETE", f"{BASE}/{made['id']}")
    assert deleted.status_code == 200 and deleted.get_json() == {"id": made["id"]}
    assert send(client, "GET", BASE).get_json() == {"devices": []}
    assert device_rows(app) == []  # a hard delete


def test_a_refresh_answers_201_with_the_same_device(client, app, cookie):
    token = new_token()
    first = register(client, token=token)
    again = register(client, token=token.upper(), app_version="2.2.0", environment=None)
    assert again["id"] == first["id"] and again["app_version"] == "2.2.0"
    assert again["last_seen_at"] >= first["last_seen_at"]
    assert again["created_at"] == first["created_at"]
    assert len(device_rows(app)) == 1


@pytest.mark.parametrize(("sent", "stored"), [
    ("sandbox", "sandbox"), ("production", "production"), ("staging", "production"),
    ("SANDBOX", "production"), (None, "production"), (7, "production"),
])
def test_anything_but_sandbox_is_production(client, cookie, sent, stored):
    assert register(client, environment=sent)["environment"] == stored


def test_listed_by_last_seen_latest_first(client, app, cookie):
    older, newer = register(client), register(client)
    assert [d["id"] for d in send(client, "GET", BASE).get_json()["devices"]] == [
        newer["id"], older["id"]]
    register(client, token=_token_of(app, older))
    assert [d["id"] for d in send(client, "GET", BASE).get_json()["devices"]] == [
        older["id"], newer["id"]]


def _token_of(app, device):
    """The seed never shows a token; the test reads it from the row."""
    return next(row.token for row in device_rows(app) if str(row.id) == device["id"])


def test_bearer_and_session_credentials_work_too(client, app):
    session_id, _ = log_in(client, app)
    jwt = access_token(client, session_id)
    for credential in (jwt, session_id):
        assert send(client, "GET", BASE, headers=bearer(credential)).status_code == 200


def test_the_same_token_from_another_user_moves(client, app, cookie):
    token = new_token()
    mine = register(client, token=token)
    other_session, other_user = log_in(client, app)
    client.set_cookie("access_token", access_token(client, other_session))
    theirs = register(client, token=token)
    assert [str(row.user_id) for row in device_rows(app, token=token)] == [other_user]
    assert theirs["id"] == mine["id"]  # a bare token row keeps its id as it moves
    client.set_cookie("access_token", cookie[2])
    assert send(client, "GET", BASE).get_json() == {"devices": []}
    failed(send(client, "DELETE", f"{BASE}/{theirs['id']}"), 404, "NOT_FOUND")


# -- every error in the seed's plain shape, changing nothing ------------------------------

CASES = [
    # (id, method, path suffix, body, credential, status, code, field)
    ("channel", "POST", "", registration(channel="android_push"), "cookie", 400,
     "INVALID_ATTRIBUTE", "channel"),
    ("no-channel", "POST", "", {"token": new_token()}, "cookie", 400, "INVALID_ATTRIBUTE",
     "channel"),
    ("no-token", "POST", "", {"channel": "ios_push"}, "cookie", 400, "INVALID_ATTRIBUTE",
     "token"),
    ("sample-token", "POST", "", registration(token="sample"), "cookie", 400,
     "INVALID_DEVICE_TOKEN", "token"),
    ("long-version", "POST", "", registration(app_version="9" * 33), "cookie", 400,
     "INVALID_ATTRIBUTE", "app_version"),
    ("malformed-json", "POST", "", "{not json", "cookie", 400, "INVALID_JSON", None),
    ("array-body", "POST", "", [registration()], "cookie", 400, "INVALID_JSON", None),
    ("content-type", "POST", "", registration(), "cookie", 415, "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type"),
    ("too-large", "POST", "", registration(os_version="x" * 70000), "cookie", 413,
     "PAYLOAD_TOO_LARGE", None),
    ("no-credential", "POST", "", registration(), None, 401, "NOT_AUTHORIZED", None),
    ("no-credential-list", "GET", "", None, None, 401, "NOT_AUTHORIZED", None),
    ("bad-cookie", "GET", "", None, "garbage", 401, "NOT_AUTHORIZED", None),
    ("api-key", "POST", "", registration(), "api_key", 403, "FORBIDDEN_FOR_API_KEYS", None),
    ("api-key-list", "GET", "", None, "api_key", 403, "FORBIDDEN_FOR_API_KEYS", None),
    ("api-key-delete", "DELETE", f"/{uuid.uuid4()}", None, "api_key", 403,
     "FORBIDDEN_FOR_API_KEYS", None),
    ("missing-device", "DELETE", f"/{uuid.uuid4()}", None, "cookie", 404, "NOT_FOUND", None),
    ("not-a-uuid", "DELETE", "/42", None, "cookie", 404, "NOT_FOUND", None),
    ("others-device", "DELETE", "/{other}", None, "cookie", 404, "NOT_FOUND", None),
    ("unknown-path", "GET", "/a/b", None, "cookie", 404, "NOT_FOUND", None),
    ("wrong-method", "PUT", "/x", registration(), "cookie", 405, "METHOD_NOT_ALLOWED", None),
    ("wrong-method-collection", "PATCH", "", registration(), "cookie", 405,
     "METHOD_NOT_ALLOWED", None),
]


@pytest.fixture
def someone_elses_device(client, app):
    session_id, _ = log_in(client, app)
    response = send(client, "POST", BASE, registration(), bearer(session_id))
    assert response.status_code == 201
    return response.get_json()["device"]["id"]


@pytest.mark.parametrize(("method", "suffix", "sent", "credential", "status", "code",
                          "field"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_every_error_is_in_the_seeds_shape_and_changes_nothing(
        client, app, someone_elses_device, method, suffix, sent, credential, status, code,
        field):
    session_id, _ = log_in(client, app)
    register_mine = send(client, "POST", BASE, registration(), bearer(session_id))
    assert register_mine.status_code == 201
    headers = {}
    if credential == "cookie":
        client.set_cookie("access_token", access_token(client, session_id))
    elif credential == "garbage":
        client.set_cookie("access_token", "eyJ0.eyJ0.c2ln")
    elif credential == "api_key":
        headers["Authorization"] = f"Bearer {api_key(app)}"
    if code == "UNSUPPORTED_MEDIA_TYPE":
        headers["Content-Type"] = "text/plain"
    before = devices_table(app)
    response = send(client, method, BASE + suffix.format(other=someone_elses_device), sent,
                    headers)
    error = failed(response, status, code)
    assert error.get("field") == field, error
    if status == 405:
        assert method not in response.headers["Allow"]
    assert devices_table(app) == before


def test_an_anonymous_session_may_register_and_list(client):
    """The seed says user-only; a session that has not logged in is a user-to-be: its
    devices are its session's and join its user at login, as on every other surface."""
    session_id = create_session(client)
    response = send(client, "POST", BASE, registration(), bearer(session_id))
    assert response.status_code == 201
    assert len(send(client, "GET", BASE, headers=bearer(session_id)).get_json()["devices"]) == 1


def test_several_invalid_members_are_all_named(client, cookie):
    error = failed(send(client, "POST", BASE, {"channel": "fax", "app_version": 3}), 400,
                   "INVALID_ATTRIBUTE")
    assert {detail["field"] for detail in error["details"]} == {"channel", "token",
                                                                 "app_version"}


def test_a_crash_is_in_the_seeds_shape(client, cookie, monkeypatch):
    """The one injected fault: nothing real here crashes on purpose."""
    def crash(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr("app.resources.devices.list_devices", crash)
    error = failed(send(client, "GET", BASE), 500, "INTERNAL_ERROR")
    assert uuid.UUID(error["id"]) and "boom" not in str(error)
