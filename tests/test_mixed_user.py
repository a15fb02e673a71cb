"""A user with an iPhone, an Android phone, a webhook and a Telegram chat: one notification
POSTed to /api/notifications becomes exactly four deliveries, each through its channel's
provider (the fake APNs, the fake FCM, the webhook receiver, the fake Telegram), and the
sending key's callback gets the four outcomes as receipts, on either queue."""

import json

import pytest

from tests.factories import bearer, register_token
from tests.fake_telegram import TOKEN as BOT_TOKEN
from tests.fake_telegram import FakeTelegram
from tests.jsonapi_helpers import Caller, body
from tests.push_rows import BUNDLE_ID
from tests.test_credentials import _create_key
from tests.test_dispatch import apns_environ, fake, send_due  # noqa: F401
from tests.test_fcm_dispatch import fake_fcm, fcm_config, fcm_key  # noqa: F401
from tests.test_fcm_registry import fcm_token
from tests.test_receipts import FAST, RECEIPTS
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.committed  # the worker reads the ledger on its own connection


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def telegram():
    with FakeTelegram() as server:
        yield server


def register(client, caller, **attributes) -> dict:
    response = client.post("/api/devices", headers=caller.headers, json={
        "data": {"type": "devices", "attributes": attributes}})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


@pytest.mark.parametrize("queue", ["embedded", "procrastinate"])
def test_a_user_with_four_channels_gets_exactly_four_deliveries(
        client, app, fake, key_file, fake_fcm, fcm_config, receiver, telegram,  # noqa: F811
        queue, request, monkeypatch):
    if queue == "procrastinate" and request.config.getoption("--db") != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")
    monkeypatch.setitem(app.config, "PUSH_QUEUE", queue)
    caller = Caller(client, app)
    iphone = register_token(client, caller.session_id, bundle_id=BUNDLE_ID)
    android = fcm_token()
    register(client, caller, channel="fcm", token=android)
    hook = register(client, caller, channel="webhook", token=receiver.url("/hook"))
    receiver.secrets["/hook"] = hook["attributes"]["signing_secret"]
    register(client, caller, channel="telegram", token="424242")
    made = json.loads(_create_key(app, "--name", "mixed", "--scope", "notifications:send",
                                  "--callback-url", receiver.url(RECEIPTS)).output)
    receiver.secrets[RECEIPTS] = made["callback_secret"]

    document = {"data": {"type": "notifications",
                         "attributes": {"alert": {"title": "Hi", "body": "Shipped"}},
                         "relationships": {"users": {"data": [
                             {"type": "users", "id": caller.user_id}]}}}}
    accepted = body(client.post("/api/notifications", json=document,
                                headers=bearer(made["key"])), 202)
    totals = send_due(app, apns_environ(fake, key_file), **(fcm_config | FAST),
                      PUSH_QUEUE=queue, TELEGRAM_BOT_TOKEN=BOT_TOKEN,
                      TELEGRAM_API_URL=telegram.url)

    assert totals["sent"] == 4
    assert [entry.token for entry in fake.log] == [iphone]
    assert [entry.token for entry in fake_fcm.log] == [android]
    (webhook,) = receiver.received("/hook")
    assert webhook.verified and webhook.body["title"] == "Hi"
    assert [str(sent.chat_id) for sent in telegram.log] == ["424242"]
    shown = body(client.get(f"/api/notifications/{accepted['data']['id']}",
                            headers=bearer(made["key"])), 200)["data"]["attributes"]
    assert shown["status"] == "done" and shown["counts"]["sent"] == 4
    (receipts,) = receiver.received(RECEIPTS)
    assert receipts.verified
    assert sorted((event["channel"], event["state"]) for event in receipts.body["events"]) \
        == [("fcm", "sent"), ("ios_push", "sent"), ("telegram", "sent"), ("webhook", "sent")]
