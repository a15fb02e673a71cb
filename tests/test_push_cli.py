"""``flask push send``, ``status`` and ``purge``: operators' commands over the ledger."""

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Delivery, Device, Notification
from app.models.types import utcnow
from tests.jsonapi_helpers import insert_devices, insert_users


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def push(runner, *args, exit_code=0):
    result = runner.invoke(args=["push", *args])
    assert result.exit_code == exit_code, result.output
    return json.loads(result.output) if exit_code == 0 else result.output


def count(app, model, *conditions):
    with app.app_context():
        value = db.session.scalar(select(func.count()).select_from(model).where(*conditions))
        db.session.remove()
    return value


def test_send_accepts_a_notification_without_a_sender(runner, app):
    (alice, bob) = insert_users(app, 2)
    insert_devices(app, 2, user_id=alice)
    (bobs,) = insert_devices(app, 1, user_id=bob)
    with app.app_context():
        bobs_id = db.session.scalar(select(Device.id).where(Device.token == bobs))
        db.session.remove()
    sent = push(runner, "send", "--user", alice, "--device", str(bobs_id), "--alert", "Hi")
    assert sent["deliveries"] == 3
    with app.app_context():
        notification = db.session.get(Notification, uuid.UUID(sent["id"]))
        assert notification.sender_id is None and notification.content["alert"] == "Hi"
        db.session.remove()
    assert count(app, Delivery, Delivery.notification_id == uuid.UUID(sent["id"])) == 3


def test_send_sandbox_only_reaches_development_builds(runner, app):
    (alice,) = insert_users(app, 1)
    insert_devices(app, 2, user_id=alice)
    insert_devices(app, 1, user_id=alice, environment="sandbox")
    assert push(runner, "send", "--user", alice, "--alert", "Hi",
                "--sandbox-only")["deliveries"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--alert", "Hi"], "at least one recipient"),
    (["--user", str(uuid.uuid4()), "--alert", "Hi"], "There is no user"),
    (["--user", "alice", "--alert", "Hi"], "is not a valid UUID"),
])
def test_send_refuses_what_cannot_be_sent(runner, app, args, message):
    output = push(runner, "send", *args, exit_code=1 if "UUID" not in message else 2)
    assert message in output
    assert count(app, Notification) == 0


def test_status_prints_the_counts(runner, app):
    (alice,) = insert_users(app, 1)
    insert_devices(app, 3, user_id=alice)
    sent = push(runner, "send", "--user", alice, "--alert", "Hi")
    assert push(runner, "status", sent["id"]) == {
        "id": sent["id"], "status": "queued",
        "counts": {"pending": 3, "sent": 0, "failed": 0, "invalidated": 0, "expired": 0,
                   "canceled": 0, "targeted": 3,
                   "by_channel": {"ios_push": {"pending": 3, "sent": 0, "failed": 0,
                                               "invalidated": 0, "expired": 0,
                                               "canceled": 0}}}}
    with app.app_context():
        db.session.execute(update(Delivery).values(state="sent", attempts=1))
        db.session.commit()
        db.session.remove()
    shown = push(runner, "status", sent["id"])
    assert shown["status"] == "done" and shown["counts"]["sent"] == 3
    assert "no notification" in push(runner, "status", str(uuid.uuid4()), exit_code=1)


def test_purge_removes_stale_devices_and_finished_notifications(runner, app):
    (alice,) = insert_users(app, 1)
    old = utcnow() - timedelta(days=40)
    fresh = insert_devices(app, 2, user_id=alice)
    insert_devices(app, 1, user_id=alice, created_at=old)  # not seen for 40 days
    insert_devices(app, 1, user_id=alice, is_invalidated=True, invalidated_at=old)
    insert_devices(app, 1, user_id=alice, is_invalidated=True, invalidated_at=utcnow())
    finished = push(runner, "send", "--user", alice, "--alert", "Old")["id"]
    unfinished = push(runner, "send", "--user", alice, "--alert", "Waiting")["id"]
    recent = push(runner, "send", "--user", alice, "--alert", "New")["id"]
    with app.app_context():
        db.session.execute(update(Notification).where(Notification.id.in_(
            [uuid.UUID(finished), uuid.UUID(unfinished)])).values(created_at=old))
        db.session.execute(update(Delivery).where(
            Delivery.notification_id == uuid.UUID(finished)).values(state="sent"))
        db.session.execute(update(Delivery).where(
            Delivery.notification_id == uuid.UUID(recent)).values(state="sent"))
        db.session.commit()
        db.session.remove()
    assert push(runner, "purge", "--older-than", "30d") == {
        "devices": 2, "notifications": 1, "deliveries": 3}
    with app.app_context():
        left = set(db.session.scalars(select(Device.token)))
        kept = set(db.session.scalars(select(Notification.id)))
        db.session.remove()
    assert set(fresh) < left and len(left) == 3
    assert kept == {uuid.UUID(unfinished), uuid.UUID(recent)}


