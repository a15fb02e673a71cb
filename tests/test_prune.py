"""``flask prune``: dead codes, old outbox texts and stand-in pushes, expired rate-limit
windows, ended Live Activities, gone broadcast channels and long-unused send permits go;
what is still in use stays."""

import json
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    DevPushMessage,
    LiveActivity,
    LiveActivityChannel,
    RateLimitCounter,
    SendSlot,
    SmsMessage,
    VerificationCode,
)
from app.models.types import utcnow
from app.push import slots
from app.security import ratelimit
from tests.factories import (
    create_session,
    last_code,
    log_in,
    new_token,
    random_phone,
    request_code,
)
from tests.jsonapi_helpers import Caller
from tests.test_live_activities import register, register_device


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def _count(app, model):
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
    return count


def _age_everything(app, days):
    """Move every code's expiry and every text back by ``days``."""
    with app.app_context():
        for code in db.session.scalars(select(VerificationCode)):
            code.expires_at -= timedelta(days=days)
        for text in db.session.scalars(select(SmsMessage)):
            text.created_at -= timedelta(days=days)
        db.session.commit()
        db.session.remove()


def _add_windows(app, *expires_in):
    """Rate-limit windows of their own keys, ending ``expires_in`` seconds from now."""
    now = int(time.time())
    with app.app_context():
        for index, seconds in enumerate(expires_in):
            db.session.add(RateLimitCounter(key=f"test:{index}", window_start=now - 3600,
                                            expires_at=now + seconds, count=1))
        db.session.commit()
        db.session.remove()


