"""Audiences: a notification for topics, a condition, filters or everyone is accepted
without touching devices and expanded by the workers, each matching device once."""

import contextlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update

from app.extensions import db
from app.models import Delivery, Device, DeviceTopic, Notification
from app.models.types import utcnow
from app.push import expansion
from app.resources import audiences
from tests.factories import bearer
from tests.jsonapi_helpers import body, error_of
from tests.push_rows import make_devices, make_fcm_devices
from tests.test_notifications_api import make_key

SEND, BROADCAST = "notifications:send", "notifications:broadcast"


@pytest.fixture
def broadcaster(app):
    return bearer(make_key(app, (SEND, BROADCAST))[0])


@pytest.fixture
def sender(app):
    return bearer(make_key(app, (SEND,))[0])


def audience_document(audience, **attributes):
    return {"data": {"type": "notifications",
                     "attributes": {"alert": "Hello", "audience": audience, **attributes}}}


def post(client, headers, audience, **attributes):
    return client.post("/api/notifications", json=audience_document(audience, **attributes),
                       headers=headers)


@contextlib.contextmanager
def connected(app):
    """The test's connection, in a session committed at the end of the block (a
    savepoint of the test's transaction)."""
    with app.app_context():
        yield db.session.connection()
        db.session.commit()


def subscribe(connection, devices, *topics):
    connection.execute(insert(DeviceTopic), [
        {"device_id": device["id"], "topic": topic, "created_at": utcnow()}
        for device in devices for topic in topics])


def expand_all(connection, chunk_size=2):
    """Run expansion steps until none is left: how many steps it took."""
    steps = 0
    while expansion.step(connection, chunk_size, utcnow()) is not None:
        steps += 1
    return steps


def targeted_devices(connection, notification_id):
    return set(connection.scalars(select(Delivery.device_id).where(
        Delivery.notification_id == uuid.UUID(notification_id))))


def ids(devices):
    return {device["id"] for device in devices}


# -- accepting ------------------------------------------------------------------------


def test_an_audience_is_accepted_without_writing_deliveries(client, app, sender):
    with connected(app) as connection:
        subscribe(connection, make_devices(connection, 3), "news")
    sent = body(post(client, sender, {"topics": ["news"]}), 202)["data"]["attributes"]
    assert sent["status"] == "expanding" and sent["counts"]["targeted"] == 0
    assert sent["audience"] == {"topics": ["news"]}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_the_expansion_writes_each_matching_device_once_and_is_counted(client, app, sender):
    with connected(app) as connection:
        fans = make_devices(connection, 5) + make_fcm_devices(connection, 2)
        others = make_devices(connection, 3)
        gone = make_devices(connection, 1, is_invalidated=True)
        subscribe(connection, fans + gone, "news")
        subscribe(connection, others, "sports")
    sent = body(post(client, sender, {"topics": ["news"]}), 202)["data"]
    with connected(app) as connection:
        assert expand_all(connection) == 4  # 7 devices, 2 a chunk
        assert targeted_devices(connection, sent["id"]) == ids(fans)
        # a chunk expanded again (as a resumed worker would) adds nothing
        connection.execute(update(Notification).values(expanding=True, expanded_through=None))
        expand_all(connection)
        assert len(targeted_devices(connection, sent["id"])) == 7
    shown = body(client.get(f"/api/notifications/{sent['id']}", headers=sender),
                 200)["data"]["attributes"]
    assert shown["status"] == "queued" and shown["counts"]["targeted"] == 7
    assert shown["counts"]["pending"] == 7


def test_a_device_registered_or_deleted_during_the_expansion(client, app, sender):
    """One that matches when the expansion reaches it is included; one deleted,
    invalidated or unsubscribed before then is not; one registered behind the position
    already passed is not (it came too late), one registered ahead of it is."""
    early, late = "00000000-0000-4000-8000-", "ffffffff-ffff-4fff-bfff-"
    with connected(app) as connection:
        first = make_devices(connection, 1, id=uuid.UUID(early + "000000000001"))
        middle = make_devices(connection, 4)
        subscribe(connection, first + middle, "news")
    sent = body(post(client, sender, {"topics": ["news"]}), 202)["data"]
    deleted, invalidated, unsubscribed, kept = middle
    with connected(app) as connection:
        expansion.step(connection, 1, utcnow())  # reaches `first`
        behind = make_devices(connection, 1, id=uuid.UUID(early + "000000000000"))
        ahead = make_devices(connection, 1, id=uuid.UUID(late + "ffffffffffff"))
        subscribe(connection, behind + ahead, "news")
        connection.execute(delete(Device).where(Device.id == deleted["id"]))
        connection.execute(update(Device).where(Device.id == invalidated["id"])
                           .values(is_invalidated=True))
        connection.execute(delete(DeviceTopic).where(
            DeviceTopic.device_id == unsubscribed["id"]))
        expand_all(connection, 1)
        assert targeted_devices(connection, sent["id"]) == ids([*first, kept, *ahead])


