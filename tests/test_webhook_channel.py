"""The webhook channel: registration (the URL rule, the SSRF rule, the signing secret shown
once), each delivery a signed POST verified by the reference library, the answer table,
redirects not followed, a DNS answer that changes after registration, and the 72-hour
rule."""

import asyncio
import ipaddress
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Channel
from app.models.types import utcnow
from app.push.dispatcher import Dispatcher, DispatchSettings
from app.push.webhook import FAILING_TOO_LONG, WebhookSettings, WebhookTransport
from app.push.worker import Worker, WorkerOptions
from app.security import crypto
from tests import test_compat_cross_surface
from tests.compat_helpers import send
from tests.factories import bearer
from tests.push_rows import make_devices
from tests.test_dispatch import device_now, one_notification, rows, state_of
from tests.webhook_receiver import Answer, WebhookReceiver

people = test_compat_cross_surface.people  # logged-in users with their credentials
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


def post_device(client, who, **attributes):
    return client.post("/api/devices", headers=bearer(who.session), json={
        "data": {"type": "devices", "attributes": attributes}})


# -- registration ------------------------------------------------------------------------


def test_a_webhook_registration_shows_its_signing_secret_once(client, people, receiver):
    alice = people()
    first = post_device(client, alice, channel="webhook", token=receiver.url())
    assert first.status_code == 201, first.get_json()
    attributes = first.get_json()["data"]["attributes"]
    assert attributes["channel"] == "webhook"
    assert attributes["signing_secret"].startswith("whsec_")

    again = post_device(client, alice, channel="webhook", token=receiver.url())
    assert again.status_code == 200
    assert "signing_secret" not in again.get_json()["data"]["attributes"]
    shown = client.get(f"/api/devices/{first.get_json()['data']['id']}",
                       headers=bearer(alice.session))
    assert "signing_secret" not in shown.get_json()["data"]["attributes"]


def test_deleting_and_registering_again_issues_a_new_secret(client, people, receiver):
    alice = people()
    first = post_device(client, alice, channel="webhook", token=receiver.url()).get_json()
    deleted = client.delete(f"/api/devices/{first['data']['id']}",
                            headers=bearer(alice.session))
    assert deleted.status_code == 204
    second = post_device(client, alice, channel="webhook", token=receiver.url()).get_json()
    assert second["data"]["attributes"]["signing_secret"] != \
        first["data"]["attributes"]["signing_secret"]


def test_seed_003_registers_a_webhook_with_its_secret(client, people, receiver):
    alice = people()
    response = send(client, "POST", "/v1/devices",
                    {"channel": "webhook", "token": receiver.url()}, bearer(alice.session))
    assert response.status_code == 201, response.get_json()
    document = response.get_json()
    assert document["device"]["channel"] == "webhook"
    assert document["signing_secret"].startswith("whsec_")
    assert "token" not in document["device"]


def test_webhooks_and_chats_are_never_apple_device_tokens(client, people, receiver):
    alice = people()
    assert post_device(client, alice, channel="webhook", token=receiver.url()).status_code == 201
    assert post_device(client, alice, channel="telegram", token="4242").status_code == 201

    listed = client.get("/api/apple_device_tokens", headers=bearer(alice.session))

    assert listed.status_code == 200 and listed.get_json()["data"] == []


@pytest.mark.parametrize("url", [
    "ftp://example.com/hook", "https://user:pw@example.com/hook",
    "https://example.com/hook#part", "https:///nohost", "not a url", "https://example.com/"
    + "x" * 2048, "https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook", "https://[::ffff:10.0.0.1]/hook", "https://224.0.0.1/hook",
    "https://192.168.1.1:8443/hook", "https://0.0.0.0/hook",
    "https://no-such-host.invalid/hook"])
def test_webhook_urls_that_may_not_be_reached_are_refused(client, people, url):
    response = post_device(client, people(), channel="webhook", token=url)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["errors"][0]
    assert error["source"] == {"pointer": "/data/attributes/token"}


def test_a_name_resolving_to_loopback_is_refused_without_the_allowance(client, app,
                                                                       people, receiver):
    url = receiver.url().replace("127.0.0.1", "localhost")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(app.config, "WEBHOOK_ALLOW_NETWORKS", ())
        refused = post_device(client, people(), channel="webhook", token=url)
    assert refused.status_code == 400
    assert "special address" in refused.get_json()["errors"][0]["detail"]
    assert post_device(client, people(), channel="webhook", token=url).status_code == 201


