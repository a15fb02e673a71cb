"""The FCM channel against the fake FCM: messages built from the notification, FCM.md's
reason table, the access token (fetched once, shared, refreshed once on a 401, its endpoint
down), two worker processes, and one notification fanned out to iPhones and an Android
phone alike."""

import asyncio
import logging
import time
from datetime import UTC, timedelta

import pytest

from app.extensions import db
from app.models.types import utcnow
from app.push.worker import run_worker
from tests.compat_helpers import api_key
from tests.factories import bearer, register_token
from tests.fake_apns import Answer
from tests.fake_fcm import BAD_TOKEN_MESSAGE, FakeFcm, Reply, make_service_account_key
from tests.jsonapi_helpers import Caller, body
from tests.push_rows import BUNDLE_ID, make_fcm_devices
from tests.test_dispatch import (  # noqa: F401
    apns_config,
    apns_environ,
    count_pending,
    fake,
    finished,
    one_notification,
    rows,
    state_of,
    worker_process,
)
from tests.test_fcm_registry import fcm_token

pytestmark = pytest.mark.committed


@pytest.fixture(scope="session")
def fcm_key():
    return make_service_account_key()


@pytest.fixture
def fake_fcm(fcm_key):
    with FakeFcm(private_key=fcm_key) as server:
        yield server


@pytest.fixture
def fcm_config(fake_fcm, tmp_path):
    return {"FCM_CREDENTIALS_FILE": str(fake_fcm.write_credentials(tmp_path / "sa.json")),
            "FCM_URL": fake_fcm.url, "FCM_CA_FILE": fake_fcm.ca_file,
            "FCM_REQUEST_TIMEOUT": 5.0, "PUSH_RETRY_BASE": 1.0}


def send_due(app, config, apns=None):
    """``flask push worker --burst`` in this process, FCM configured by ``config``."""
    with app.app_context():
        return asyncio.run(run_worker({**app.config, **apns_config(apns or {}), **config},
                                      db.engine, burst=True))


def android(app, count=1, content=None, push_type="alert", expires_at=None):
    """A notification to ``count`` new Android devices: (devices, deliveries)."""
    with rows(app) as connection:
        devices = make_fcm_devices(connection, count)
    return one_notification(app, devices=devices, content=content, push_type=push_type,
                            expires_at=expires_at)


def outcome(app, delivery):
    return state_of(app)[str(delivery["apns_id"])]


def invalidated(app, device):
    with rows(app) as connection:
        from tests.push_rows import device_row
        return device_row(connection, device["id"]).is_invalidated


# -- success -------------------------------------------------------------------------------


def test_a_notification_becomes_an_fcm_message(app, fake_fcm, fcm_config):
    expires = int(time.time()) + 3600
    devices, deliveries = android(app, 3, content={
        "alert": {"title": "Hi", "body": "Your order shipped", "subtitle": "APNs only"},
        "custom": {"order": 42, "note": "x", "items": [1, 2]}, "badge": 3,
        "sound": "default", "category": "ORDER", "collapse_id": "orders",
        "expiration": expires, "priority": 5, "thread_id": "APNs only"})

    assert send_due(app, fcm_config)["sent"] == 3

    assert sorted(sent.token for sent in fake_fcm.log) == sorted(d["token"] for d in devices)
    message = fake_fcm.log[0].message
    assert message["notification"] == {"title": "Hi", "body": "Your order shipped"}
    assert message["data"] == {"order": "42", "note": "x", "items": "[1,2]"}
    android_config = message["android"]
    assert android_config["collapse_key"] == "orders" and android_config["priority"] == "normal"
    assert android_config["notification"] == {"notification_count": 3, "sound": "default",
                                              "click_action": "ORDER"}
    assert 3500 <= int(android_config["ttl"].removesuffix("s")) <= 3600
    assert {outcome(app, d).state for d in deliveries} == {"sent"}
    assert fake_fcm.tokens_issued == 1  # one access token for the whole batch


def test_a_background_push_is_a_data_message_at_normal_priority(app, fake_fcm, fcm_config):
    android(app, push_type="background", content={"alert": None, "custom": {"sync": "1"},
                                                   "content_available": True})
    assert send_due(app, fcm_config)["sent"] == 1
    message = fake_fcm.log[0].message
    assert "notification" not in message and message["data"] == {"sync": "1"}
    assert message["android"] == {"priority": "normal"}


# -- the reason table ----------------------------------------------------------------------

