"""Delivery receipts: an API key's callback (set, refused, cleared, shown once), every final
outcome of its deliveries POSTed in signed batches of at most 500, through a receiver that
is down for a while (every event arrives, duplicates only under the same webhook-id), a
batch whose worker died sent again under its id, a 410 turning receipts off until
``set-callback`` turns them on, and the push worker sending them beside its lanes."""

import asyncio
import json
import time
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Channel, Credential, Notification, ReceiptBatch, ReceiptEvent
from app.models.types import utcnow
from app.ops.cli.commands import keys as keys_command
from app.push.dispatcher import Dispatcher, DispatchSettings
from app.push.receipts import MAX_EVENTS, ReceiptSender, ReceiptSettings
from app.push.webhook import WebhookSettings, WebhookTransport
from app.push.worker import Worker, WorkerOptions, run_worker
from app.resources import api_keys
from tests.test_dispatch import one_notification, rows, state_of
from tests.test_webhook_channel import webhook_notification
from tests.webhook_receiver import Answer, WebhookReceiver

RECEIPTS = "/receipts"
FAST = {"PUSH_RETRY_BASE": 1.0, "RECEIPTS_RETRY_BASE": 0.05, "RECEIPTS_RETRY_MAX": 0.2,
        "RECEIPTS_POLL_INTERVAL": 0.05}


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


def keys_cli(app, *arguments):
    return CliRunner().invoke(keys_command, list(arguments),
                              obj=ScriptInfo(create_app=lambda: app))


def key_with_callback(app, receiver, name="sender") -> int:
    """An API key whose receipts go to the receiver (which checks their signatures)."""
    with app.app_context():
        key, _ = api_keys.create(name, ["notifications:send"])
        receiver.secrets[RECEIPTS] = api_keys.set_callback(name, receiver.url(RECEIPTS))
        db.session.commit()
        return key.id


def sent_by(app, key_id, deliveries):
    with rows(app) as connection:
        connection.execute(update(Notification.__table__).where(
            Notification.__table__.c.id == deliveries[0]["notification_id"])
            .values(sender_id=key_id))
    return deliveries


def dispatch_all(app, concurrency=2, **settings):
    """A burst of the dispatcher with the webhook transport alone: the iOS deliveries fail
    as ChannelNotConfigured without a request, the webhook ones are sent."""
    with app.app_context():
        return asyncio.run(dispatching({**app.config, **FAST, **settings}, concurrency))


async def dispatching(config, concurrency=2):
    async with WebhookTransport(WebhookSettings.from_config(config), db.engine) as transport:
        dispatcher = Dispatcher({Channel.WEBHOOK: transport}, db.engine,
                                DispatchSettings.from_config(config))
        return await Worker(dispatcher, db.engine,
                            WorkerOptions(burst=True, concurrency=concurrency)).run()


def send_receipts(app, until, timeout=20.0, **settings):
    """The receipts sender's loop until ``until()`` holds (or ``timeout`` seconds)."""
    config = {**app.config, **FAST, **settings}

    async def run():
        async with WebhookTransport(WebhookSettings.from_config(config),
                                    db.engine) as transport:
            sender = ReceiptSender(transport, db.engine, ReceiptSettings.from_config(config))
            async with sender.running():
                deadline = time.monotonic() + timeout
                while not await asyncio.to_thread(until) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            return sender.totals

    with app.app_context():
        return asyncio.run(run())


def waiting_events(app) -> int:
    with rows(app) as connection:
        return connection.scalar(select(func.count()).select_from(ReceiptEvent.__table__))


def nothing_waits(app):
    return lambda: waiting_events(app) == 0


def acknowledged(receiver):
    return receiver.received(RECEIPTS)


# -- the callback ------------------------------------------------------------------------


def test_a_key_made_with_a_callback_shows_its_signing_secret_once(app, receiver):
    made = keys_cli(app, "create", "--name", "cb", "--scope", "notifications:send",
                    "--callback-url", receiver.url(RECEIPTS))
    assert made.exit_code == 0, made.output
    shown = json.loads(made.output)
    assert shown["callback_url"] == receiver.url(RECEIPTS)
    assert shown["callback_secret"].startswith("whsec_")

    listed = keys_cli(app, "list").output
    assert '"receipts": "on"' in listed and shown["callback_secret"] not in listed
    kept = json.loads(keys_cli(app, "set-callback", "cb", receiver.url("/other"),
                               "--keep-secret").output)
    assert "callback_secret" not in kept
    rotated = json.loads(keys_cli(app, "set-callback", "cb", receiver.url(RECEIPTS)).output)
    assert rotated["callback_secret"] not in (None, shown["callback_secret"])
    cleared = keys_cli(app, "set-callback", "cb", "--clear")
    assert cleared.exit_code == 0 and '"receipts": "off"' in keys_cli(app, "list").output