def test_plain_http_needs_the_allowance(client, app, people, receiver):
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(app.config, "WEBHOOK_ALLOW_HTTP", False)
        refused = post_device(client, people(), channel="webhook", token=receiver.url())
    assert refused.status_code == 400
    assert "https" in refused.get_json()["errors"][0]["detail"]


# -- sending -----------------------------------------------------------------------------


def webhook_notification(app, receiver, path="/hook", count=1, content=None, **attributes):
    """A notification to ``count`` webhook devices at ``path``: (devices, deliveries)."""
    receiver.secrets[path] = SECRET
    with rows(app) as connection:
        devices = make_devices(connection, count,
                               tokens=[f"{receiver.url(path)}?n={n}" for n in range(count)],
                               channel="webhook", environment=None, bundle_id=None,
                               signing_secret=crypto.seal(SECRET), **attributes)
    return one_notification(app, devices=devices, content=content)


def send_webhooks(app, lookup=None, **settings):
    """A burst worker with the webhook transport alone (``lookup``: the name resolution)."""
    with app.app_context():
        config = {**app.config, "PUSH_RETRY_BASE": 1.0, **settings}

        async def run():
            async with WebhookTransport(WebhookSettings.from_config(config), db.engine,
                                        lookup) as transport:
                dispatcher = Dispatcher({Channel.WEBHOOK: transport}, db.engine,
                                        DispatchSettings.from_config(config))
                return await Worker(dispatcher, db.engine, WorkerOptions(burst=True)).run()

        return asyncio.run(run())


def state(app, delivery):
    return state_of(app)[str(delivery["apns_id"])]


@pytest.mark.committed
def test_each_delivery_is_one_signed_post_of_the_notification(app, receiver):
    devices, deliveries = webhook_notification(app, receiver, count=3, content={
        "alert": {"title": "Hi", "body": "Your order shipped"}, "custom": {"order": 42}})

    assert send_webhooks(app)["sent"] == 3

    received = receiver.received()
    assert len(received) == 3 and all(entry.verified for entry in received)
    by_id = {entry.headers["webhook-id"]: entry for entry in received}
    for device, delivery in zip(devices, deliveries, strict=True):
        entry = by_id[str(delivery["apns_id"])]
        assert entry.body == {
            "type": "notification", "delivery_id": str(delivery["apns_id"]),
            "notification_id": str(delivery["notification_id"]),
            "device_id": str(device["id"]), "push_type": "alert", "title": "Hi",
            "body": "Your order shipped", "data": {"order": 42}}


@pytest.mark.committed
def test_a_retry_carries_the_same_webhook_id_and_a_fresh_signature(app, receiver):
    receiver.answer("/hook?n=0", Answer(503), Answer(200))
    _, (delivery,) = webhook_notification(app, receiver)

    assert send_webhooks(app)["pending"] == 1
    with rows(app) as connection:
        connection.execute(db.text("UPDATE deliveries SET next_attempt_at = :now"),
                           {"now": utcnow()})
    assert send_webhooks(app)["sent"] == 1

    first, second = receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == \
        str(delivery["apns_id"])
    assert first.verified and second.verified


@pytest.mark.committed
@pytest.mark.parametrize(("answer", "expected", "reason"), [
    (Answer(200), "sent", None), (Answer(204), "sent", None),
    (Answer(410), "invalidated", "Gone"),
    (Answer(400), "failed", "HTTP400"), (Answer(401), "failed", "HTTP401"),
    (Answer(403), "failed", "HTTP403"), (Answer(404), "failed", "HTTP404"),
    (Answer(413), "failed", "HTTP413"), (Answer(422), "failed", "HTTP422"),
    (Answer(408), "pending", "HTTP408"), (Answer(425), "pending", "HTTP425"),
    (Answer(429), "pending", "HTTP429"), (Answer(500), "pending", "HTTP500"),
    (Answer(503), "pending", "HTTP503"),
    (Answer(hang=3), "pending", "TransportError"),
    (Answer(reset=True), "pending", "TransportError"),
])
def test_each_answer_leads_to_its_action(app, receiver, answer, expected, reason):
    receiver.answer("/hook?n=0", answer)
    devices, (delivery,) = webhook_notification(app, receiver)

    send_webhooks(app, WEBHOOK_TIMEOUT=1.0)

    row = state(app, delivery)
    assert (row.state, row.last_reason) == (expected, reason)
    assert device_now(app, devices[0]).is_invalidated is (expected == "invalidated")