@pytest.mark.parametrize("age", ["30", "thirty days", "5w", ""])
def test_purge_needs_an_age_with_a_unit(runner, age):
    assert "--older-than" in push(runner, "purge", "--older-than", age, exit_code=2)


# -- audiences ---------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "audience"), [
    (["--all"], {"all": True}),
    (["--topic", "news", "--topic", "team.42"], {"topics": ["news", "team.42"]}),
    (["--condition", "'a' in topics && !('b' in topics)"],
     {"condition": "'a' in topics && !('b' in topics)"}),
    (["--all", "--where", "channel=fcm,ios_push", "--where", 'app_version={"gte": "2.3"}',
      "--where", "time_zone=Europe/", "--where", "last_seen_after=2026-01-01T00:00:00Z"],
     {"all": True, "where": {"channel": ["fcm", "ios_push"], "app_version": {"gte": "2.3"},
                             "time_zone": ["Europe/"],
                             "last_seen_after": "2026-01-01T00:00:00Z"}}),
    (["--topic", "news", "--sandbox-only"],
     {"topics": ["news"], "where": {"environment": "sandbox"}}),
])
def test_send_to_an_audience(runner, app, args, audience):
    insert_devices(app, 2)
    sent = push(runner, "send", "--alert", "Hi", *args)
    assert (sent["status"], sent["deliveries"]) == ("expanding", 0)
    with app.app_context():
        assert db.session.get(Notification, uuid.UUID(sent["id"])).audience == audience
        db.session.remove()
    assert count(app, Delivery) == 0  # the workers expand it


@pytest.mark.parametrize(("args", "message"), [
    (["--all", "--topic", "a"], "exactly one of all, topics or condition"),
    (["--condition", "'a' in topics ||"], "audience/condition: Expected a quoted topic name"),
    (["--topic", "a", "--user", str(uuid.uuid4())], "not both"),
    (["--all", "--where", "app_version=2.3"], "app_version takes an object"),
    (["--all", "--where", "app_version={"], "takes JSON"),
    (["--all", "--where", "channel"], "MEMBER=VALUE"),
    (["--all", "--where", "country=FR"], "audience/where/country: Unknown member"),
])
def test_a_bad_audience_is_refused_and_nothing_is_written(runner, app, args, message):
    assert message in push(runner, "send", "--alert", "Hi", *args, exit_code=2
                           if "MEMBER" in message or "JSON" in message else 1)
    assert count(app, Notification) == 0


def test_send_schedules_with_send_at_local_time_and_throttle(runner, app):
    (alice,) = insert_users(app, 1)
    insert_devices(app, 3, user_id=alice, time_zone="Asia/Kolkata")
    at = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    sent = push(runner, "send", "--user", alice, "--alert", "Hi", "--send-at", at.isoformat(),
                "--local-time", "07:45", "--throttle", "60")
    assert (sent["status"], sent["deliveries"]) == ("scheduled", 3)
    with app.app_context():
        stored = db.session.get(Notification, uuid.UUID(sent["id"]))
        assert (stored.send_at, stored.local_time, stored.throttle) == (at, "07:45:00", 60)
        db.session.remove()


@pytest.mark.parametrize(("args", "message", "exit_code"), [
    (["--send-at", "tomorrow"], "ISO 8601 with a zone", 2),
    (["--send-at", "2026-12-24T18:00:00"], "ISO 8601 with a zone", 2),
    (["--local-time", "24:00"], "local_time is a wall-clock time", 1),
    (["--throttle", "10"], "throttle is", 1),
])
def test_send_refuses_a_bad_schedule(runner, app, args, message, exit_code):
    (alice,) = insert_users(app, 1)
    insert_devices(app, 1, user_id=alice)
    output = push(runner, "send", "--user", alice, "--alert", "Hi", *args, exit_code=exit_code)
    assert message in output
    assert count(app, Notification) == 0
