"""``/api/devices``: app installations and their push endpoints, end to end in-process.

Registration by token or fingerprint (201 made / 200 found), tokens that move between
users, the caller's devices only, metadata changes, hard deletes, write-only members that
never come back, and bad input that changes nothing.
"""

import json
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Device
from app.security.crypto import unseal
from tests.factories import bearer, create_session, new_token, register_token
from tests.jsonapi_helpers import Caller, body, device_id, error_of
from tests.test_bad_input import LEAKS, snapshot

DEVICES = "/api/devices"
PUSH_TO_START = "7f" * 40  # a Live Activity push-to-start token


def device_document(**attributes):
    return {"data": {"type": "devices", "attributes": attributes}}


def iphone(token=None, **attributes):
    """A registration as an iOS app sends it."""
    return device_document(**{
        "channel": "ios_push", "token": token or new_token(), "environment": "sandbox",
        "bundle_id": "com.example.app", "app_version": "2.1.0", "build_number": "77",
        "device_model": "iPhone15,3", "os_version": "iOS 18.2", "time_zone": "Europe/Paris",
        "is_voip": False, **attributes})


def post(client, caller, document, status):
    return body(client.post(DEVICES, json=document, headers=caller.headers), status)


def change(device, **attributes):
    return {"data": {"type": "devices", "id": device["id"], "attributes": attributes}}


def stored(app, column, device_id_text):
    with app.app_context():
        try:
            return db.session.scalar(select(column).where(Device.id == uuid.UUID(device_id_text)))
        finally:
            db.session.remove()


# -- registering -------------------------------------------------------------------------


def test_registering_makes_a_device_then_refreshes_it(client, app):
    caller = Caller(client, app)
    token = new_token()
    response = client.post(DEVICES, json=iphone(token), headers=caller.headers)
    made = body(response, 201)["data"]
    assert response.headers["Location"].endswith(f"{DEVICES}/{made['id']}")
    expected = {"channel": "ios_push", "environment": "sandbox", "app_version": "2.1.0",
                "device_model": "iPhone15,3", "time_zone": "Europe/Paris",
                "is_invalidated": False, "invalidated_reason": None, "invalidated_at": None}
    assert {name: made["attributes"][name] for name in expected} == expected
    assert made["relationships"]["user"]["data"] == {"type": "users", "id": caller.user_id}
    again = post(client, caller, iphone(token.upper(), app_version="2.2.0"), 200)["data"]
    assert again["id"] == made["id"] and again["attributes"]["app_version"] == "2.2.0"
    assert again["attributes"]["last_seen_at"] >= made["attributes"]["last_seen_at"]
    assert again["attributes"]["created_at"] == made["attributes"]["created_at"]


def test_environment_defaults_to_production(client, app):
    caller = Caller(client, app)
    document = device_document(channel="ios_push", token=new_token())
    assert post(client, caller, document, 201)["data"]["attributes"]["environment"] == \
        "production"


def test_a_fingerprint_finds_the_installation_and_gives_it_a_token(client, app):
    caller = Caller(client, app)
    made = post(client, caller, device_document(fingerprint="phone-1", os_version="iOS 18"),
                201)["data"]
    assert made["attributes"]["channel"] is None
    token = new_token()
    found = post(client, caller, iphone(token, fingerprint="phone-1"), 200)["data"]
    assert found["id"] == made["id"] and found["attributes"]["channel"] == "ios_push"
    assert found["attributes"]["fingerprint"] == "phone-1"
    assert stored(app, Device.token, made["id"]) == token


def test_a_fingerprint_needs_a_logged_in_session(client):
    session_id = create_session(client)
    response = client.post(DEVICES, json=iphone(fingerprint="phone-1"),
                           headers=bearer(session_id))
    error = error_of(response, 403)
    assert error["source"] == {"pointer": "/data/attributes/fingerprint"}
    # without a fingerprint the session registers its token like Poparazzi's client does
    assert client.post(DEVICES, json=iphone(), headers=bearer(session_id)).status_code == 201


