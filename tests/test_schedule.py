"""Scheduled notifications (issue 22): send_at, local_time and throttle on POST
/api/notifications, each delivery's scheduled_at, status scheduled; bad schedules refused
with a pointer and nothing written."""

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Delivery, Notification
from app.models.types import utcnow
from app.push.moments import MINUTE
from tests.jsonapi_helpers import body, counted_statements, error_of, insert_users
from tests.test_notifications_api import (
    deliveries_of,
    device_rows,
    document,
    row_count,
    send,
    service,  # noqa: F401  (a fixture)
)

DAY = 86400


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def moments_of(app, notification_id):
    """device id → (scheduled_at, next_attempt_at) of the notification's deliveries."""
    return {row.device_id: (row.scheduled_at, row.next_attempt_at)
            for row in deliveries_of(app, notification_id)}


def no_minute_over(moments, per_minute):
    ordered = sorted(moments)
    return all(ordered[index + per_minute] - ordered[index] >= MINUTE
               for index in range(len(ordered) - per_minute))


# -- bad input ---------------------------------------------------------------------------

SOON = int(time.time()) + 3600
BAD = {
    "local_time 24:00": ({"local_time": "24:00"}, "local_time", "INVALID_LOCAL_TIME"),
    "local_time 9:5": ({"local_time": "9:5"}, "local_time", "INVALID_LOCAL_TIME"),
    "local_time 09:00:60": ({"local_time": "09:00:60"}, "local_time", "INVALID_LOCAL_TIME"),
    "local_time a number": ({"local_time": 900}, "local_time", "INVALID_LOCAL_TIME"),
    "local_time with a newline": ({"local_time": "09:00\n"}, "local_time",
                                  "INVALID_LOCAL_TIME"),
    "send_at 31 days ahead": ({"send_at": int(time.time()) + 31 * DAY}, "send_at",
                              "SEND_AT_TOO_FAR"),
    "send_at 31 days ahead, ISO": ({"send_at": iso(datetime.now(UTC) + timedelta(days=31))},
                                   "send_at", "SEND_AT_TOO_FAR"),
    "send_at no zone": ({"send_at": "2026-01-01T09:00:00"}, "send_at", "INVALID_ATTRIBUTE"),
    "send_at text": ({"send_at": "tomorrow"}, "send_at", "INVALID_ATTRIBUTE"),
    "throttle 0": ({"throttle": 0}, "throttle", "INVALID_THROTTLE"),
    "throttle per_minute 0": ({"throttle": {"per_minute": 0}}, "throttle", "INVALID_THROTTLE"),
    "throttle per_minute 59": ({"throttle": {"per_minute": 59}}, "throttle",
                               "INVALID_THROTTLE"),
    "throttle over a million": ({"throttle": {"per_minute": 1_000_001}}, "throttle",
                                "INVALID_THROTTLE"),
    "throttle per_minute text": ({"throttle": {"per_minute": "60"}}, "throttle",
                                 "INVALID_THROTTLE"),
    "throttle per_minute true": ({"throttle": {"per_minute": True}}, "throttle",
                                 "INVALID_THROTTLE"),
    "throttle another key": ({"throttle": {"per_minute": 60, "burst": 1}}, "throttle",
                             "INVALID_THROTTLE"),
    "expiration before send_at": ({"send_at": SOON, "expiration": SOON - 60}, "expiration",
                                  "EXPIRES_BEFORE_SEND_AT"),
}


@pytest.mark.parametrize(("attributes", "member", "code"), BAD.values(), ids=BAD.keys())
def test_a_bad_schedule_is_refused_with_a_pointer_and_nothing_is_written(
        client, app, service, attributes, member, code):  # noqa: F811
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 2)
    error = error_of(send(client, service, document(users=[alice], **attributes)), 400)
    assert error["source"] == {"pointer": f"/data/attributes/{member}"}, error
    assert error["code"] == code, error
    assert row_count(app, Notification) == 0 and row_count(app, Delivery) == 0