def test_prune_removes_only_what_has_ended(client, app, runner):
    log_in(client, app)
    _age_everything(app, days=8)
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    live_windows = _count(app, RateLimitCounter)
    _add_windows(app, -1, -60, 60)

    result = runner.invoke(args=["prune"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "sessions": 0, "credentials": 0, "verification_codes": 1, "sms_outbox": 1,
        "rate_limit_counters": 2, "worker_heartbeats": 0, "live_activities": 0,
        "live_activity_channels": 0, "dev_push_outbox": 0, "send_slots": 0}
    assert _count(app, VerificationCode) == 1
    assert _count(app, SmsMessage) == 1
    assert _count(app, RateLimitCounter) == live_windows + 1
    assert last_code(app, phone)  # the fresh text and its code are still there


def test_prune_keeps_a_window_that_still_weighs_on_the_next(app, runner):
    """A sliding window counts the previous window's hits until the current one ends."""
    rate = ratelimit.Rate(1, 3600)
    with app.app_context():
        assert ratelimit.hit("test:sliding", rate, now=time.time() - 3600).allowed
        db.session.commit()

    result = runner.invoke(args=["prune"])

    assert json.loads(result.output)["rate_limit_counters"] == 0
    with app.app_context():
        assert not ratelimit.hit("test:sliding", rate).allowed
        db.session.remove()


def test_prune_keeps_everything_younger_than_days(client, app, runner):
    log_in(client, app)
    _age_everything(app, days=3)

    result = runner.invoke(args=["prune", "--days", "7"])

    assert json.loads(result.output)["verification_codes"] == 0
    assert _count(app, VerificationCode) == 1
    assert _count(app, SmsMessage) == 1


def test_prune_refuses_a_negative_age(runner):
    result = runner.invoke(args=["prune", "--days", "-1"])
    assert result.exit_code == 2


def _activities_ended(client, app, days_ago):
    """An activity on one device for each age: ended (its ``end`` sent) that many days ago,
    or running (None). Their ids, by age."""
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    ids = {days: uuid.UUID(register(client, caller, device_id, new_token(),
                                    activity_id=f"match-{days}")["id"]) for days in days_ago}
    with app.app_context():
        for days, activity_id in ids.items():
            if days is not None:
                activity = db.session.get(LiveActivity, activity_id)
                activity.ended_at = utcnow() - timedelta(days=days)
                activity.ended_reason = "End"
        db.session.commit()
        db.session.remove()
    return ids


def _channels_ended(app, days_ago):
    """A broadcast channel for each age: found gone at APNs that many days ago, or open
    (None, made a month ago). Their APNs channel ids, by age."""
    now = utcnow()
    channels = {days: LiveActivityChannel(
        channel_id=f"channel-{days}", environment="production", message_storage_policy=0,
        created_at=now - timedelta(days=30),
        ended_at=None if days is None else now - timedelta(days=days),
        ended_reason=None if days is None else "ChannelNotRegistered") for days in days_ago}
    with app.app_context():
        db.session.add_all(channels.values())
        db.session.commit()
        db.session.remove()
    return {days: f"channel-{days}" for days in days_ago}


def _stand_in_pushes(app, days_ago):
    """A push the development stand-in recorded that many days ago, for each age."""
    with app.app_context():
        db.session.add_all([DevPushMessage(
            apns_id=str(uuid.uuid4()), device_id=str(uuid.uuid4()), channel="ios_push",
            token_tail=f"{days:08d}", payload={"aps": {"alert": "hi"}},
            created_at=utcnow() - timedelta(days=days)) for days in days_ago])
        db.session.commit()
        db.session.remove()


def _left(app, column):
    with app.app_context():
        values = set(db.session.scalars(select(column)))
        db.session.remove()
    return values


def test_prune_removes_ended_activities_gone_channels_and_old_stand_in_pushes(
        client, app, runner):
    activities = _activities_ended(client, app, (None, 1, 8))
    channels = _channels_ended(app, (None, 1, 8))
    _stand_in_pushes(app, (1, 8))

    result = runner.invoke(args=["prune"])

    assert result.exit_code == 0, result.output
    removed = json.loads(result.output)
    assert (removed["live_activities"], removed["live_activity_channels"],
            removed["dev_push_outbox"]) == (1, 1, 1)
    assert _left(app, LiveActivity.id) == {activities[None], activities[1]}
    assert _left(app, LiveActivityChannel.channel_id) == {channels[None], channels[1]}
    assert _left(app, DevPushMessage.token_tail) == {"00000001"}


def test_prune_days_sets_how_long_ended_activities_and_channels_are_kept(client, app, runner):
    activities = _activities_ended(client, app, (None, 1, 8))
    _channels_ended(app, (None, 1, 8))
    _stand_in_pushes(app, (1, 8))

    removed = json.loads(runner.invoke(args=["prune", "--days", "10"]).output)
    assert (removed["live_activities"], removed["live_activity_channels"],
            removed["dev_push_outbox"]) == (0, 0, 0)

    removed = json.loads(runner.invoke(args=["prune", "--days", "0"]).output)
    assert (removed["live_activities"], removed["live_activity_channels"],
            removed["dev_push_outbox"]) == (2, 2, 2)
    assert _left(app, LiveActivity.id) == {activities[None]}


@pytest.mark.committed  # the permits are taken through the engine, as a worker takes them
def test_prune_removes_send_permits_unused_for_the_days_given_and_they_are_free_again(
        app, runner):
    """A Telegram chat's permit is a row; a chat written to once would keep it forever."""
    chat = slots.Limit(("telegram:chat:-100",), window=3.0)
    now = utcnow()
    with app.app_context():
        for scope, days in (("telegram:chat:1", 1), ("telegram:chat:-100", 8)):
            db.session.add(SendSlot(scope=scope, next_at=now - timedelta(days=days)))
        db.session.add(SendSlot(scope="telegram:channel", next_at=now + timedelta(seconds=30)))
        db.session.commit()
        db.session.remove()

    removed = json.loads(runner.invoke(args=["prune"]).output)

    assert removed["send_slots"] == 1
    assert _left(app, SendSlot.scope) == {"telegram:chat:1", "telegram:channel"}
    with app.app_context():  # the pruned chat's permit is free: its row is made again
        taken = slots.take(db.engine, "telegram:hold", [chat], now, lease=10)
        db.session.remove()
    assert isinstance(taken, slots.Taken) and taken.permits == (("telegram:chat:-100", 3.0),)