def test_a_token_registered_by_another_user_moves_to_them(client, app):
    alice, bob = Caller(client, app), Caller(client, app)
    token = new_token()
    old = post(client, alice, iphone(token, fingerprint="alice-phone"), 201)["data"]
    new = post(client, bob, iphone(token), 201)["data"]
    assert new["relationships"]["user"]["data"]["id"] == bob.user_id
    assert body(client.get(DEVICES, headers=bob.headers), 200)["data"][0]["id"] == new["id"]
    # Alice keeps her installation, without the token
    (left,) = body(client.get(DEVICES, headers=alice.headers), 200)["data"]
    assert left["id"] == old["id"] and left["attributes"]["channel"] is None
    with app.app_context():
        assert db.session.scalars(select(Device.id).where(Device.token == token)).all() == [
            uuid.UUID(new["id"])]
        db.session.remove()


def test_a_registration_revives_an_invalidated_token(client, app):
    caller = Caller(client, app)
    token = register_token(client, caller.session_id, is_invalidated=True)
    assert stored(app, Device.is_invalidated, device_id(app, token)) is True
    revived = post(client, caller, iphone(token), 200)["data"]
    assert revived["attributes"]["is_invalidated"] is False


# -- one row, two views --------------------------------------------------------------------


def test_a_poparazzi_token_is_a_device_and_the_other_way_round(client, app):
    caller = Caller(client, app)
    token = register_token(client, caller.session_id, bundle_version="3.1.23")
    (device,) = body(client.get(DEVICES, headers=caller.headers), 200)["data"]
    assert device["id"] == device_id(app, token)
    assert device["attributes"]["app_version"] == "3.1.23"
    registered = post(client, caller, iphone(token, app_version="4.0"), 200)["data"]
    assert registered["id"] == device["id"]
    shown = body(client.get(f"/api/apple_device_tokens/{token}", headers=caller.headers),
                 200)["data"]["attributes"]
    assert (shown["bundle_version"], shown["is_production"]) == ("4.0", False)
    other = new_token()
    made = post(client, caller, iphone(other), 201)["data"]
    assert body(client.get(f"/api/apple_device_tokens/{other}", headers=caller.headers),
                200)["data"]["id"] == other
    assert client.delete(f"/api/apple_device_tokens/{other}",
                         headers=caller.headers).status_code == 204
    error_of(client.get(f"{DEVICES}/{made['id']}", headers=caller.headers), 404)


# -- reading -------------------------------------------------------------------------------


def test_listing_the_callers_devices_latest_seen_first(client, app):
    caller, other = Caller(client, app), Caller(client, app)
    first = post(client, caller, iphone(), 201)["data"]["id"]
    second = post(client, caller, iphone(environment="production"), 201)["data"]["id"]
    post(client, other, iphone(), 201)
    listed = body(client.get(DEVICES, headers=caller.headers), 200)
    assert [item["id"] for item in listed["data"]] == [second, first]
    post(client, caller, iphone(stored(app, Device.token, first)), 200)  # seen again
    for query, expected in (("", [first, second]), ("?sort=created_at", [first, second]),
                            ("?sort=-created_at", [second, first]),
                            ("?sort=last_seen_at", [second, first]),
                            ("?filter[environment]=production", [second]),
                            ("?filter[channel]=ios_push&filter[is_invalidated]=false",
                             [first, second]),
                            ("?filter[is_invalidated]=true", [])):
        listed = body(client.get(DEVICES + query, headers=caller.headers), 200)
        assert [item["id"] for item in listed["data"]] == expected, query
    for query in ("?filter[environment]=staging", "?sort=token", "?filter[token]=x"):
        error_of(client.get(DEVICES + query, headers=caller.headers), 400)


def test_a_sessions_devices_are_its_own_before_login(client):
    session_id = create_session(client)
    made = client.post(DEVICES, json=iphone(), headers=bearer(session_id)).get_json()["data"]
    listed = client.get(DEVICES, headers=bearer(session_id)).get_json()["data"]
    assert [item["id"] for item in listed] == [made["id"]]
    assert made["relationships"]["user"]["data"] is None


def test_a_device_with_its_user(client, app):
    caller = Caller(client, app)
    made = post(client, caller, iphone(), 201)["data"]
    document = body(client.get(f"{DEVICES}/{made['id']}?include=user",
                               headers=caller.headers), 200)
    assert document["data"]["id"] == made["id"]
    assert [(item["type"], item["id"]) for item in document["included"]] == [
        ("users", caller.user_id)]
    related = body(client.get(f"{DEVICES}/{made['id']}/user", headers=caller.headers), 200)
    assert related["data"]["id"] == caller.user_id