def test_a_schedule_for_running_live_activities_is_refused(client, app, service):  # noqa: F811
    doc = {"data": {"type": "notifications", "attributes": {
        "push_type": "liveactivity", "event": "update", "content_state": {"score": 1},
        "live_activity_audience": {"attributes_type": "Match"},
        "throttle": {"per_minute": 60}}}}
    error = error_of(send(client, service, doc), 422)
    assert (error["code"], error["source"]) == ("SCHEDULE_NOT_FOR_ACTIVITIES",
                                                {"pointer": "/data/attributes/throttle"})
    assert row_count(app, Notification) == 0


def test_the_same_key_with_another_schedule_is_a_conflict(client, app, service):  # noqa: F811
    (alice,) = insert_users(app, 1)
    device_rows(app, alice)
    first = document(users=[alice], send_at=SOON)
    body(send(client, service, first, key="k"), 202)
    assert send(client, service, first, key="k").status_code == 202  # the same: a retry
    later = document(users=[alice], send_at=SOON + 60)
    assert error_of(send(client, service, later, key="k"), 409)["code"] == \
        "IDEMPOTENCY_KEY_REUSED"


# -- send_at -------------------------------------------------------------------------------


def test_send_at_ahead_is_scheduled_and_shown(client, app, service):  # noqa: F811
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 3)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    sent = body(send(client, service, document(users=[alice], send_at=iso(at))), 202)["data"]
    assert sent["attributes"]["status"] == "scheduled"
    assert datetime.fromisoformat(sent["attributes"]["send_at"]) == at
    assert (sent["attributes"]["local_time"], sent["attributes"]["throttle"]) == (None, None)
    assert set(moments_of(app, sent["id"]).values()) == {(at, at)}
    listed = body(client.get(f"/api/notifications/{sent['id']}/deliveries", headers=service),
                  200)["data"]
    assert {datetime.fromisoformat(item["attributes"][name]) for item in listed
            for name in ("scheduled_at", "next_attempt_at")} == {at}


def test_send_at_past_goes_at_once(client, app, service):  # noqa: F811
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 2)
    before = utcnow()
    sent = body(send(client, service, document(users=[alice], send_at=int(time.time()) - 600)),
                202)["data"]
    assert sent["attributes"]["status"] == "queued"
    assert all(before <= scheduled == due <= utcnow()
               for scheduled, due in moments_of(app, sent["id"]).values())