PAYLOAD_ERROR = Reply(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'",
                      field="message.android.ttl")


@pytest.mark.parametrize(("reply", "state", "reason", "token_dies", "channel_paused"), [
    (Reply(404, "UNREGISTERED", "Requested entity was not found."), "invalidated",
     "UNREGISTERED", True, False),
    (Reply(400, "INVALID_ARGUMENT", BAD_TOKEN_MESSAGE), "invalidated", "INVALID_ARGUMENT",
     True, False),
    (Reply(400, "INVALID_ARGUMENT", "Invalid token", field="message.token"), "invalidated",
     "INVALID_ARGUMENT", True, False),
    (PAYLOAD_ERROR, "failed", "INVALID_ARGUMENT", False, False),
    (Reply(403, "SENDER_ID_MISMATCH", "SenderId mismatch"), "failed", "SENDER_ID_MISMATCH",
     False, True),
    (Reply(401, "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
     "failed", "THIRD_PARTY_AUTH_ERROR", False, True),
    (Reply(429, "QUOTA_EXCEEDED", retry_after="120"), "pending", "QUOTA_EXCEEDED", False,
     False),
    (Reply(503, "UNAVAILABLE"), "pending", "UNAVAILABLE", False, False),
    (Reply(500, "INTERNAL"), "pending", "INTERNAL", False, False),
], ids=lambda value: value.code if isinstance(value, Reply) else None)
def test_each_answer_has_its_action(app, fake_fcm, fcm_config, caplog, reply, state, reason,
                                    token_dies, channel_paused):
    (device, *others), (delivery, *later) = android(app, 3)
    for each in (device, *others):
        fake_fcm.answer(each["token"], reply)

    with caplog.at_level(logging.ERROR, logger="app.push.dispatcher"):
        totals = send_due(app, {**fcm_config, "PUSH_CHUNK_SIZE": 1, "PUSH_CONCURRENCY": 1})

    row = outcome(app, delivery)
    assert (row.state, row.last_reason, row.last_status) == (state, reason, reply.status)
    assert invalidated(app, device) is token_dies
    if state == "failed":
        assert f"{reply.status} {reason}" in caplog.text  # logged loudly
    if channel_paused:  # the rest of the channel waits, unsent
        assert "sending to fcm pauses" in caplog.text and len(fake_fcm.log) == 1
        assert totals["handed_back"] == 2
        assert {(outcome(app, d).state, outcome(app, d).attempts) for d in later} == {
            ("pending", 0)}
    else:
        assert len(fake_fcm.log) == 3
    if reply.retry_after:  # honoured beyond the backoff's few seconds
        assert _aware(row.next_attempt_at) - utcnow() >= timedelta(seconds=110)
    assert totals.get("sent", 0) == 0


def _aware(moment):
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_retries_stop_when_the_notification_expires(app, fake_fcm, fcm_config):
    (device,), (delivery,) = android(app, expires_at=utcnow() + timedelta(seconds=30))
    fake_fcm.answer(device["token"], Reply(503, "UNAVAILABLE", retry_after="60"))
    send_due(app, fcm_config)
    assert outcome(app, delivery).state == "expired"
    assert not invalidated(app, device)


def test_a_payload_error_on_every_device_leaves_every_token_valid(app, fake_fcm, fcm_config):
    devices, deliveries = android(app, 30)
    for device in devices:
        fake_fcm.answer(device["token"], PAYLOAD_ERROR)
    send_due(app, fcm_config)
    assert {outcome(app, d).state for d in deliveries} == {"failed"}
    assert not any(invalidated(app, device) for device in devices)


def test_a_batch_of_mostly_invalid_tokens_is_quarantined(app, fake_fcm, fcm_config, caplog):
    devices, deliveries = android(app, 30)
    for device in devices[:20]:
        fake_fcm.answer(device["token"], Reply(400, "INVALID_ARGUMENT", BAD_TOKEN_MESSAGE))
    with caplog.at_level(logging.ERROR, logger="app.push.dispatcher"):
        # one lane: two lanes woken together may each claim part of the 30 (SKIP LOCKED)
        send_due(app, {**fcm_config, "PUSH_CONCURRENCY": 1})
    assert {outcome(app, d).last_reason for d in deliveries[:20]} == {"Quarantined"}
    assert not any(invalidated(app, device) for device in devices)
    assert "FCM answered INVALID_ARGUMENT to 20 of 30" in caplog.text


# -- the access token ----------------------------------------------------------------------


def test_a_revoked_access_token_is_refreshed_once_and_the_push_resent(app, fake_fcm,
                                                                      fcm_config):
    android(app)
    send_due(app, fcm_config)
    assert fake_fcm.tokens_issued == 1
    fake_fcm.revoke_access_tokens()
    _, deliveries = android(app, 20)

    assert send_due(app, fcm_config)["sent"] == 20

    assert fake_fcm.tokens_issued == 2  # twenty 401s, one refresh
    assert {outcome(app, d).state for d in deliveries} == {"sent"}
    assert fake_fcm.twice_accepted() == []
    assert sum(1 for sent in fake_fcm.log if sent.status == 401) <= 20


class FakeFcmWithBadTokens(FakeFcm):
    """A token endpoint answering an access token no HTTP header may carry."""

    def issue(self, form):
        status, answer = super().issue(form)
        return status, {**answer, "access_token": answer["access_token"] + "\r\nx-injected: 1"}


def test_an_access_token_no_header_may_carry_fails_the_deliveries_unsent(
        app, fcm_key, tmp_path):
    with FakeFcmWithBadTokens(private_key=fcm_key) as fake_fcm:
        config = {"FCM_CREDENTIALS_FILE": str(fake_fcm.write_credentials(tmp_path / "sa.json")),
                  "FCM_URL": fake_fcm.url, "FCM_CA_FILE": fake_fcm.ca_file,
                  "FCM_REQUEST_TIMEOUT": 5.0}
        _, deliveries = android(app, 3)

        send_due(app, config)

        assert fake_fcm.log == []
        assert {(outcome(app, d).state, outcome(app, d).last_reason) for d in deliveries} == {
            ("failed", "InvalidHeader")}


def test_the_access_token_is_not_fetched_again_within_its_lifetime(app, fake_fcm, fcm_config):
    for _ in range(3):
        android(app, 5)
        assert send_due(app, fcm_config)["sent"] == 5
    assert fake_fcm.tokens_issued == 1  # three workers one after another: shared


def test_the_token_endpoint_down_retries_and_invalidates_nothing(app, fake_fcm, fcm_config):
    fake_fcm.token_endpoint_down = True
    devices, deliveries = android(app, 10)

    send_due(app, fcm_config)

    assert {(outcome(app, d).state, outcome(app, d).last_reason) for d in deliveries} == {
        ("pending", "AccessTokenUnavailable")}
    assert fake_fcm.log == [] and fake_fcm.token_requests <= 2  # not once per push
    assert not any(invalidated(app, device) for device in devices)

    fake_fcm.token_endpoint_down = False
    _retry_now(app)
    assert send_due(app, fcm_config)["sent"] == 10


def _retry_now(app):
    from sqlalchemy import update

    from app.models.notification import Delivery
    with rows(app) as connection:
        connection.execute(update(Delivery.__table__).values(next_attempt_at=utcnow()))


def test_two_worker_processes_obtain_at_most_one_access_token_each(app, fake_fcm,
                                                                   fcm_config, service_env):
    android(app, 400)
    fake_fcm.latency = 0.002
    environ = {name: str(value) for name, value in fcm_config.items()}

    workers = [worker_process(service_env, environ, "--burst", PUSH_CHUNK_SIZE=50)
               for _ in range(2)]
    totals = [finished(process, timeout=120) for process in workers]

    assert sum(total.get("sent", 0) for total in totals) == 400
    assert fake_fcm.twice_accepted() == [] and len(fake_fcm.log) == 400
    assert fake_fcm.tokens_issued <= 2
    issued = fake_fcm.tokens_issued
    android(app, 10)
    again = [worker_process(service_env, environ, "--burst") for _ in range(2)]
    assert sum(finished(process, timeout=120).get("sent", 0) for process in again) == 10
    assert fake_fcm.tokens_issued == issued  # the shared token, not a new one


# -- a channel not configured --------------------------------------------------------------


def test_android_deliveries_fail_clearly_when_fcm_is_not_configured(app, fake, key_file):  # noqa: F811
    (device,), (delivery,) = android(app)
    send_due(app, {}, apns=apns_environ(fake, key_file))
    row = outcome(app, delivery)
    assert (row.state, row.last_reason) == ("failed", "ChannelNotConfigured")
    assert not invalidated(app, device)


# -- one notification, every channel --------------------------------------------------------


def test_two_iphones_and_an_android_phone_get_one_push_each(client, app, fake, key_file,  # noqa: F811
                                                            fake_fcm, fcm_config):
    caller = Caller(client, app)
    iphones = {register_token(client, caller.session_id, bundle_id=BUNDLE_ID)
               for _ in range(2)}
    pixel = fcm_token()
    registered = client.post("/api/devices", headers=bearer(caller.session_id), json={
        "data": {"type": "devices", "attributes": {"channel": "fcm", "token": pixel}}})
    assert registered.status_code == 201, registered.get_json()
    headers = bearer(api_key(app))
    document = {"data": {"type": "notifications", "attributes": {
        "alert": {"title": "Hi", "body": "Your order shipped"}, "data": {"order": "42"}},
        "relationships": {"users": {"data": [{"type": "users", "id": caller.user_id}]}}}}
    accepted = body(client.post("/api/notifications", json=document, headers=headers), 202)
    counts = accepted["data"]["attributes"]["counts"]
    assert {channel: shown["pending"] for channel, shown in counts["by_channel"].items()} == {
        "ios_push": 2, "fcm": 1}

    assert send_due(app, fcm_config, apns=apns_environ(fake, key_file))["sent"] == 3

    assert sorted(entry.token for entry in fake.log) == sorted(iphones)
    assert [sent.token for sent in fake_fcm.log] == [pixel]
    assert fake.twice_accepted() == [] and fake_fcm.twice_accepted() == []
    url = f"/api/notifications/{accepted['data']['id']}"
    shown = body(client.get(url, headers=headers), 200)["data"]["attributes"]
    assert shown["status"] == "done"
    assert {channel: each["sent"] for channel, each in shown["counts"]["by_channel"].items()
            } == {"ios_push": 2, "fcm": 1}
    deliveries = body(client.get(f"{url}/deliveries", headers=headers), 200)["data"]
    assert sorted(d["attributes"]["channel"] for d in deliveries) == ["fcm", "ios_push",
                                                                      "ios_push"]


def test_devices_recipients_may_mix_channels(client, app, fake, key_file, fake_fcm,  # noqa: F811
                                             fcm_config):
    caller = Caller(client, app)
    register_token(client, caller.session_id, bundle_id=BUNDLE_ID)
    registered = client.post("/api/devices", headers=bearer(caller.session_id), json={
        "data": {"type": "devices", "attributes": {"channel": "fcm", "token": fcm_token()}}})
    listed = client.get("/api/devices", headers=bearer(caller.session_id)).get_json()["data"]
    assert registered.status_code == 201 and len(listed) == 2
    document = {"data": {"type": "notifications", "attributes": {"alert": "Hello"},
                         "relationships": {"devices": {"data": [
                             {"type": "devices", "id": d["id"]} for d in listed]}}}}
    accepted = body(client.post("/api/notifications", json=document,
                                headers=bearer(api_key(app))), 202)
    assert set(accepted["data"]["attributes"]["counts"]["by_channel"]) == {"ios_push", "fcm"}
    assert send_due(app, fcm_config, apns=apns_environ(fake, key_file))["sent"] == 2
    assert len(fake.log) == len(fake_fcm.log) == 1
    assert fake_fcm.log[0].message["notification"] == {"body": "Hello"}


def test_a_refused_access_token_with_the_endpoint_down_is_retried_later(app, fake_fcm,
                                                                       fcm_config):
    android(app)
    send_due(app, fcm_config)
    fake_fcm.revoke_access_tokens()
    fake_fcm.token_endpoint_down = True
    devices, deliveries = android(app, 5)

    send_due(app, fcm_config)

    assert {(outcome(app, d).state, outcome(app, d).last_reason) for d in deliveries} == {
        ("pending", "AccessTokenUnavailable")}
    assert not any(invalidated(app, device) for device in devices)


def test_an_apns_key_error_pauses_apns_only(app, fake, key_file, fake_fcm,  # noqa: F811
                                            fcm_config):
    iphones, apns_deliveries = one_notification(app, 3)
    for device in iphones:
        fake.answer(device["token"], Answer(403, "InvalidProviderToken"))
    _, fcm_deliveries = android(app, 3)

    send_due(app, {**fcm_config, "PUSH_CHUNK_SIZE": 1, "PUSH_CONCURRENCY": 1},
             apns=apns_environ(fake, key_file))

    assert len(fake.log) == 1 and len(fake_fcm.log) == 3
    assert sorted(outcome(app, d).state for d in apns_deliveries) == [
        "failed", "pending", "pending"]
    assert {outcome(app, d).state for d in fcm_deliveries} == {"sent"}