def test_a_users_devices_are_every_channel_and_detach_by_id(client, app):
    caller = Caller(client, app)
    with_token = post(client, caller, iphone(), 201)["data"]["id"]
    without = post(client, caller, device_document(fingerprint="tablet"), 201)["data"]["id"]
    url = f"/api/users/{caller.user_id}/relationships/devices"
    linkage = body(client.get(url, headers=caller.headers), 200)["data"]
    assert {item["id"] for item in linkage} == {with_token, without}
    assert {item["type"] for item in linkage} == {"devices"}
    response = client.delete(url, headers=caller.headers, data=json.dumps(
        {"data": [{"type": "devices", "id": with_token}]}))
    assert response.status_code == 204
    assert [item["id"] for item in body(client.get(url, headers=caller.headers),
                                        200)["data"]] == [without]
    response = client.delete(url, headers=caller.headers, data=json.dumps(
        {"data": [{"type": "devices", "id": "not-a-uuid"}]}))
    assert error_of(response, 400)["source"] == {"pointer": "/data/0/id"}


# -- changing and deleting -----------------------------------------------------------------


def test_changing_a_devices_metadata(client, app):
    caller = Caller(client, app)
    made = post(client, caller, iphone(fingerprint="phone-1"), 201)["data"]
    url = f"{DEVICES}/{made['id']}"
    changed = body(client.patch(url, json=change(
        made, os_version="iOS 19.0", time_zone="America/New_York", is_voip=True,
        environment="production", live_activity_push_to_start_token=PUSH_TO_START),
        headers=caller.headers), 200)["data"]["attributes"]
    assert (changed["os_version"], changed["time_zone"], changed["is_voip"],
            changed["environment"]) == ("iOS 19.0", "America/New_York", True, "production")
    sealed = stored(app, Device.live_activity_token, made["id"])
    with app.app_context():
        assert PUSH_TO_START not in sealed and unseal(sealed) == PUSH_TO_START


def test_a_fetched_device_sent_back_whole_passes(client, app):
    caller = Caller(client, app)
    made = post(client, caller, iphone(fingerprint="phone-1"), 201)["data"]
    url = f"{DEVICES}/{made['id']}"
    fetched = body(client.get(url, headers=caller.headers), 200)["data"]
    fetched["attributes"]["app_version"] = "3.0"
    sent = {"data": {key: fetched[key] for key in ("type", "id", "attributes",
                                                  "relationships")}}
    answered = body(client.patch(url, json=sent, headers=caller.headers), 200)["data"]
    assert answered["attributes"]["app_version"] == "3.0"


@pytest.mark.parametrize(("attributes", "status", "code", "member"), [
    ({"created_at": "2020-01-01T00:00:00.000Z"}, 403, "READ_ONLY_ATTRIBUTE", "created_at"),
    ({"is_invalidated": True}, 403, "READ_ONLY_ATTRIBUTE", "is_invalidated"),
    ({"fingerprint": "another"}, 403, "READ_ONLY_ATTRIBUTE", "fingerprint"),
    ({"channel": None}, 403, "READ_ONLY_ATTRIBUTE", "channel"),
    ({"token": "ab" * 32}, 400, "INVALID_ATTRIBUTE", "token"),
    ({"time_zone": "Mars/Olympus_Mons"}, 400, "INVALID_ATTRIBUTE", "time_zone"),
    ({"environment": "staging"}, 400, "INVALID_ATTRIBUTE", "environment"),
    ({"is_voip": "yes"}, 400, "INVALID_ATTRIBUTE", "is_voip"),
])
def test_a_change_to_what_registration_sets_is_refused(client, app, attributes, status, code,
                                                        member):
    caller = Caller(client, app)
    made = post(client, caller, iphone(fingerprint="phone-1"), 201)["data"]
    before = snapshot(app)
    error = error_of(client.patch(f"{DEVICES}/{made['id']}", json=change(made, **attributes),
                                  headers=caller.headers), status)
    assert (error["code"], error["source"]) == (code, {"pointer": f"/data/attributes/{member}"})
    assert snapshot(app) == before