@pytest.mark.committed
def test_429_waits_at_least_its_retry_after(app, receiver):
    receiver.answer("/hook?n=0", Answer(429, {"Retry-After": "120"}))
    _, (delivery,) = webhook_notification(app, receiver)
    before = utcnow()
    send_webhooks(app)
    assert state(app, delivery).next_attempt_at >= before + timedelta(seconds=119)


@pytest.mark.committed
def test_an_endless_answer_is_read_no_further_than_64_kib(app, receiver):
    receiver.answer("/hook?n=0", Answer(200, endless=True))
    _, (delivery,) = webhook_notification(app, receiver)

    send_webhooks(app, WEBHOOK_TIMEOUT=5.0)

    assert state(app, delivery).state == "sent"  # not a timeout reading a gigabyte
    assert receiver.endless_written < 64 * 1024 * 1024  # what socket buffers took


@pytest.mark.committed
def test_a_redirect_to_a_private_address_is_not_followed(app, receiver):
    receiver.answer("/hook?n=0", Answer(302, {"Location": "http://10.0.0.1/steal"}))
    _, (delivery,) = webhook_notification(app, receiver)

    send_webhooks(app)

    row = state(app, delivery)
    assert (row.state, row.last_status, row.last_reason) == ("failed", 302, "Redirect")
    assert len(receiver.received()) == 1


@pytest.mark.committed
def test_a_dns_answer_that_changed_since_registration_is_refused(app, receiver):
    """Registered while ``localhost`` was 127.0.0.1 (allowed in tests); at sending time the
    name resolves to a private address: nothing is sent there."""
    receiver.secrets["/hook"] = SECRET
    url = receiver.url().replace("127.0.0.1", "changing.example")
    with rows(app) as connection:
        devices = make_devices(connection, tokens=[url], channel="webhook", environment=None,
                               bundle_id=None, signing_secret=crypto.seal(SECRET))
    _, (delivery,) = one_notification(app, devices=devices)

    send_webhooks(app, lookup=lambda host, port: [ipaddress.ip_address("10.1.2.3")])

    row = state(app, delivery)
    assert (row.state, row.last_reason) == ("failed", "RefusedAddress")
    assert receiver.received() == []


@pytest.mark.committed
def test_the_connection_goes_to_the_checked_address(app, receiver):
    """A name resolving to the allowed loopback: the request reaches the receiver."""
    receiver.secrets["/hook"] = SECRET
    url = receiver.url().replace("127.0.0.1", "receiver.example")
    with rows(app) as connection:
        devices = make_devices(connection, tokens=[url], channel="webhook", environment=None,
                               bundle_id=None, signing_secret=crypto.seal(SECRET))
    _, (delivery,) = one_notification(app, devices=devices)

    send_webhooks(app, lookup=lambda host, port: [ipaddress.ip_address("127.0.0.1")])

    assert state(app, delivery).state == "sent"
    assert receiver.received()[0].verified


@pytest.mark.committed
def test_an_endpoint_failing_for_72_hours_is_invalidated(app, receiver):
    receiver.answer("/hook?n=0", Answer(500))
    devices, (delivery,) = webhook_notification(
        app, receiver, failing_since=utcnow() - timedelta(hours=72, minutes=1))

    send_webhooks(app)

    assert state(app, delivery).state == "invalidated"
    device = device_now(app, devices[0])
    assert device.is_invalidated and device.invalidated_reason == FAILING_TOO_LONG


@pytest.mark.committed
def test_failing_since_starts_at_a_failure_and_clears_at_a_success(app, receiver):
    receiver.answer("/hook?n=0", Answer(500))
    devices, _ = webhook_notification(app, receiver)
    send_webhooks(app)
    assert device_now(app, devices[0]).failing_since is not None

    receiver.answer("/hook?n=0", Answer(200))
    one_notification(app, devices=devices)
    send_webhooks(app)
    assert device_now(app, devices[0]).failing_since is None
    assert not device_now(app, devices[0]).is_invalidated
