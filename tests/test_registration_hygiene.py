"""What a registration may store for the push workers to send: bundle ids (they become the
``apns-topic`` header) as Apple allows them, and Live Activity push-to-start tokens under
the device token's rule, on every surface that takes them. A refused value is a 400 naming
its member, and nothing changes.

(Issue 19, items 1 and 8a: one user's bundle id with a CR or LF broke the connection other
users' pushes shared; push-to-start tokens failed only at send time.)
"""

import pytest

from app.security.crypto import unseal
from tests.compat_helpers import access_token, device_rows, send
from tests.factories import bearer, new_token, token_document
from tests.jsonapi_helpers import Caller, error_of, snapshot

DEVICES = "/api/devices"
ALLMINE = "/api/v1/notifications/device-token"
BAD_BUNDLE_IDS = {
    "cr": "com.example.app\r", "lf": "com.example.app\n",
    "crlf": "com.example.app\r\napns-priority: 10", "trailing-space": "com.example.app ",
    "leading-space": " com.example.app", "inner-space": "com.example .app",
    "too-long": "com." + "a" * 152, "slash": "com.example/app", "underscore": "com.ex_ample",
    "non-ascii": "com.exämple.app", "colon": "com.example:app", "empty": "",
}
GOOD_BUNDLE_IDS = ["TTYL.Inc.Poparazzi", "com.example.app", "com.example.my-app2",
                   "a" * 155]
BAD_PUSH_TO_START = {"not-hex": "zz" * 40, "placeholder": "push_to_start_token_value",
                     "odd-length": "a" * 81, "too-short": "ab" * 31, "too-long": "ab" * 101,
                     "empty": ""}
PUSH_TO_START = "5A" * 40  # upper-case, as some clients send it


def devices_document(**attributes):
    return {"data": {"type": "devices", "attributes": {
        "channel": "ios_push", "token": new_token(), **attributes}}}


def registered_device(client, caller, **attributes):
    response = client.post(DEVICES, json=devices_document(**attributes), headers=caller.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


def refused(app, request, pointer):
    """``request()``'s answer is a JSON:API 400 pointing at ``pointer``; nothing changed."""
    before = snapshot(app)
    error = error_of(request(), 400)
    assert error["source"] == {"pointer": pointer}, error
    assert snapshot(app) == before, "the refused request changed the database"
    return error


# -- bundle ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("bundle_id", BAD_BUNDLE_IDS.values(), ids=BAD_BUNDLE_IDS.keys())
def test_a_bad_bundle_id_is_refused_by_every_surface_that_takes_one(client, app, bundle_id):
    caller = Caller(client, app)
    device = registered_device(client, caller)
    token = new_token()
    pointer = "/data/attributes/bundle_id"

    error = refused(app, lambda: client.post(DEVICES, json=devices_document(
        bundle_id=bundle_id), headers=caller.headers), pointer)
    assert "reverse-DNS" in error["detail"] or "155" in error["detail"]
    refused(app, lambda: client.patch(f"{DEVICES}/{device['id']}", json={"data": {
        "type": "devices", "id": device["id"], "attributes": {"bundle_id": bundle_id}}},
        headers=caller.headers), pointer)
    refused(app, lambda: client.patch(f"/api/apple_device_tokens/{token}", json=token_document(
        token, bundle_id=bundle_id), headers=caller.headers), pointer)
    refused(app, lambda: client.post("/api/apple_device_tokens", json=token_document(
        token, bundle_id=bundle_id), headers=caller.headers), pointer)


@pytest.mark.parametrize("bundle_id", GOOD_BUNDLE_IDS)
def test_reverse_dns_bundle_ids_are_still_taken(client, app, bundle_id):
    caller = Caller(client, app)
    device = registered_device(client, caller, bundle_id=bundle_id)
    token = new_token()
    response = client.patch(f"/api/apple_device_tokens/{token}",
                            json=token_document(token, bundle_id=bundle_id),
                            headers=caller.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["bundle_id"] == bundle_id
    assert device["attributes"]["bundle_id"] == bundle_id


def test_the_seed_003_surface_takes_no_bundle_id(client, app):
    caller = Caller(client, app)
    token = new_token()
    response = send(client, "POST", "/v1/devices", {
        "channel": "ios_push", "token": token, "bundle_id": "com.example.app\r\nx: 1"},
        bearer(access_token(client, caller.session_id)))
    assert response.status_code == 201, response.get_json()
    [device] = device_rows(app, token=token)
    assert device.bundle_id is None  # an unknown member, ignored as the seed does


# -- Live Activity push-to-start tokens ------------------------------------------------------


@pytest.mark.parametrize("value", BAD_PUSH_TO_START.values(), ids=BAD_PUSH_TO_START.keys())
def test_a_bad_push_to_start_token_is_refused_on_json_api(client, app, value):
    caller = Caller(client, app)
    device = registered_device(client, caller)
    pointer = "/data/attributes/live_activity_push_to_start_token"

    error = refused(app, lambda: client.post(DEVICES, json=devices_document(
        live_activity_push_to_start_token=value), headers=caller.headers), pointer)
    assert "push-to-start token" in error["detail"]
    refused(app, lambda: client.patch(f"{DEVICES}/{device['id']}", json={"data": {
        "type": "devices", "id": device["id"],
        "attributes": {"live_activity_push_to_start_token": value}}},
        headers=caller.headers), pointer)
    if value:
        assert value not in error["detail"]  # a token is never echoed


@pytest.mark.parametrize("token", [new_token(), None], ids=["with-token", "null-token"])
@pytest.mark.parametrize("value", BAD_PUSH_TO_START.values(), ids=BAD_PUSH_TO_START.keys())
def test_a_bad_push_to_start_token_is_refused_on_seed_002(client, app, value, token):
    caller = Caller(client, app)
    before = snapshot(app)
    response = send(client, "POST", ALLMINE, {
        "token": token, "platform": "ios", "deviceId": "iphone-14-pro",
        "liveActivityPushToStartToken": value}, bearer(access_token(client, caller.session_id)))
    assert response.status_code == 400, response.get_json()
    errors = response.get_json()["errors"]
    assert errors[0] == "Validation failed"
    assert any(error.startswith("liveActivityPushToStartToken: ") for error in errors), errors
    assert snapshot(app) == before


def test_a_push_to_start_token_is_stored_in_canonical_form_on_every_surface(client, app):
    caller = Caller(client, app)
    made = registered_device(client, caller, fingerprint="ipad",
                             live_activity_push_to_start_token=f"<{PUSH_TO_START[:40]} "
                                                               f"{PUSH_TO_START[40:]}>")
    response = send(client, "POST", ALLMINE, {
        "token": None, "platform": "ios", "deviceId": "iphone-14-pro",
        "liveActivityPushToStartToken": PUSH_TO_START},
        bearer(access_token(client, caller.session_id)))
    assert response.status_code == 200, response.get_json()

    for device in (*device_rows(app, fingerprint="ipad"),
                   *device_rows(app, fingerprint="iphone-14-pro")):
        with app.app_context():
            assert unseal(device.live_activity_token) == PUSH_TO_START.lower()
    assert made["id"] == str(device_rows(app, fingerprint="ipad")[0].id)