@pytest.mark.parametrize("url", ["http://10.0.0.7/receipts", "ftp://example.com/x",
                                 "http://user:pw@127.0.0.1/x", "not a url"])
def test_a_callback_url_webhooks_may_not_reach_is_refused_and_nothing_changes(app, url):
    keys_cli(app, "create", "--name", "cb", "--scope", "notifications:send")
    refused = keys_cli(app, "set-callback", "cb", url)
    assert refused.exit_code != 0 and "webhook" in refused.output.lower()
    made = keys_cli(app, "create", "--name", "cb2", "--scope", "notifications:send",
                    "--callback-url", url)
    assert made.exit_code != 0
    listed = keys_cli(app, "list").output
    assert '"receipts": "on"' not in listed and "cb2" not in listed


def test_set_callback_names_a_key_that_exists(app, receiver):
    missing = keys_cli(app, "set-callback", "nobody", receiver.url(RECEIPTS))
    assert missing.exit_code != 0 and "no API key" in missing.output


# -- sending -----------------------------------------------------------------------------


@pytest.mark.committed
def test_every_outcome_arrives_through_a_receiver_down_for_a_while(app, receiver):
    key_id = key_with_callback(app, receiver)
    _, failing = one_notification(app, count=MAX_EVENTS + 150)  # iOS: no client, failed
    sent_by(app, key_id, failing)
    _, webhooks = webhook_notification(app, receiver, count=3)
    sent_by(app, key_id, webhooks)
    receiver.answer(RECEIPTS, Answer(503), Answer(reset=True), Answer(429),
                    Answer(500), Answer(200))

    totals = dispatch_all(app)
    assert totals["failed"] == MAX_EVENTS + 150 and totals["sent"] == 3
    send_receipts(app, nothing_waits(app))

    outcomes = state_of(app)
    received = acknowledged(receiver)
    assert all(entry.verified for entry in received)
    assert max(len(entry.body["events"]) for entry in received) <= MAX_EVENTS
    bodies_by_id = defaultdict(list)
    for entry in received:
        bodies_by_id[entry.headers["webhook-id"]].append(entry.body)
    for bodies in bodies_by_id.values():  # a retry is the same batch
        assert all(body == bodies[0] for body in bodies)
    events = [event for bodies in bodies_by_id.values() for event in bodies[0]["events"]]
    assert sorted(event["delivery_id"] for event in events) == sorted(outcomes)
    for event in events:
        row = outcomes[event["delivery_id"]]
        assert (event["state"], event["reason"], event["channel"]) == \
            (row.state, row.last_reason, row.channel)
        assert event["notification_id"] == str(row.notification_id)
        assert event["device_id"] == str(row.device_id) and event["at"].endswith("Z")
    assert len(received) > len(bodies_by_id)  # it was down: retries happened
    with rows(app) as connection:
        assert connection.scalar(select(func.count())
                                 .select_from(ReceiptBatch.__table__)) == 0


@pytest.mark.committed
def test_a_keys_events_leave_in_the_order_they_were_written(app, receiver):
    # One lane: the outcomes are written in the deliveries' order (two lanes may split a
    # claim and commit in either order; the order kept is the order written).
    key_id = key_with_callback(app, receiver)
    _, first = one_notification(app, count=MAX_EVENTS + 10)
    sent_by(app, key_id, first)
    dispatch_all(app, concurrency=1)
    _, second = one_notification(app, count=5)
    sent_by(app, key_id, second)
    dispatch_all(app, concurrency=1)

    send_receipts(app, nothing_waits(app))

    events = [event["delivery_id"] for entry in acknowledged(receiver)
              for event in entry.body["events"]]
    assert events == [str(delivery["apns_id"]) for delivery in first + second]


@pytest.mark.committed
def test_a_batch_whose_worker_died_is_sent_again_under_its_id(app, receiver):
    key_id = key_with_callback(app, receiver)
    sent_by(app, key_id, one_notification(app, count=4)[1])
    dispatch_all(app)
    with app.app_context():
        died = ReceiptSender(None, db.engine, ReceiptSettings(lease=0.2))
        (taken,) = died._take()  # claimed, never answered: the worker died here

    time.sleep(0.3)
    send_receipts(app, nothing_waits(app))

    (entry,) = acknowledged(receiver)
    assert entry.headers["webhook-id"] == str(taken.id)
    assert entry.body["events"] == taken.events


