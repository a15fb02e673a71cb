"""Topics: a device's owner manages its subscriptions as the device's ``topics``
relationship; a backend service with ``topics:manage`` subscribes anyone's devices and
reads a topic's subscriber count."""

import uuid

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Device
from app.resources import topics
from tests.factories import bearer
from tests.jsonapi_helpers import Caller, body, error_of
from tests.test_notifications_api import device_rows, make_key

JSONAPI_HEADERS = {"Content-Type": "application/vnd.api+json"}


@pytest.fixture
def owner(client, app):
    caller = Caller(client, app)
    (device_id,) = device_rows(app, caller.user_id)
    caller.device_url = f"/api/devices/{device_id}/relationships/topics"
    caller.device_id = device_id
    return caller


@pytest.fixture
def manager(app):
    return bearer(make_key(app, ("topics:manage",))[0])


def linkage(*names, type_name="topics"):
    return {"data": [{"type": type_name, "id": str(name)} for name in names]}


def topic_names(client, owner):
    document = body(client.get(owner.device_url, headers=owner.headers), 200)
    return sorted(item["id"] for item in document["data"])


def change(client, method, url, headers, document):
    return client.open(url, method=method, json=document, headers=headers)


def test_an_owner_subscribes_replaces_and_unsubscribes(client, owner):
    assert change(client, "POST", owner.device_url, owner.headers,
                  linkage("news", "team.42", "a~b%c-d_e")).status_code == 204
    assert change(client, "POST", owner.device_url, owner.headers,
                  linkage("news")).status_code == 204  # again: nothing new
    assert topic_names(client, owner) == ["a~b%c-d_e", "news", "team.42"]
    assert change(client, "PATCH", owner.device_url, owner.headers,
                  linkage("news", "sports")).status_code == 204
    assert topic_names(client, owner) == ["news", "sports"]
    for _ in range(2):  # unsubscribing is idempotent
        assert change(client, "DELETE", owner.device_url, owner.headers,
                      linkage("news", "never-subscribed")).status_code == 204
    assert topic_names(client, owner) == ["sports"]


def test_topics_are_a_field_of_devices_and_can_be_included(client, owner):
    change(client, "POST", owner.device_url, owner.headers, linkage("news", "sports"))
    document = body(client.get(f"/api/devices/{owner.device_id}?include=topics",
                               headers=owner.headers), 200)
    relationship = document["data"]["relationships"]["topics"]
    assert relationship["data"] == linkage("news", "sports")["data"]
    assert relationship["meta"] == {"count": 2}
    assert sorted(item["id"] for item in document["included"]) == ["news", "sports"]
    assert {item["type"] for item in document["included"]} == {"topics"}
    # not included: links only, so a page of devices costs no query per device
    plain = body(client.get(f"/api/devices/{owner.device_id}", headers=owner.headers), 200)
    assert set(plain["data"]["relationships"]["topics"]) == {"links"}


def test_a_strangers_device_is_a_404_and_nothing_changes(client, app, owner):
    stranger = Caller(client, app)
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = change(client, method, owner.device_url, stranger.headers,
                          linkage("news"))
        assert error_of(response, 404)
    assert topic_names(client, owner) == []


@pytest.mark.parametrize("bad, pointer", [
    ("", "/data/0/id"), ("x" * 257, "/data/0/id"), ("has space", "/data/0/id"),
    ("caf\u00e9", "/data/0/id"), ("a/b", "/data/0/id")])
def test_bad_topic_names_are_400s_pointing_at_the_item(client, owner, bad, pointer):
    response = change(client, "POST", owner.device_url, owner.headers, linkage(bad))
    assert error_of(response, 400)["source"] == {"pointer": pointer}
    assert topic_names(client, owner) == []


def test_wrong_identifier_type_is_a_409(client, owner):
    response = change(client, "POST", owner.device_url, owner.headers,
                      linkage("news", type_name="devices"))
    assert error_of(response, 409)["source"] == {"pointer": "/data/0/type"}


def test_a_device_holds_at_most_2000_topics(client, owner, monkeypatch):
    monkeypatch.setattr(topics, "MAX_TOPICS_PER_DEVICE", 3)
    change(client, "POST", owner.device_url, owner.headers, linkage("a", "b"))
    response = change(client, "POST", owner.device_url, owner.headers, linkage("c", "d"))
    assert error_of(response, 422)["code"] == "TOO_MANY_TOPICS"
    assert topic_names(client, owner) == ["a", "b"]  # nothing added
    assert change(client, "POST", owner.device_url, owner.headers,
                  linkage("a", "c")).status_code == 204  # a known one counts once


def test_a_service_subscribes_any_users_devices_and_reads_the_count(client, app, manager):
    devices = sorted(device_rows(app, None, 3), key=str)
    url = "/api/topics/team.42/relationships/devices"
    assert change(client, "POST", url, manager, linkage(*devices, type_name="devices")
                  ).status_code == 204
    shown = body(client.get("/api/topics/team.42", headers=manager), 200)["data"]
    assert shown["id"] == "team.42" and shown["meta"] == {"subscribers": 3}
    with app.app_context():  # an invalidated device drops out
        db.session.execute(update(Device).where(Device.id == devices[0])
                           .values(is_invalidated=True))
        db.session.commit()
    assert body(client.get("/api/topics/team.42", headers=manager),
                200)["data"]["meta"] == {"subscribers": 2}
    for _ in range(2):
        assert change(client, "DELETE", url, manager,
                      linkage(devices[1], uuid.uuid4(), type_name="devices")
                      ).status_code == 204
    assert body(client.get("/api/topics/team.42", headers=manager),
                200)["data"]["meta"] == {"subscribers": 1}
    assert body(client.get("/api/topics/nobody-here", headers=manager),
                200)["data"]["meta"] == {"subscribers": 0}


def test_a_deleted_device_drops_out(client, app, owner, manager):
    change(client, "POST", owner.device_url, owner.headers, linkage("news"))
    assert client.delete(f"/api/devices/{owner.device_id}", headers=owner.headers
                         ).status_code == 204
    assert body(client.get("/api/topics/news", headers=manager),
                200)["data"]["meta"] == {"subscribers": 0}


def test_unknown_devices_are_404s_naming_their_item(client, app, manager):
    (known,) = device_rows(app, None, 1)
    response = change(client, "POST", "/api/topics/news/relationships/devices", manager,
                      linkage(known, uuid.uuid4(), type_name="devices"))
    assert error_of(response, 404)["source"] == {"pointer": "/data/1/id"}
    assert body(client.get("/api/topics/news", headers=manager),
                200)["data"]["meta"] == {"subscribers": 0}
    response = change(client, "POST", "/api/topics/news/relationships/devices", manager,
                      linkage("not-a-uuid", type_name="devices"))
    assert error_of(response, 400)["source"] == {"pointer": "/data/0/id"}


def test_topic_endpoints_need_the_scope(client, app):
    sender = bearer(make_key(app)[0])  # notifications:send only
    assert error_of(client.get("/api/topics/news", headers=sender), 403)["code"] == \
        "INSUFFICIENT_SCOPE"
    response = change(client, "POST", "/api/topics/news/relationships/devices", sender,
                      linkage(uuid.uuid4(), type_name="devices"))
    assert error_of(response, 403)["code"] == "INSUFFICIENT_SCOPE"


def test_a_bad_topic_name_in_the_url_is_a_404(client, manager):
    assert error_of(client.get("/api/topics/has%20space", headers=manager), 404)
