"""One device registry behind four wire formats: a device registered on any surface is
seen, changed and deleted through every other; a token moving between users moves on all
of them at once; an invalidated token registered again anywhere is valid again."""

from types import SimpleNamespace

import pytest

from tests.compat_helpers import access_token, device_rows, send
from tests.factories import bearer, log_in, new_token, token_document

JSONAPI = {"Content-Type": "application/vnd.api+json"}


@pytest.fixture
def people(client, app):
    def person():
        session_id, user_id = log_in(client, app)
        return SimpleNamespace(session=session_id, user=user_id,
                               jwt=access_token(client, session_id))
    return person


# -- registering, each surface with the credential its clients present -------------------

def poparazzi(client, who, token, **attributes):
    response = client.patch(f"/api/apple_device_tokens/{token}",
                            json=token_document(token, **attributes), headers=bearer(who.session))
    assert response.status_code == 200, response.get_json()


def json_api(client, who, token, fingerprint="iphone-14-pro"):
    response = client.post("/api/devices", headers=bearer(who.session), json={
        "data": {"type": "devices", "attributes": {
            "channel": "ios_push", "token": token, "fingerprint": fingerprint}}})
    assert response.status_code in (200, 201), response.get_json()


def allmine(client, who, token, fingerprint="iphone-14-pro"):
    response = send(client, "POST", "/api/v1/notifications/device-token", {
        "token": token, "platform": "ios", "deviceId": fingerprint,
        "timezone": "Europe/Istanbul"}, bearer(who.jwt))
    assert response.status_code == 200, response.get_json()


def devices_v1(client, who, token):
    client.set_cookie("access_token", who.jwt)
    try:
        response = send(client, "POST", "/v1/devices", {"channel": "ios_push", "token": token})
    finally:
        client.delete_cookie("access_token")
    assert response.status_code == 201, response.get_json()


REGISTER = {"poparazzi": poparazzi, "json_api": json_api, "allmine": allmine,
            "devices_v1": devices_v1}


# -- seeing, each surface listing what the caller has ------------------------------------

def seen(client, who):
    """{surface: the ids (or tokens, Poparazzi's ids) of the caller's push endpoints}."""
    tokens = client.get("/api/apple_device_tokens", headers=bearer(who.session)).get_json()
    devices = client.get("/api/devices?filter[channel]=ios_push",
                         headers=bearer(who.session)).get_json()
    v1 = send(client, "GET", "/v1/devices", headers=bearer(who.jwt)).get_json()
    return {"poparazzi": [item["id"] for item in tokens["data"]],
            "json_api": [item["id"] for item in devices["data"]],
            "devices_v1": [item["id"] for item in v1["devices"]]}


def seen_once(client, who, token):
    """The one device the caller has, the same on every surface: its id."""
    [device_id] = seen(client, who)["json_api"]
    assert seen(client, who) == {"poparazzi": [token], "json_api": [device_id],
                                 "devices_v1": [device_id]}
    return device_id


def nothing_seen(client, who):
    assert seen(client, who) == {"poparazzi": [], "json_api": [], "devices_v1": []}


# -- changing and deleting through each surface -------------------------------------------

def delete_poparazzi(client, who, token, _device_id):
    return client.delete(f"/api/apple_device_tokens/{token}", headers=bearer(who.session))


def delete_json_api(client, who, _token, device_id):
    return client.delete(f"/api/devices/{device_id}", headers=bearer(who.session))


def delete_v1(client, who, _token, device_id):
    return send(client, "DELETE", f"/v1/devices/{device_id}", headers=bearer(who.jwt))


DELETE = {"poparazzi": delete_poparazzi, "json_api": delete_json_api, "devices_v1": delete_v1}


@pytest.mark.parametrize("surface", REGISTER)
def test_registered_anywhere_it_is_seen_and_changed_everywhere(client, app, people,
                                                               surface):
    alice, token = people(), new_token()
    REGISTER[surface](client, alice, token)
    device_id = seen_once(client, alice, token)
    for again in REGISTER.values():  # refreshing through each surface keeps one device
        again(client, alice, token)
        assert seen_once(client, alice, token) == device_id
    changed = client.patch(f"/api/devices/{device_id}", headers=bearer(alice.session), json={
        "data": {"type": "devices", "id": device_id, "attributes": {"os_version": "iOS 19"}}})
    assert changed.status_code == 200
    v1 = send(client, "GET", "/v1/devices", headers=bearer(alice.jwt)).get_json()
    assert v1["devices"][0]["os_version"] == "iOS 19"
    assert len(device_rows(app, token=token)) == 1


@pytest.mark.parametrize("deleting", DELETE)
@pytest.mark.parametrize("registering", REGISTER)
def test_registered_anywhere_it_is_deleted_anywhere(client, app, people, registering,
                                                    deleting):
    alice, token = people(), new_token()
    REGISTER[registering](client, alice, token)
    device_id = seen_once(client, alice, token)
    assert DELETE[deleting](client, alice, token, device_id).status_code in (200, 204)
    nothing_seen(client, alice)
    assert device_rows(app, token=token) == []


@pytest.mark.parametrize("taking", REGISTER)
@pytest.mark.parametrize("registering", REGISTER)
def test_a_token_taken_over_on_one_surface_leaves_its_user_on_all(client, app, people,
                                                                  registering, taking):
    alice, bob, token = people(), people(), new_token()
    REGISTER[registering](client, alice, token)
    REGISTER[taking](client, bob, token)
    nothing_seen(client, alice)
    seen_once(client, bob, token)
    assert [str(row.user_id) for row in device_rows(app, token=token)] == [bob.user]


@pytest.mark.parametrize("surface", REGISTER)
def test_an_invalidated_token_registered_again_anywhere_is_valid_again(client, app, people,
                                                                       surface):
    alice, token = people(), new_token()
    poparazzi(client, alice, token, is_invalidated=True)
    assert [row.is_invalidated for row in device_rows(app, token=token)] == [True]
    REGISTER[surface](client, alice, token)
    assert [row.is_invalidated for row in device_rows(app, token=token)] == [False]