@pytest.mark.parametrize("where, expected", [
    ({"channel": ["fcm"]}, {"android"}),
    ({"environment": "sandbox"}, {"sandbox"}),
    ({"bundle_id": ["com.other.app"]}, {"other_app"}),
    ({"app_version": {"gte": "2.3"}}, {"v2_9", "v2_10", "v3"}),
    ({"app_version": {"gte": "2.10", "lt": "3"}}, {"v2_10"}),
    ({"app_version": {"lt": "2.10"}}, {"v2_9"}),
    ({"app_version": {"gt": "2.9", "lte": "2.10"}}, {"v2_10"}),
    ({"time_zone": ["Europe/"]}, {"paris", "berlin"}),
    ({"time_zone": ["Europe/Paris", "America/New_York"]}, {"paris", "new_york"}),
    ({"last_seen_after": "2030-06-01T00:00:00Z"}, {"recent"}),
    ({"last_seen_before": "2020-01-01T00:00:00+00:00"}, {"stale"}),
    ({"channel": ["ios_push"], "time_zone": ["Europe/"]}, {"paris", "berlin"}),
])
def test_each_where_member_narrows_the_audience(app, where, expected):
    now = utcnow()
    kinds = {
        "android": {"channel": "fcm"}, "sandbox": {"environment": "sandbox"},
        "other_app": {"bundle_id": "com.other.app"}, "v2_9": {"app_version": "2.9"},
        "v2_10": {"app_version": "2.10"}, "v3": {"app_version": "3.0.0"},
        "beta": {"app_version": "2.11-beta"}, "paris": {"time_zone": "Europe/Paris"},
        "berlin": {"time_zone": "Europe/Berlin"}, "new_york": {"time_zone": "America/New_York"},
        "europa": {"time_zone": "Europex/Fake"},
        "recent": {"last_seen_at": now + timedelta(days=3650)},
        "stale": {"last_seen_at": now - timedelta(days=3650)},
    }
    parsed = audiences.parse({"all": True, "where": where})
    with connected(app) as connection:
        names = {}
        for name, attributes in kinds.items():
            maker = make_fcm_devices if attributes.get("channel") == "fcm" else make_devices
            names[maker(connection, 1, **{k: v for k, v in attributes.items()
                                          if k != "channel"})[0]["id"]] = name
        matched = connection.execute(select(Device.id, Device.app_version).where(
            *parsed.conditions())).all()
    assert {names[row.id] for row in matched if parsed.admits(row.app_version)} == expected


@pytest.mark.parametrize("condition, expected", [
    ("'a' in topics", {"a", "ab", "ac", "abc"}),
    ("'a' in topics && ('b' in topics || !('c' in topics))", {"a", "ab", "abc"}),
    ("!('a' in topics)", {"b", "c", "none"}),
    ("'b' in topics || 'c' in topics", {"b", "c", "ab", "ac", "abc"}),
    ("\"a\" in topics&&!'b' in topics", {"a", "ac"}),
])
def test_a_condition_selects_by_topics(app, condition, expected):
    parsed = audiences.parse({"condition": condition})
    with connected(app) as connection:
        names = {}
        for name in ("a", "b", "c", "ab", "ac", "abc", "none"):
            device = make_devices(connection, 1)
            names[device[0]["id"]] = name
            if name != "none":
                subscribe(connection, device, *name)
        matched = connection.scalars(select(Device.id).where(*parsed.conditions())).all()
    assert {names[device_id] for device_id in matched} == expected


def test_versions_are_ordered_as_versions():
    key = audiences.version_key
    assert key("2.10") > key("2.9") > key("2.3") == key("2.3.0") > key("2")
    assert key("10") > key("9.99.99")
    assert [key(text) for text in ("2.3-beta", "", "v2", "2..3", " 2.3", "1.2.3.4.5.6.7.8.9",
                                   None, 2.3)] == [None] * 8
    bounded = audiences.parse({"all": True, "where": {"app_version": {"gte": "2.3",
                                                                      "lt": "3"}}})
    assert [bounded.admits(text) for text in ("2.2.9", "2.3", "2.10", "3", "3.0.1",
                                              "2.5-rc1", None)] == \
        [False, True, True, False, False, False, False]


