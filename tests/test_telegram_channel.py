"""The Telegram channel against the fake Bot API: chat ids and @usernames as tokens, the
message's text, the answer table, a 429 that holds the whole channel for every worker, a
group migrated to a supergroup, Telegram's rate limits kept by two workers together, and
the bot token never in a log."""

import asyncio
import itertools
import logging
import socket
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Channel, SendSlot
from app.models.types import utcnow
from app.push.dispatcher import Dispatcher, DispatchSettings
from app.push.telegram import TelegramSettings, TelegramTransport
from app.push.worker import Worker, WorkerOptions
from tests import test_compat_cross_surface
from tests.factories import bearer
from tests.fake_telegram import TOKEN, FakeTelegram
from tests.push_rows import make_devices
from tests.test_dispatch import device_now, one_notification, rows, state_of

people = test_compat_cross_surface.people


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server


def post_device(client, who, **attributes):
    return client.post("/api/devices", headers=bearer(who.session), json={
        "data": {"type": "devices", "attributes": attributes}})


# -- registration ------------------------------------------------------------------------


@pytest.mark.parametrize("chat", ["123456789", "-1001234567890", "@my_channel",
                                  "999999999999999", "-999999999999999"])
def test_chat_ids_and_usernames_register(client, people, chat):
    response = post_device(client, people(), channel="telegram", token=chat)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["attributes"]["channel"] == "telegram"
    assert "signing_secret" not in response.get_json()["data"]["attributes"]


@pytest.mark.parametrize("chat", ["0", "1000000000000000", "12.5", "@abc", "@" + "a" * 33,
                                  "@bad-name", "me", "+123", " 123", "0x1f"])
def test_malformed_chats_are_refused_naming_the_token(client, people, chat):
    response = post_device(client, people(), channel="telegram", token=chat)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["errors"][0]["source"] == {"pointer": "/data/attributes/token"}


# -- sending -----------------------------------------------------------------------------


def chats(app, *tokens, content=None):
    with rows(app) as connection:
        devices = make_devices(connection, len(tokens), tokens=list(tokens),
                               channel="telegram", environment=None, bundle_id=None)
    return one_notification(app, devices=devices, content=content)


def worker_config(app, fake, **settings):
    return {**app.config, "PUSH_RETRY_BASE": 1.0, "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": fake.url, **settings}


def send_telegram(app, fake, **settings):
    """A burst worker with the Telegram transport alone."""
    with app.app_context():
        return asyncio.run(_run(worker_config(app, fake, **settings), db.engine))


async def _run(config, engine):
    async with TelegramTransport(TelegramSettings.from_config(config), engine) as transport:
        dispatcher = Dispatcher({Channel.TELEGRAM: transport}, engine,
                                DispatchSettings.from_config(config))
        return await Worker(dispatcher, engine, WorkerOptions(burst=True, chunk_size=20)).run()


def state(app, delivery):
    return state_of(app)[str(delivery["apns_id"])]


@pytest.mark.committed
def test_the_alert_becomes_escaped_html_and_data_stays_home(app, fake):
    chats(app, "42", "@news_channel", content={
        "alert": {"title": "Deals <today>", "body": "Fish & chips"},
        "custom": {"secret": "not sent"}, "interruption_level": "passive"})

    assert send_telegram(app, fake)["sent"] == 2

    bodies = {sent.chat_id: sent.body for sent in fake.log}
    assert bodies[42] == {"chat_id": 42, "text": "<b>Deals &lt;today&gt;</b>\nFish &amp; chips",
                          "parse_mode": "HTML", "disable_notification": True}
    assert bodies["@news_channel"]["chat_id"] == "@news_channel"


@pytest.mark.committed
@pytest.mark.parametrize(("behaviour", "expected", "reason"), [
    ("blocked", "invalidated", "Forbidden: bot was blocked by the user"),
    ("deactivated", "invalidated", "Forbidden: user is deactivated"),
    ("kicked", "invalidated", "Forbidden: bot was kicked from the group chat"),
    ("not_found", "invalidated", "Bad Request: chat not found"),
    ("bad", "failed", "Bad Request: can't parse entities"),
    ("down", "pending", "Bad Gateway"),
])
def test_each_answer_leads_to_its_action(app, fake, behaviour, expected, reason):
    fake.chats[77] = behaviour
    devices, (delivery,) = chats(app, "77")

    send_telegram(app, fake)

    row = state(app, delivery)
    assert (row.state, row.last_reason) == (expected, reason)
    device = device_now(app, devices[0])
    assert device.is_invalidated is (expected == "invalidated")
    if expected == "invalidated":
        assert device.invalidated_reason == reason


