"""The ``fcm`` channel in the one device registry: an FCM registration token is opaque
(printable ASCII without whitespace, at most 1,024 characters), unique per channel, moved
between users like an APNs token; it has no APNs environment, and Poparazzi's
``apple_device_tokens`` never shows it."""

import secrets

import pytest

from app.resources.devices import MAX_FCM_TOKEN_LENGTH
from tests import test_compat_cross_surface
from tests.compat_helpers import device_rows, send
from tests.factories import bearer, new_token

people = test_compat_cross_surface.people  # logged-in users with their credentials


def fcm_token():
    """Shaped like a real one: an instance id, a colon, a URL-safe base64 tail."""
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(104)}"


def post_device(client, who, **attributes):
    return client.post("/api/devices", headers=bearer(who.session), json={
        "data": {"type": "devices", "attributes": attributes}})


def registered(client, who, **attributes):
    response = post_device(client, who, **attributes)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["data"]


def test_an_fcm_device_has_no_apns_environment(client, people):
    alice, token = people(), fcm_token()
    device = registered(client, alice, channel="fcm", token=token, environment="sandbox",
                        is_voip=True, os_version="Android 15")
    attributes = device["attributes"]
    assert attributes["channel"] == "fcm" and attributes["environment"] is None
    assert attributes["is_voip"] is False and attributes["os_version"] == "Android 15"
    assert "token" not in attributes


def test_an_fcm_device_keeps_no_apns_attributes_through_a_patch(client, people):
    alice = people()
    device = registered(client, alice, channel="fcm", token=fcm_token())
    changed = client.patch(f"/api/devices/{device['id']}", headers=bearer(alice.session),
                           json={"data": {"type": "devices", "id": device["id"], "attributes": {
                               "environment": "sandbox", "is_voip": True,
                               "time_zone": "Europe/Paris"}}})
    assert changed.status_code == 200, changed.get_json()
    attributes = changed.get_json()["data"]["attributes"]
    assert (attributes["environment"], attributes["is_voip"], attributes["time_zone"]) == (
        None, False, "Europe/Paris")


@pytest.mark.parametrize("token", ["with space", "tab\there", "ünïcode", "x" * (
    MAX_FCM_TOKEN_LENGTH + 1), "new\nline"])
def test_malformed_fcm_tokens_are_refused_naming_the_token(client, app, people, token):
    response = post_device(client, people(), channel="fcm", token=token)
    assert response.status_code == 400, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["source"]["pointer"] == "/data/attributes/token"
    assert device_rows(app, channel="fcm") == []


def test_an_fcm_token_is_kept_exactly_as_sent(client, app, people):
    token = "AbC-_:~!" + "x" * (MAX_FCM_TOKEN_LENGTH - 8)
    registered(client, people(), channel="fcm", token=token)
    assert [row.token for row in device_rows(app, channel="fcm")] == [token]


def test_fcm_tokens_are_unique_per_channel(client, app, people):
    alice, shared = people(), new_token()  # hex: a valid token on both channels
    apns = registered(client, alice, channel="ios_push", token=shared)
    fcm = registered(client, alice, channel="fcm", token=shared)
    again = registered(client, alice, channel="fcm", token=shared, app_version="2.0")
    assert apns["id"] != fcm["id"] == again["id"]
    assert sorted(row.channel for row in device_rows(app, token=shared)) == ["fcm",
                                                                             "ios_push"]


def test_an_fcm_token_moves_to_the_user_who_registers_it_last(client, app, people):
    alice, bob, token = people(), people(), fcm_token()
    registered(client, alice, channel="fcm", token=token, fingerprint="pixel")
    registered(client, bob, channel="fcm", token=token, fingerprint="pixel-9")
    rows = device_rows(app, channel="fcm", token=token)
    assert [str(row.user_id) for row in rows] == [bob.user]
    alices = client.get("/api/devices", headers=bearer(alice.session)).get_json()["data"]
    assert [d["attributes"]["channel"] for d in alices] == [None]  # her installation stays


def test_an_android_device_is_one_device_on_every_surface_but_poparazzis(client, app,
                                                                          people):
    alice, token = people(), fcm_token()
    client.set_cookie("access_token", alice.jwt)
    try:
        made = send(client, "POST", "/v1/devices", {"channel": "fcm", "token": token,
                                                    "environment": "sandbox",
                                                    "device_model": "Pixel 9"})
    finally:
        client.delete_cookie("access_token")
    assert made.status_code == 201, made.get_json()
    device = made.get_json()["device"]
    assert device["channel"] == "fcm" and device["environment"] is None

    listed = client.get("/api/devices", headers=bearer(alice.session)).get_json()["data"]
    assert [(d["id"], d["attributes"]["channel"]) for d in listed] == [(device["id"], "fcm")]

    updated = send(client, "POST", "/api/v1/notifications/device-token", {
        "token": token, "platform": "android", "deviceId": "pixel-9",
        "timezone": "Europe/Istanbul"}, bearer(alice.jwt))
    assert updated.status_code == 200, updated.get_json()
    again = client.get(f"/api/devices/{device['id']}", headers=bearer(alice.session))
    assert again.get_json()["data"]["attributes"]["time_zone"] == "Europe/Istanbul"
    v1 = send(client, "GET", "/v1/devices", headers=bearer(alice.jwt)).get_json()
    assert [d["id"] for d in v1["devices"]] == [device["id"]]

    tokens = client.get("/api/apple_device_tokens", headers=bearer(alice.session))
    assert tokens.get_json()["data"] == []
    assert client.get(f"/api/apple_device_tokens/{token}",
                      headers=bearer(alice.session)).status_code in (400, 404)
    assert len(device_rows(app, token=token)) == 1


def test_android_on_the_seed_002_endpoint_needs_an_fcm_token(client, people):
    response = send(client, "POST", "/api/v1/notifications/device-token", {
        "token": "not a token", "platform": "android", "deviceId": "pixel"},
        bearer(people().jwt))
    assert response.status_code == 400
    assert any(error.startswith("token: ") for error in response.get_json()["errors"])