def test_status_is_scheduled_until_the_first_moment(client, app, service):  # noqa: F811
    (alice,) = insert_users(app, 1)
    device_rows(app, alice, 1)
    sent = body(send(client, service, document(users=[alice], send_at=SOON)), 202)["data"]
    with app.app_context():  # the clock reaches the moment
        db.session.execute(update(Notification).values(
            first_due_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    shown = body(client.get(f"/api/notifications/{sent['id']}", headers=service), 200)
    assert shown["data"]["attributes"]["status"] == "queued"


# -- local_time ----------------------------------------------------------------------------


def test_each_device_gets_the_time_in_its_own_zone(client, app, service):  # noqa: F811
    """Zones of their own; a device without one takes its user's most recently seen
    device's zone; a user with none at all, DEFAULT_TIME_ZONE; a stored name no zone has,
    the default too."""
    app.config["DEFAULT_TIME_ZONE"] = "Asia/Tokyo"
    try:
        zoned, unzoned, lonely = insert_users(app, 3)
        now = utcnow()
        kolkata = device_rows(app, zoned, time_zone="Asia/Kolkata",
                              last_seen_at=now - timedelta(days=5))
        device_rows(app, zoned, time_zone="Europe/London", last_seen_at=now - timedelta(days=3))
        device_rows(app, zoned, time_zone="America/New_York",
                    last_seen_at=now - timedelta(days=1))
        inherits = device_rows(app, zoned, last_seen_at=now)  # no zone of its own
        kathmandu = device_rows(app, unzoned, time_zone="Asia/Kathmandu")
        lonely_ones = device_rows(app, lonely, 2)
        bogus = device_rows(app, lonely, time_zone="Mars/Olympus_Mons")
        nobodys = device_rows(app, None, time_zone=None)
        start = datetime(*(now + timedelta(days=3)).timetuple()[:3], 22, 17, tzinfo=UTC)
        sent = body(send(client, service, document(
            users=[zoned, unzoned, lonely], devices=nobodys, send_at=iso(start),
            local_time="09:30")), 202)["data"]
    finally:
        app.config["DEFAULT_TIME_ZONE"] = "UTC"
    assert sent["attributes"]["local_time"] == "09:30:00"
    assert sent["attributes"]["status"] == "scheduled"
    moments = moments_of(app, sent["id"])
    assert len(moments) == 9
    zones = {**dict.fromkeys(kolkata, "Asia/Kolkata"),
             **dict.fromkeys(inherits, "America/New_York"),
             **dict.fromkeys(kathmandu, "Asia/Kathmandu"),
             **dict.fromkeys(lonely_ones | bogus | nobodys, "Asia/Tokyo")}
    for device, zone in zones.items():
        scheduled, due = moments[device]
        assert scheduled == due and start <= scheduled < start + timedelta(days=1)
        assert scheduled.astimezone(ZoneInfo(zone)).strftime("%H:%M:%S") == "09:30:00", zone
    with app.app_context():
        first = db.session.scalar(select(Notification.first_due_at))
        db.session.remove()
    assert first == min(scheduled for scheduled, _ in moments.values())


# -- throttle ------------------------------------------------------------------------------


def test_a_throttle_spreads_the_deliveries_a_minute_apart(client, app, service):  # noqa: F811
    users = insert_users(app, 3)
    for user in users:
        device_rows(app, user, 50)
    before = utcnow()
    sent = body(send(client, service, document(users=users, throttle={"per_minute": 60})),
                202)["data"]
    assert sent["attributes"]["throttle"] == {"per_minute": 60}
    assert sent["attributes"]["status"] == "queued"  # the first minute's are due
    moments = sorted(scheduled for scheduled, _ in moments_of(app, sent["id"]).values())
    start = moments[0]
    assert before <= start <= utcnow()
    assert Counter((moment - start) // MINUTE for moment in moments) == {0: 60, 1: 60, 2: 30}
    assert no_minute_over(moments, 60)


def test_a_throttle_with_a_local_time_holds_in_every_minute(client, app, service):  # noqa: F811
    users = insert_users(app, 4)
    zones = ("Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "Europe/Dublin")
    for user, zone in zip(users, zones, strict=True):
        device_rows(app, user, 45, time_zone=zone)
    start = datetime(2026, 12, 1, 0, 0, tzinfo=UTC) if utcnow() < datetime(
        2026, 11, 5, tzinfo=UTC) else utcnow() + timedelta(days=2)
    sent = body(send(client, service, document(users=users, send_at=iso(start),
                                                local_time="08:00",
                                                throttle={"per_minute": 60})), 202)["data"]
    moments = [scheduled for scheduled, _ in moments_of(app, sent["id"]).values()]
    assert len(moments) == 180 and no_minute_over(moments, 60)
    by_minute = Counter(moments)
    london = sorted(moment for moment in by_minute
                    if moment.astimezone(ZoneInfo("Europe/London")).hour >= 8 and
                    moment.astimezone(ZoneInfo("Europe/London")).hour < 9)
    # London and Dublin share their 08:00: 90 deliveries, 60 then 30 a minute later
    assert [by_minute[moment] for moment in london] == [60, 30]
    assert london[1] - london[0] == MINUTE


def test_many_recipients_take_a_bounded_number_of_statements(client, app, service):  # noqa: F811
    """1,000 devices under a local time: their moments are computed per chunk and written
    a thousand rows a statement."""
    users = insert_users(app, 10)
    for user in users:
        device_rows(app, user, 100, time_zone="Asia/Kolkata")
    with counted_statements(app) as statements:
        sent = body(send(client, service, document(users=users, local_time="07:00",
                                                   throttle={"per_minute": 100})), 202)["data"]
    assert len(deliveries_of(app, sent["id"])) == 1000
    assert len(statements) < 40, statements