def test_deleting_a_device(client, app):
    caller = Caller(client, app)
    made = post(client, caller, iphone(), 201)["data"]
    url = f"{DEVICES}/{made['id']}"
    response = client.delete(url, headers=caller.headers)
    assert response.status_code == 204 and response.get_data() == b""
    error_of(client.get(url, headers=caller.headers), 404)
    error_of(client.delete(url, headers=caller.headers), 404)
    assert stored(app, Device.id, made["id"]) is None


# -- authorization ---------------------------------------------------------------------------


def test_nobody_reads_changes_or_deletes_another_users_device(client, app):
    owner, other = Caller(client, app), Caller(client, app)
    made = post(client, owner, iphone(fingerprint="phone-1"), 201)["data"]
    url = f"{DEVICES}/{made['id']}"
    before = snapshot(app)
    for method, suffix, document in (
            ("GET", "", None), ("GET", "/user", None), ("GET", "/relationships/user", None),
            ("PATCH", "", change(made, os_version="hacked")), ("DELETE", "", None)):
        response = client.open(url + suffix, method=method, headers=other.headers,
                               data=None if document is None else json.dumps(document))
        assert error_of(response, 404)["code"] == "NOT_FOUND", (method, suffix)
    assert body(client.get(DEVICES, headers=other.headers), 200)["data"] == []
    for method in ("GET", "PATCH", "DELETE"):
        response = client.open(url, method=method, headers={"Authorization": None},
                               data=json.dumps(change(made)) if method == "PATCH" else None)
        error_of(response, 401)
    error_of(client.post(DEVICES, json=iphone(), headers={"Authorization": None}), 401)
    assert snapshot(app) == before


@pytest.mark.parametrize(("device_url_id", "status"), [
    ("not-a-uuid", 404), (str(uuid.uuid4()), 404), ("1", 404),
    ("%00", 400),  # NUL is refused in any URL before it reaches a resource
])
def test_a_malformed_or_unknown_device_id_is_refused(client, app, device_url_id, status):
    caller = Caller(client, app)
    for method in ("GET", "DELETE"):
        error_of(client.open(f"{DEVICES}/{device_url_id}", method=method,
                             headers=caller.headers), status)



def test_a_device_id_in_unicode_digits_is_no_id(client, app):
    """uuid.UUID reads Arabic-Indic digits as 0-9: the id a client never wrote is a 404."""
    caller = Caller(client, app)
    made = post(client, caller, iphone(fingerprint="phone-1"), 201)["data"]
    arabic_indic = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))
    url = f"{DEVICES}/{made['id'].translate(arabic_indic)}"
    for method in ("GET", "DELETE"):
        error_of(client.open(url, method=method, headers=caller.headers), 404)
    assert body(client.get(f"{DEVICES}/{made['id']}", headers=caller.headers), 200)

# -- bad registrations: refused cleanly, nothing changes ---------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    document: object
    status: int
    code: str
    pointer: str | None


def _with(**attributes):
    document = iphone()
    document["data"]["attributes"].update(attributes)
    return document


def _without(*names):
    document = iphone()
    for name in names:
        del document["data"]["attributes"][name]
    return document