# -- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize("audience, pointer, words", [
    ([], "/data/attributes/audience", "object"),
    ({}, "/data/attributes/audience", "exactly one"),
    ({"all": True, "topics": ["a"]}, "/data/attributes/audience", "exactly one"),
    ({"all": False}, "/data/attributes/audience/all", "true"),
    ({"everyone": True}, "/data/attributes/audience/everyone", "Unknown"),
    ({"topics": []}, "/data/attributes/audience/topics", "1 to 100"),
    ({"topics": ["ok", "not ok"]}, "/data/attributes/audience/topics/1", "topic name"),
    ({"condition": 5}, "/data/attributes/audience/condition", "string"),
    ({"condition": "'a' in topics &&"}, "/data/attributes/audience/condition", "offset 16"),
    ({"condition": "'a in topics"}, "/data/attributes/audience/condition",
     "Unbalanced quote at offset 0"),
    ({"condition": "'a' in topics)"}, "/data/attributes/audience/condition", "offset 13"),
    ({"condition": "(" * 5000 + "'a' in topics" + ")" * 5000},
     "/data/attributes/audience/condition", "Longer than"),
    ({"condition": "(" * 30 + "'a' in topics" + ")" * 30},
     "/data/attributes/audience/condition", "Nested more than 20 deep at offset 21"),
    ({"condition": "!" * 50 + "'a' in topics"},
     "/data/attributes/audience/condition", "Nested"),
    ({"condition": " || ".join(f"'t{i}' in topics" for i in range(6))},
     "/data/attributes/audience/condition", "More than 5 topics at offset 90"),
    ({"condition": "'caf\u00e9' in topics"}, "/data/attributes/audience/condition",
     "not a topic name"),
    ({"condition": "'a' in topics \u2227 'b' in topics"},
     "/data/attributes/audience/condition", "Unexpected character '\u2227' at offset 14"),
    ({"condition": "'a' on topics"}, "/data/attributes/audience/condition",
     "Expected 'in' at offset 4"),
    ({"condition": "'a' in topics && 'b' in topics 'c' in topics"},
     "/data/attributes/audience/condition", "offset 31"),
    ({"topics": ["a"], "where": []}, "/data/attributes/audience/where", "object"),
    ({"topics": ["a"], "where": {"country": "FR"}},
     "/data/attributes/audience/where/country", "Unknown"),
    ({"topics": ["a"], "where": {"channel": ["sms"]}},
     "/data/attributes/audience/where/channel/0", "channels"),
    ({"topics": ["a"], "where": {"channel": "fcm"}},
     "/data/attributes/audience/where/channel", "list"),
    ({"topics": ["a"], "where": {"environment": "staging"}},
     "/data/attributes/audience/where/environment", "sandbox or production"),
    ({"topics": ["a"], "where": {"bundle_id": ["bad id\r\n"]}},
     "/data/attributes/audience/where/bundle_id/0", "bundle ids"),
    ({"topics": ["a"], "where": {"app_version": {"gte": "2.x"}}},
     "/data/attributes/audience/where/app_version/gte", "dotted numbers"),
    ({"topics": ["a"], "where": {"app_version": {"above": "2"}}},
     "/data/attributes/audience/where/app_version/above", "Unknown bound"),
    ({"topics": ["a"], "where": {"app_version": "2.3"}},
     "/data/attributes/audience/where/app_version", "object"),
    ({"topics": ["a"], "where": {"time_zone": ["Europe/Paris; drop"]}},
     "/data/attributes/audience/where/time_zone/0", "time zone"),
    ({"topics": ["a"], "where": {"last_seen_after": "yesterday"}},
     "/data/attributes/audience/where/last_seen_after", "ISO 8601"),
    ({"topics": ["a"], "where": {"last_seen_before": "2026-01-01T00:00:00"}},
     "/data/attributes/audience/where/last_seen_before", "zone"),
])
def test_a_bad_audience_is_a_400_pointing_at_its_member(client, app, broadcaster, audience,
                                                         pointer, words):
    error = error_of(post(client, broadcaster, audience), 400)
    assert error["source"] == {"pointer": pointer}
    assert words in error["detail"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_an_audience_and_recipients_together_are_a_400(client, app, sender):
    document = audience_document({"topics": ["a"]})
    document["data"]["relationships"] = {"users": {"data": [
        {"type": "users", "id": str(uuid.uuid4())}]}}
    error = error_of(client.post("/api/notifications", json=document, headers=sender), 400)
    assert error["source"] == {"pointer": "/data/attributes/audience"}
    assert error["code"] == "AUDIENCE_WITH_RECIPIENTS"


def test_everyone_needs_the_broadcast_scope(client, app, sender, broadcaster):
    error = error_of(post(client, sender, {"all": True}), 403)
    assert error["code"] == "INSUFFICIENT_SCOPE" and BROADCAST in error["detail"]
    assert body(post(client, broadcaster, {"all": True}), 202)
    assert body(post(client, sender, {"topics": ["news"]}), 202)  # topics need no more


def test_a_retried_audience_post_is_the_same_notification(client, app, sender):
    headers = {**sender, "Idempotency-Key": "broadcast-1"}
    first = body(post(client, headers, {"topics": ["news"]}), 202)["data"]["id"]
    assert body(post(client, headers, {"topics": ["news"]}), 202)["data"]["id"] == first
    assert error_of(post(client, headers, {"topics": ["sports"]}), 409)["code"] == \
        "IDEMPOTENCY_KEY_REUSED"
