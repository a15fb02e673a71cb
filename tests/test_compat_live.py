"""Seeds 002 and 003 against the real service (gunicorn): every captured payload is
matched member by member, the captured requests are accepted as captured, and one iPhone
goes through all four wire formats with the credential each one's client presents."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from flask import Flask

from app.compat import notifications_device_token_v1
from app.errors import Conflict
from tests.compat_helpers import api_key, device_rows
from tests.factories import last_code, new_token, random_phone
from tests.live_server import PoparazziClient
from tests.shapes import assert_same_shape

pytestmark = pytest.mark.slow

CONTRACT = Path(__file__).parent / "contract"
DEVICE_TOKEN = "/api/v1/notifications/device-token"
PLAIN = {"Content-Type": "application/json", "Accept": "application/json"}


def captured(name):
    return json.loads((CONTRACT / name).read_text())


class Person:
    """A logged-in iPhone user: the Poparazzi client (its session), an access token, and a
    plain-JSON client that sends it as the seeds' clients do."""

    def __init__(self, live, app):
        self.iphone = PoparazziClient(live.url)
        self.user_id = self.iphone.log_in(random_phone(), lambda phone: last_code(app, phone))
        minted = self.iphone.request("POST", "/api/access_tokens",
                                     {"data": {"type": "access_tokens"}})
        assert minted.status_code == 201, minted.text
        self.jwt = minted.json()["data"]["attributes"]["value"]
        self.http = requests.Session()
        self.http.trust_env = False
        self.url = live.url

    def plain(self, method, path, body=None, headers=None, cookie=False):
        cookies = {"access_token": self.jwt} if cookie else None
        return self.http.request(method, self.url + path, headers={**PLAIN, **(headers or {})},
                                 data=None if body is None else json.dumps(body),
                                 cookies=cookies, timeout=30)

    def bearer(self):
        return {"Authorization": f"Bearer {self.jwt}"}

    def close(self):
        self.iphone.close()
        self.http.close()


@pytest.fixture
def people(live, app):
    made = []

    def person():
        made.append(Person(live, app))
        return made[-1]
    yield person
    for each in made:
        each.close()


def matches(response, status, capture):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert_same_shape(captured(capture), response.json())
    return response.json()


# -- seed 002 ---------------------------------------------------------------------------

def with_a_push_to_start_token(request):
    """A captured request whose placeholder push-to-start token is a real one (hex)."""
    return {**request, "liveActivityPushToStartToken": "5a" * 40}


def test_allmine_captures_are_matched_live(people, app):
    alice = people()
    request = with_a_push_to_start_token(captured("allmine/device_token.post.request.json"))
    sample = matches(alice.plain("POST", DEVICE_TOKEN, request, alice.bearer()), 400,
                     "allmine/device_token.post.response.400.json")
    assert sample["errors"][0] == "Validation failed"  # "sample" is not an APNs token
    token = new_token()
    matches(alice.plain("POST", DEVICE_TOKEN, {**request, "token": token}, alice.bearer()),
            200, "allmine/device_token.post.response.200.json")
    matches(alice.plain("POST", DEVICE_TOKEN, with_a_push_to_start_token(
                captured("allmine/device_token.post.request.null_token.json")), alice.bearer()),
            200, "allmine/device_token.post.response.200.json")
    [device] = device_rows(app, token=token)
    assert (device.fingerprint, device.time_zone) == ("iphone-14-pro", "Europe/Istanbul")
    matches(alice.plain("POST", DEVICE_TOKEN, request), 401,
            "allmine/device_token.post.response.401.json")
    matches(alice.plain("POST", DEVICE_TOKEN, request,
                        {"Authorization": f"Bearer {api_key(app)}"}),
            403, "allmine/device_token.post.response.403.json")
    matches(alice.plain("POST", DEVICE_TOKEN + "s", request, alice.bearer()), 404,
            "allmine/device_token.post.response.404.json")


def test_allmine_conflict_has_the_captured_shape(app):
    """No registration conflicts today (every one is an upsert), so no request reaches a
    409 on this path; its rendering is checked directly."""
    with Flask(__name__).test_request_context(DEVICE_TOKEN, method="POST"):
        response = notifications_device_token_v1.render_error(
            Conflict("That device is being changed."))
    assert response.status_code == 409
    document = response.get_json()
    assert_same_shape(captured("allmine/device_token.post.response.409.json"), document)
    assert document["errors"][0] == ("Resource already exists or cannot be changed in its "
                                     "current state")


# -- seed 003 ---------------------------------------------------------------------------

def test_devices_captures_are_matched_live(people):
    alice = people()
    made = matches(alice.plain("POST", "/v1/devices",
                               captured("devices/devices.post.request.json"), cookie=True),
                   201, "devices/devices.post.response.201.json")
    listed = matches(alice.plain("GET", "/v1/devices", cookie=True), 200,
                     "devices/devices.get.response.json")
    assert listed["devices"] == [made["device"]]
    matches(alice.plain("DELETE", f"/v1/devices/{made['device']['id']}", cookie=True), 200,
            "devices/devices.delete.response.json")


# -- one iPhone through the four wire formats -----------------------------------------------

def _register_everywhere(person, token, fingerprint):
    """The same iPhone through each surface in turn, each with its clients' credential."""
    yield "poparazzi", person.iphone.patch_token(token)  # the session id, Bearer
    yield "json_api", person.iphone.request("POST", "/api/devices", {  # the session id
        "data": {"type": "devices", "attributes": {
            "channel": "ios_push", "token": token, "fingerprint": fingerprint}}})
    yield "allmine", person.plain("POST", DEVICE_TOKEN, {  # an access token, Bearer
        "token": token, "platform": "ios", "deviceId": fingerprint,
        "timezone": "Europe/Istanbul"}, person.bearer())
    yield "devices_v1", person.plain("POST", "/v1/devices", {  # an access token, cookie
        "channel": "ios_push", "token": token}, cookie=True)


def _seen(person):
    tokens = person.iphone.request("GET", "/api/apple_device_tokens").json()["data"]
    devices = person.iphone.request("GET", "/api/devices?filter[channel]=ios_push"
                                    ).json()["data"]
    v1 = person.plain("GET", "/v1/devices", cookie=True).json()["devices"]
    return SimpleNamespace(tokens=[item["id"] for item in tokens],
                           devices=[item["id"] for item in devices],
                           v1=[item["id"] for item in v1])


def test_one_iphone_through_every_surface_is_one_row(live, people, app):
    alice, bob, token = people(), people(), new_token()
    device_ids = set()
    for surface, response in _register_everywhere(alice, token, "alices-iphone"):
        assert response.status_code in (200, 201), (surface, response.text)
        rows = device_rows(app, token=token)
        assert [str(row.user_id) for row in rows] == [alice.user_id], surface
        device_ids.add(rows[0].id)
        seen = _seen(alice)
        assert seen.tokens == [token] and seen.devices == seen.v1 == [str(rows[0].id)]
    assert len(device_ids) == 1, "the device kept its id through every surface"

    taken = bob.plain("POST", "/v1/devices", {"channel": "ios_push", "token": token},
                      cookie=True)
    assert taken.status_code == 201, taken.text
    assert [str(row.user_id) for row in device_rows(app, token=token)] == [bob.user_id]
    assert vars(_seen(alice)) == {"tokens": [], "devices": [], "v1": []}
    assert _seen(bob).tokens == [token]
    # Alice's installation stays (her auth tokens could hang off it), without the token.
    [installation] = device_rows(app, fingerprint="alices-iphone")
    assert installation.token is None and str(installation.user_id) == alice.user_id