@pytest.mark.committed
def test_a_410_turns_receipts_off_until_set_callback(app, receiver):
    key_id = key_with_callback(app, receiver)
    sent_by(app, key_id, one_notification(app, count=2)[1])
    dispatch_all(app)
    receiver.answer(RECEIPTS, Answer(410))
    send_receipts(app, nothing_waits(app))
    with app.app_context():
        assert db.session.get(Credential, key_id).callback_off_since is not None

    sent_by(app, key_id, one_notification(app, count=2)[1])
    dispatch_all(app)
    assert waiting_events(app) == 0  # off: nothing is kept for it

    assert keys_cli(app, "set-callback", "sender", receiver.url(RECEIPTS),
                    "--keep-secret").exit_code == 0
    receiver.answer(RECEIPTS, Answer(200))
    _, again = one_notification(app, count=2)
    sent_by(app, key_id, again)
    dispatch_all(app)
    send_receipts(app, nothing_waits(app))
    last = acknowledged(receiver)[-1]
    assert last.verified and [event["delivery_id"] for event in last.body["events"]] == \
        [str(delivery["apns_id"]) for delivery in again]


@pytest.mark.committed
def test_a_batch_failing_past_its_retry_window_is_dropped(app, receiver):
    key_id = key_with_callback(app, receiver)
    sent_by(app, key_id, one_notification(app, count=2)[1])
    dispatch_all(app)
    receiver.answer(RECEIPTS, Answer(503))
    send_receipts(app, lambda: len(acknowledged(receiver)) >= 1, timeout=5)

    failing_for(app, hours=23)  # within the day: retried still
    totals = send_receipts(app, lambda: len(acknowledged(receiver)) >= 2, timeout=5)
    assert totals["receipts_dropped"] == 0 and waiting_events(app) == 2

    failing_for(app, hours=25)
    totals = send_receipts(app, nothing_waits(app))
    assert totals["receipts_dropped"] == 2


def failing_for(app, hours):
    """As if the batch had been failing for ``hours``, and its next attempt due."""
    with rows(app) as connection:
        connection.execute(update(ReceiptBatch.__table__).values(
            created_at=utcnow() - timedelta(hours=hours), next_attempt_at=utcnow()))


@pytest.mark.committed
def test_outcomes_reach_the_receiver_within_two_seconds(app, receiver):
    key_id = key_with_callback(app, receiver)
    _, deliveries = webhook_notification(app, receiver, count=3)
    sent_by(app, key_id, deliveries)
    config = dict(app.config)  # the receipts' settings as shipped (a 0.5 s poll)
    assert config["RECEIPTS_POLL_INTERVAL"] == 0.5

    async def run():
        async with WebhookTransport(WebhookSettings.from_config(config),
                                    db.engine) as transport:
            sender = ReceiptSender(transport, db.engine, ReceiptSettings.from_config(config))
            async with sender.running():
                await asyncio.sleep(0.7)  # idle, looking for receipts now and then
                await dispatching({**config, **FAST})
                deadline = time.monotonic() + 10
                while not acknowledged(receiver) and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)

    with app.app_context():
        asyncio.run(run())

    (entry,) = acknowledged(receiver)
    assert len(entry.body["events"]) == 3
    for event in entry.body["events"]:
        happened = datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()
        assert entry.at - happened < 2.0, (entry.at - happened, event)


@pytest.mark.committed
def test_outcomes_of_other_senders_make_no_receipts(app, receiver):
    key_with_callback(app, receiver)
    one_notification(app, count=3)  # no sender (the CLI's push send)
    dispatch_all(app)
    assert waiting_events(app) == 0


@pytest.mark.committed
def test_the_push_worker_sends_receipts_beside_its_lanes(app, receiver):
    key_id = key_with_callback(app, receiver)
    _, deliveries = webhook_notification(app, receiver, count=2)
    sent_by(app, key_id, deliveries)

    with app.app_context():
        totals = asyncio.run(run_worker({**app.config, **FAST}, db.engine, burst=True))

    assert totals["sent"] == 2 and totals["receipts_sent"] == 2
    (entry,) = acknowledged(receiver)
    assert entry.verified and {event["state"] for event in entry.body["events"]} == {"sent"}
