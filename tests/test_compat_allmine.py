"""Seed 002, ``POST /api/v1/notifications/device-token``: Allmine's envelope over the one
device registry."""

import re

import pytest

from app.security import crypto
from tests.compat_helpers import access_token, api_key, device_rows, devices_table, send
from tests.factories import bearer, create_session, log_in, new_token, register_token

PATH = "/api/v1/notifications/device-token"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
PUSH_TO_START = "5a" * 40


def body(**changes):
    return {"token": new_token(), "platform": "ios", "deviceId": "iphone-14-pro",
            "timezone": "Europe/Istanbul", "liveActivityPushToStartToken": PUSH_TO_START,
            **changes}


def envelope(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert set(document) == {"isSuccess", "statusCode", "data", "errors", "timestamp"}
    assert document["statusCode"] == status and document["isSuccess"] is (status < 400)
    assert TIMESTAMP.match(document["timestamp"]), document
    assert all(isinstance(error, str) for error in document["errors"])
    return document


def unsealed(app, stored):
    with app.app_context():
        return crypto.unseal(stored)


def succeeded(response):
    document = envelope(response, 200)
    assert document["data"] == {"success": True} and document["errors"] == []


@pytest.fixture
def caller(client, app):
    """A logged-in user: (session id, user id, an access token for the session)."""
    session_id, user_id = log_in(client, app)
    return session_id, user_id, access_token(client, session_id)


def test_a_token_registers_the_device_the_app_names(client, app, caller):
    session_id, user_id, jwt = caller
    sent = body()
    succeeded(send(client, "POST", PATH, sent, bearer(jwt)))
    [device] = device_rows(app, fingerprint="iphone-14-pro")
    assert (device.token, device.channel, device.time_zone) == (
        sent["token"], "ios_push", "Europe/Istanbul")
    assert str(device.user_id) == user_id
    assert device.live_activity_token != PUSH_TO_START  # sealed at rest
    assert unsealed(app, device.live_activity_token) == PUSH_TO_START
    listed = client.get("/api/apple_device_tokens", headers=bearer(session_id)).get_json()
    assert [token["id"] for token in listed["data"]] == [sent["token"]]


def test_a_null_token_changes_only_the_time_zone_and_push_to_start_token(client, app,
                                                                         caller):
    _, _, jwt = caller
    sent = body()
    succeeded(send(client, "POST", PATH, sent, bearer(jwt)))
    [before] = device_rows(app, fingerprint="iphone-14-pro")
    succeeded(send(client, "POST", PATH, body(token=None, timezone="Asia/Tokyo",
                                              liveActivityPushToStartToken="6b" * 40),
                   bearer(jwt)))
    [after] = device_rows(app, fingerprint="iphone-14-pro")
    assert (after.id, after.token, after.time_zone) == (before.id, sent["token"], "Asia/Tokyo")
    assert unsealed(app, after.live_activity_token) == "6b" * 40
    assert (after.is_invalidated, after.session_id) == (before.is_invalidated,
                                                        before.session_id)


def test_a_null_token_for_an_unknown_device_makes_it_without_a_push_endpoint(client, app,
                                                                             caller):
    _, user_id, jwt = caller
    succeeded(send(client, "POST", PATH, {"platform": "ios", "deviceId": "ipad",
                                          "timezone": "UTC"}, bearer(jwt)))
    [device] = device_rows(app, fingerprint="ipad")
    assert (device.token, device.time_zone, str(device.user_id)) == (None, "UTC", user_id)


def test_the_access_token_cookie_and_user_credentials_are_accepted(client, app, caller):
    session_id, _, jwt = caller
    client.set_cookie("access_token", jwt)
    succeeded(send(client, "POST", PATH, body(deviceId="by-cookie")))
    client.delete_cookie("access_token")
    succeeded(send(client, "POST", PATH, body(deviceId="by-session"), bearer(session_id)))
    assert len(device_rows(app)) == 2


def test_the_captured_sample_token_is_not_an_apns_token(client, caller):
    document = envelope(send(client, "POST", PATH, body(token="sample"), bearer(caller[2])),
                        400)
    assert document["errors"][0] == "Validation failed"
    assert document["errors"][1].startswith("token: A device token is")


def test_a_token_of_another_user_moves_to_the_caller(client, app, caller):
    other_session, _ = log_in(client, app)
    token = register_token(client, other_session)
    succeeded(send(client, "POST", PATH, body(token=token), bearer(caller[2])))
    [device] = device_rows(app, token=token)
    assert str(device.user_id) == caller[1]
    assert client.get("/api/apple_device_tokens", headers=bearer(other_session)
                      ).get_json()["data"] == []


# -- every error is the envelope, and changes nothing ------------------------------------

SEED = {400: "Validation failed", 401: "Authentication required",
        403: "Insufficient permissions", 404: "Resource not found"}
CASES = [
    # (id, method, path suffix, body, headers (credential given by name), status, detail)
    ("time-zone", "POST", "", body(timezone="Mars/Base"), "jwt", 400,
     "timezone: 'Mars/Base' is not an IANA time zone."),
    ("platform", "POST", "", body(platform="windows"), "jwt", 400, "platform: "),
    ("no-device-id", "POST", "", {"token": None, "platform": "ios"}, "jwt", 400,
     "deviceId: Missing data"),
    ("sample-token", "POST", "", body(token="sample"), "jwt", 400, "token: "),
    ("token-type", "POST", "", body(token=7), "jwt", 400, "token: "),
    ("malformed-json", "POST", "", "{not json", "jwt", 400, "not valid JSON"),
    ("array-body", "POST", "", [], "jwt", 400, "JSON object"),
    ("empty-push-to-start", "POST", "", body(liveActivityPushToStartToken=""), "jwt", 400,
     "liveActivityPushToStartToken: "),
    ("no-credential", "POST", "", body(), None, 401, None),
    ("bad-jwt", "POST", "", body(), "Bearer eyJ0.eyJ0.c2ln", 401, None),
    ("api-key", "POST", "", body(), "api_key", 403, "API keys cannot be used here"),
    ("anonymous-session", "POST", "", body(), "anonymous", 403, "fingerprint: "),
    ("unknown-path", "POST", "-more", body(), "jwt", 404, "There is nothing at"),
    ("deeper-path", "GET", "/x/y", None, "jwt", 404, None),
    ("wrong-method", "GET", "", None, "jwt", 405, None),
    ("content-type", "POST", "", body(), "jwt", 415, "Content-Type: "),
    ("too-large", "POST", "", body(deviceId="x" * 70000), "jwt", 413, None),
]


def _credential(client, app, caller, name):
    if name is None or name.startswith("Bearer "):
        return name
    if name == "api_key":
        return f"Bearer {api_key(app)}"
    if name == "anonymous":
        return f"Bearer {create_session(client)}"
    return f"Bearer {caller[2]}"


@pytest.mark.parametrize(("method", "suffix", "sent", "credential", "status", "detail"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_every_error_is_the_envelope_and_changes_nothing(client, app, caller, method, suffix,
                                                         sent, credential, status, detail):
    headers = {"Authorization": _credential(client, app, caller, credential)}
    if detail == "Content-Type: ":
        headers["Content-Type"] = "text/plain"
    before = devices_table(app)
    document = envelope(send(client, method, PATH + suffix, sent, headers), status)
    assert document["data"] is None
    assert document["errors"][0] == SEED.get(status, document["errors"][0])
    assert len(document["errors"]) >= 2 and all(document["errors"])
    if detail is not None:
        assert any(error.startswith(detail) or detail in error
                   for error in document["errors"][1:]), document
    assert devices_table(app) == before


def test_a_crash_is_the_envelope_too(client, caller, monkeypatch):
    """The one injected fault: nothing real here crashes on purpose."""
    def crash(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr("app.resources.devices.register", crash)
    document = envelope(send(client, "POST", PATH, body(), bearer(caller[2])), 500)
    assert document["errors"][0] == "Internal server error"
    assert document["errors"][-1].startswith("Error id: ")
    assert "boom" not in str(document)