BAD_REGISTRATIONS = [
    Bad("unknown-channel", _with(channel="android_push"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/channel"),
    Bad("channel-not-a-string", _with(channel=1), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/channel"),
    Bad("token-without-channel", _without("channel"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/channel"),
    Bad("channel-without-token", _without("token"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/token"),
    Bad("no-token-no-fingerprint", device_document(app_version="1"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/token"),
    Bad("token-not-hex", _with(token="zz" * 32), 400, "INVALID_DEVICE_TOKEN",
        "/data/attributes/token"),
    Bad("token-too-short", _with(token="ab" * 31), 400, "INVALID_DEVICE_TOKEN",
        "/data/attributes/token"),
    Bad("token-a-number", _with(token=12345), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/token"),
    Bad("environment-unknown", _with(environment="staging"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/environment"),
    Bad("environment-null", _with(environment=None), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/environment"),
    Bad("time-zone-unknown", _with(time_zone="Mars/Olympus_Mons"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/time_zone"),
    Bad("time-zone-path", _with(time_zone="../../etc/passwd"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/time_zone"),
    Bad("is-voip-string", _with(is_voip="true"), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/is_voip"),
    Bad("app-version-too-long", _with(app_version="9" * 33), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/app_version"),
    Bad("fingerprint-empty", _with(fingerprint=""), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/fingerprint"),
    Bad("push-to-start-empty", _with(live_activity_push_to_start_token=""), 400,
        "INVALID_ATTRIBUTE", "/data/attributes/live_activity_push_to_start_token"),
    Bad("unknown-attribute", _with(is_production=True), 400, "INVALID_ATTRIBUTE",
        "/data/attributes/is_production"),
    Bad("read-only-is-invalidated", _with(is_invalidated=False), 403, "READ_ONLY_ATTRIBUTE",
        "/data/attributes/is_invalidated"),
    Bad("read-only-last-seen", _with(last_seen_at="2024-01-15T10:00:00.000Z"), 403,
        "READ_ONLY_ATTRIBUTE", "/data/attributes/last_seen_at"),
    Bad("client-id", {"data": {**iphone()["data"], "id": str(uuid.uuid4())}}, 403,
        "CLIENT_ID_NOT_ALLOWED", "/data/id"),
    Bad("relationship-sent", {"data": {**iphone()["data"], "relationships": {
        "user": {"data": {"type": "users", "id": str(uuid.uuid4())}}}}}, 403,
        "RELATIONSHIP_READ_ONLY", "/data/relationships/user"),
    Bad("wrong-type", {"data": {**iphone()["data"], "type": "apple_device_tokens"}}, 409,
        "TYPE_MISMATCH", "/data/type"),
    Bad("data-is-array", {"data": [iphone()["data"]]}, 400, "INVALID_DOCUMENT", "/data"),
    Bad("attributes-not-object", {"data": {"type": "devices", "attributes": []}}, 400,
        "INVALID_DOCUMENT", "/data/attributes"),
]


@pytest.mark.parametrize("case", BAD_REGISTRATIONS, ids=[case.id for case in BAD_REGISTRATIONS])
def test_a_bad_registration_is_refused_and_changes_nothing(client, app, case):
    caller = Caller(client, app)
    post(client, caller, iphone(fingerprint="phone-1"), 201)
    before = snapshot(app)
    response = client.post(DEVICES, data=json.dumps(case.document), headers=caller.headers)
    text = response.get_data(as_text=True)
    error = error_of(response, case.status)
    assert error["code"] == case.code, error
    assert error.get("source", {}).get("pointer") == case.pointer, error
    for leak in LEAKS:
        assert leak.lower() not in text.lower(), text
    sent = case.document["data"]
    attributes = sent.get("attributes") if isinstance(sent, dict) else None
    token = attributes.get("token") if isinstance(attributes, dict) else None
    if isinstance(token, str):
        assert token not in text.lower()  # the token is never echoed in an error
    assert snapshot(app) == before, "the refused request changed the database"


# -- write-only members ---------------------------------------------------------------------


def test_write_only_members_never_come_back(client, app):
    caller = Caller(client, app)
    token = new_token()
    responses = [client.post(DEVICES, json=iphone(
        token, fingerprint="phone-1", live_activity_push_to_start_token=PUSH_TO_START),
        headers=caller.headers)]
    made = responses[0].get_json()["data"]
    url = f"{DEVICES}/{made['id']}"
    responses += [
        client.post(DEVICES, json=iphone(token, live_activity_push_to_start_token=PUSH_TO_START),
                    headers=caller.headers),
        client.get(DEVICES, headers=caller.headers),
        client.get(f"{url}?include=user.devices", headers=caller.headers),
        client.get(f"/api/users/{caller.user_id}/devices", headers=caller.headers),
        client.patch(url, json=change(made, live_activity_push_to_start_token=PUSH_TO_START),
                     headers=caller.headers),
        client.patch(url, json=change(made, token=token), headers=caller.headers),
        client.post(DEVICES, json=iphone(token, environment="nope"), headers=caller.headers),
    ]
    assert [response.status_code for response in responses] == [
        201, 200, 200, 200, 200, 200, 400, 400]
    for response in responses:
        text = response.get_data(as_text=True).lower()
        assert token not in text and PUSH_TO_START not in text, text
        data = (response.get_json() or {}).get("data")
        for resource in data if isinstance(data, list) else [data] if data else []:
            assert {"token", "live_activity_push_to_start_token"}.isdisjoint(
                resource["attributes"])
    assert PUSH_TO_START not in stored(app, Device.live_activity_token, made["id"])