@pytest.mark.committed
def test_a_migrated_group_moves_the_device_and_is_sent_again(app, fake):
    fake.chats[-4001] = ("migrate", -1009876543210)
    devices, (delivery,) = chats(app, "-4001")

    assert send_telegram(app, fake)["sent"] == 1

    assert [sent.chat_id for sent in fake.log] == [-1009876543210]
    assert device_now(app, devices[0]).token == "-1009876543210"
    assert state(app, delivery).state == "sent"


@pytest.mark.committed
def test_a_429_holds_the_whole_channel_for_every_worker(app, fake):
    fake.burst_429(1, retry_after=30)
    _, (delivery,) = chats(app, "501")
    before = utcnow()

    send_telegram(app, fake)

    row = state(app, delivery)
    assert row.state == "pending" and row.next_attempt_at >= before + timedelta(seconds=29)
    with rows(app) as connection:
        held = connection.scalar(select(SendSlot.next_at).where(SendSlot.scope == "telegram"))
    assert held.replace(tzinfo=before.tzinfo) >= before + timedelta(seconds=29)
    # another worker now finds the channel held: it sends nothing, the delivery waits
    _, (later,) = chats(app, "502")
    send_telegram(app, fake)
    assert state(app, later).state == "pending" and fake.log == []


def most_within(moments, window=1.0):
    """The most of ``moments`` (seconds) that fall within any ``window`` seconds."""
    moments = sorted(moments)
    return max((sum(1 for later in moments[index:] if later - moment < window)
                for index, moment in enumerate(moments)), default=0)


def closest(moments):
    moments = sorted(moments)
    return min((later - moment for moment, later in itertools.pairwise(moments)),
               default=float("inf"))


@pytest.mark.committed
def test_a_429_stops_the_sends_already_claimed_as_they_leave(app, fake):
    # one message a second: the 429's hold is written before its permit is free again,
    # and the two messages claimed with it wait for the hold, not for their turn alone
    fake.burst_429(1, retry_after=2)
    chats(app, "601", "602", "603")

    send_telegram(app, fake, TELEGRAM_MESSAGES_PER_SECOND=1.0)

    (_, refused_at), *later = fake.arrivals
    assert len(later) == 2 and all(at >= refused_at + 2 for _, at in later), later
    assert len(fake.log) == 2


@pytest.mark.committed
@pytest.mark.slow
def test_two_workers_keep_telegrams_limits_together(app, fake):
    fake.per_second = 10
    settings = {"TELEGRAM_MESSAGES_PER_SECOND": 10.0, "TELEGRAM_CHAT_INTERVAL": 1.0}
    chats(app, *[str(1000 + n) for n in range(16)])
    devices, _ = chats(app, "2000")
    for _ in range(3):  # three more notifications to the same chat
        one_notification(app, devices=devices)

    with app.app_context():
        config = worker_config(app, fake, **settings)

        async def two_workers():  # each its own transport, sharing only the database
            await asyncio.gather(_run(config, db.engine), _run(config, db.engine))

        asyncio.run(two_workers())

    # what the Bot API saw, whatever the machine's load: the limits held as requests
    # arrived, not only as they left
    arrived = fake.arrivals
    assert len(arrived) == 20 and fake.violations == 0, fake.violation_log
    assert most_within([at for _, at in arrived]) <= 10
    by_chat: dict = {}
    for chat_id, at in arrived:
        by_chat.setdefault(chat_id, []).append(at)
    assert closest(by_chat[2000]) >= 1.0 and len(by_chat[2000]) == 4
    assert [sent.body["chat_id"] for sent in fake.log].count(2000) == 4


@pytest.mark.committed
def test_a_burst_of_messages_to_one_chat_leave_in_order_a_second_apart(app, fake):
    devices, _ = chats(app, "3000", content={"alert": "first"})
    for number in ("second", "third"):
        one_notification(app, devices=devices, content={"alert": number})

    send_telegram(app, fake)

    assert [sent.body["text"] for sent in fake.log] == ["first", "second", "third"]
    assert closest([sent.at for sent in fake.log]) >= 1.0


@pytest.mark.committed
def test_the_bot_token_is_never_logged(app, caplog):
    _, (delivery,) = chats(app, "31337")
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        closed = SimpleNamespace(url=f"http://127.0.0.1:{probe.getsockname()[1]}")
    with caplog.at_level(logging.DEBUG):
        send_telegram(app, closed)
    row = state(app, delivery)
    assert row.state == "pending" and row.last_reason == "TransportError"
    assert TOKEN not in (row.detail or "") and TOKEN not in caplog.text
