"""Sending: the ledger, the dispatcher and ``flask push worker`` against the fake APNs.

Rows are inserted directly (tests/push_rows.py); the worker runs in this process (its
``--burst`` mode) or as ``flask push worker`` in a subprocess where process behaviour
matters (SIGKILL, SIGTERM, the fake changing its mind mid-batch).
"""

import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.config import Config
from app.extensions import db
from app.models.notification import ProviderToken
from app.models.types import utcnow
from app.push.provider_token import ProviderTokenSigner
from app.push.worker import run_worker
from app.security.crypto import seal
from tests.fake_apns import Answer, FakeApns, FakeClock
from tests.live_server import BIN, ROOT
from tests.push_rows import (
    BUNDLE_ID,
    count_by_state,
    deliveries_by_apns_id,
    device_row,
    make_deliveries,
    make_devices,
    make_notification,
)

pytestmark = pytest.mark.committed


@pytest.fixture
def fake(public_key):
    with FakeApns(public_key=public_key, bundle_id=BUNDLE_ID) as server:
        yield server


def apns_environ(fake, key_file, sandbox=None, **overrides):
    return {"APNS_KEY": str(key_file), "APNS_KEY_ID": fake.key_id,
            "APNS_TEAM_ID": fake.team_id, "APNS_BUNDLE_ID": BUNDLE_ID,
            "APNS_PRODUCTION_URL": fake.url, "APNS_SANDBOX_URL": (sandbox or fake).url,
            "APNS_CA_FILE": fake.ca_file, "APNS_REQUEST_TIMEOUT": "5",
            **{name: str(value) for name, value in overrides.items()}}


def apns_config(environ):
    """The APNS_* settings ``Config`` reads from a process environment holding ``environ``
    (none of them when it holds none)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        config = Config()
    return {name: value for name, value in vars(config).items() if name.startswith("APNS_")}


@contextlib.contextmanager
def rows(app):
    with app.app_context(), db.engine.begin() as connection:
        yield connection


def send_due(app, environ, **config):
    """``flask push worker --burst`` in this process: send everything due, then return."""
    with app.app_context():
        return asyncio.run(run_worker({**app.config, **apns_config(environ), **config},
                                      db.engine, burst=True))


def one_notification(app, count=1, push_type="alert", devices=None, expires_at=None,
                     content=None, **device_attributes):
    """A notification to ``count`` new devices: (devices, deliveries)."""
    with rows(app) as connection:
        devices = devices or make_devices(connection, count, **device_attributes)
        notification = make_notification(connection, push_type, expires_at, **(content or {}))
        return devices, make_deliveries(connection, notification, devices)


def state_of(app):
    with rows(app) as connection:
        return deliveries_by_apns_id(connection)


def device_now(app, device):
    with rows(app) as connection:
        return device_row(connection, device["id"])


def test_a_notification_goes_to_each_device_once(app, fake, key_file):
    devices, deliveries = one_notification(app, 3)

    totals = send_due(app, apns_environ(fake, key_file))

    assert totals["sent"] == 3
    assert sorted(entry.token for entry in fake.log) == sorted(d["token"] for d in devices)
    assert {entry.apns_id for entry in fake.log} == {str(d["apns_id"]) for d in deliveries}
    assert {(entry.topic, entry.push_type) for entry in fake.log} == {(BUNDLE_ID, "alert")}
    for delivery in state_of(app).values():
        assert (delivery.state, delivery.attempts, delivery.last_status) == ("sent", 1, 200)
        assert delivery.sent_at is not None and delivery.lease_until is None
    assert send_due(app, apns_environ(fake, key_file))["sent"] == 0
    assert len(fake.log) == 3


def now_ms():
    """A 410's timestamp for "just now": after the devices' registration."""
    return int(time.time() * 1000)


def before_registration_ms(device):
    return int((device["last_seen_at"] - timedelta(hours=1)).timestamp() * 1000)

# status, reason, delivery state, device invalidated
TABLE = [
    (410, "Unregistered", "invalidated", True),
    (410, "ExpiredToken", "invalidated", True),
    (400, "BadDeviceToken", "invalidated", True),
    (400, "DeviceTokenNotForTopic", "invalidated", True),
    (429, "TooManyRequests", "pending", False),
    (500, "InternalServerError", "pending", False),
    (503, "ServiceUnavailable", "pending", False),
    (503, "Shutdown", "pending", False),
    (403, "InvalidProviderToken", "failed", False),
    (403, "BadCertificate", "failed", False),
    (403, "BadCertificateEnvironment", "failed", False),
    (403, "Forbidden", "failed", False),
    (403, "UnrelatedKeyIdInToken", "failed", False),
    (403, "BadEnvironmentKeyIdInToken", "failed", False),
    (400, "BadTopic", "failed", False),
    (400, "TopicDisallowed", "failed", False),
    (400, "MissingTopic", "failed", False),
    (400, "BadPriority", "failed", False),
    (400, "InvalidPushType", "failed", False),
    (413, "PayloadTooLarge", "failed", False),
]


@pytest.mark.parametrize(("status", "reason", "state", "invalidated"), TABLE,
                         ids=[f"{status}-{reason}" for status, reason, _, _ in TABLE])
def test_each_answer_leads_to_its_action(app, fake, key_file, status, reason, state,
                                         invalidated):
    (device,), (delivery,) = one_notification(app)
    fake.answer(device["token"], Answer(status, reason, timestamp=now_ms() if status == 410
                                        else None))

    send_due(app, apns_environ(fake, key_file))

    row = state_of(app)[str(delivery["apns_id"])]
    assert (row.state, row.last_status, row.last_reason, row.attempts) == \
        (state, status, reason, 1)
    after = device_now(app, device)
    assert after.is_invalidated is invalidated
    assert after.token == device["token"]
    if invalidated:
        assert after.invalidated_reason == reason and after.invalidated_at is not None
    if state == "pending":  # later, with backoff, the same apns-id
        assert row.next_attempt_at > utcnow() and row.lease_until is None


def test_a_410_older_than_the_last_registration_keeps_the_token(app, fake, key_file):
    (device,), (delivery,) = one_notification(app)
    fake.answer(device["token"], Answer(410, "Unregistered",
                                        timestamp=before_registration_ms(device)))

    send_due(app, apns_environ(fake, key_file))

    row = state_of(app)[str(delivery["apns_id"])]
    assert (row.state, row.last_reason) == ("failed", "Unregistered")
    assert device_now(app, device).is_invalidated is False


def test_the_delete_policy_removes_an_invalidated_device(app, fake, key_file):
    (dead, alive), deliveries = one_notification(app, 2)
    fake.answer(dead["token"], Answer(400, "BadDeviceToken"))

    send_due(app, apns_environ(fake, key_file), PUSH_INVALIDATION_POLICY="delete")

    assert device_now(app, dead) is None
    assert device_now(app, alive) is not None
    states = state_of(app)
    assert [states[str(d["apns_id"])].state for d in deliveries] == ["invalidated", "sent"]


def test_a_retry_is_sent_again_with_the_same_apns_id(app, fake, key_file):
    (device,), (delivery,) = one_notification(app)
    fake.answer(device["token"], Answer(503, "ServiceUnavailable"), Answer(200))
    environ = apns_environ(fake, key_file)

    send_due(app, environ, PUSH_RETRY_BASE=0.01)
    time.sleep(0.05)  # the backoff (at most 0.01 s) runs out
    send_due(app, environ, PUSH_RETRY_BASE=0.01)

    assert [entry.apns_id for entry in fake.log] == [str(delivery["apns_id"])] * 2
    row = state_of(app)[str(delivery["apns_id"])]
    assert (row.state, row.attempts) == ("sent", 2)


def test_a_retry_past_the_notification_expiry_expires(app, fake, key_file):
    (device,), (delivery,) = one_notification(
        app, push_type="voip", is_voip=True, expires_at=utcnow() + timedelta(seconds=2))
    fake.answer(device["token"], Answer(503, "ServiceUnavailable"))

    send_due(app, apns_environ(fake, key_file), PUSH_RETRY_BASE=60)

    assert state_of(app)[str(delivery["apns_id"])].state == "expired"


def test_sandbox_devices_go_to_the_sandbox_host(app, fake, key_file, public_key):
    with FakeApns(public_key=public_key, bundle_id=BUNDLE_ID, ca=fake.ca) as sandbox:
        with rows(app) as connection:
            production = make_devices(connection, 2)
            development = make_devices(connection, 3, environment="sandbox")
        one_notification(app, devices=production + development)

        send_due(app, apns_environ(fake, key_file, sandbox=sandbox))

        assert sorted(e.token for e in sandbox.log) == sorted(d["token"] for d in development)
    assert sorted(e.token for e in fake.log) == sorted(d["token"] for d in production)


def test_voip_devices_get_voip_pushes_on_the_voip_topic(app, fake, key_file):
    one_notification(app, 2, is_voip=True)

    assert send_due(app, apns_environ(fake, key_file))["sent"] == 2
    assert {(e.topic, e.push_type) for e in fake.log} == {(BUNDLE_ID + ".voip", "voip")}


def test_a_device_without_bundle_id_takes_apns_topic(app, fake, key_file):
    one_notification(app, 1, bundle_id=None)
    environ = apns_environ(fake, key_file, APNS_TOPIC=BUNDLE_ID)
    del environ["APNS_BUNDLE_ID"]

    assert send_due(app, environ)["sent"] == 1
    assert fake.log[0].topic == BUNDLE_ID


@pytest.mark.parametrize("poison", ["\r\nx-injected: 1", "\n", "\r", " ", ".app/evil"])
def test_a_poisoned_stored_bundle_id_fails_only_its_own_delivery(app, fake, key_file, poison):
    with rows(app) as connection:  # an old row, stored before bundle ids were checked
        bad = make_devices(connection, 1, bundle_id=BUNDLE_ID + poison)
        good = make_devices(connection, 5)
    _, deliveries = one_notification(app, devices=[*bad, *good])

    totals = send_due(app, apns_environ(fake, key_file))

    assert totals["sent"] == 5
    assert sorted(entry.token for entry in fake.log) == sorted(d["token"] for d in good)
    assert [entry.status for entry in fake.log] == [200] * 5  # each once: nothing dropped
    states = state_of(app)
    failed = states[str(deliveries[0]["apns_id"])]
    assert (failed.state, failed.last_reason) == ("failed", "InvalidBundleId")
    assert not device_now(app, bad[0]).is_invalidated
    assert [(states[str(d["apns_id"])].state, states[str(d["apns_id"])].attempts)
            for d in deliveries[1:]] == [("sent", 1)] * 5


def test_live_activity_pushes_go_to_the_live_activity_token(app, fake, key_file):
    start_token, dead_token = "cd" * 32, "ef" * 32
    with app.app_context():
        sealed = {token: seal(token) for token in (start_token, dead_token)}
    with rows(app) as connection:
        live, dead = (make_devices(connection, 1, live_activity_token=sealed[token])[0]
                      for token in (start_token, dead_token))
    one_notification(app, push_type="liveactivity", devices=[live, dead],
                     content={"event": "start", "content_state": {"score": 1},
                              "timestamp": 1_900_000_000, "attributes_type": "Match",
                              "attributes": {}})
    fake.answer(dead_token, Answer(410, "Unregistered", timestamp=now_ms()))

    assert send_due(app, apns_environ(fake, key_file))["sent"] == 1

    assert sorted((e.token, e.topic, e.push_type) for e in fake.log) == [
        (start_token, BUNDLE_ID + ".push-type.liveactivity", "liveactivity"),
        (dead_token, BUNDLE_ID + ".push-type.liveactivity", "liveactivity")]
    after = device_now(app, dead)
    assert after.live_activity_token is None  # the Live Activity token is forgotten...
    assert not after.is_invalidated and after.token == dead["token"]  # ...not the device's


def test_a_live_activity_push_without_its_token_fails_unsent(app, fake, key_file):
    (_device,), (delivery,) = one_notification(app, push_type="liveactivity")

    send_due(app, apns_environ(fake, key_file))

    assert fake.log == []
    row = state_of(app)[str(delivery["apns_id"])]
    assert (row.state, row.last_reason) == ("failed", "NoLiveActivityToken")


def test_a_push_to_start_token_stored_unchecked_fails_its_delivery_unsent(app, fake, key_file):
    """Rows stored before push-to-start tokens were checked (upper case, not hex)."""
    with app.app_context():
        sealed = seal("NOT-HEX-" + "AB" * 32)
    with rows(app) as connection:
        device = make_devices(connection, 1, live_activity_token=sealed)[0]
    (_device,), (delivery,) = one_notification(
        app, push_type="liveactivity", devices=[device],
        content={"event": "start", "content_state": {"score": 1}, "timestamp": 1_900_000_000,
                 "attributes_type": "Match", "attributes": {}})

    send_due(app, apns_environ(fake, key_file))

    assert fake.log == []
    row = state_of(app)[str(delivery["apns_id"])]
    assert (row.state, row.last_reason) == ("failed", "InvalidLiveActivityToken")


def test_the_provider_token_is_reminted_once_after_expired_provider_token(
        app, public_key, key_file):
    clock = FakeClock()
    with FakeApns(public_key=public_key, bundle_id=BUNDLE_ID, clock=clock) as fake:
        environ = apns_environ(fake, key_file)
        one_notification(app)
        signer = ProviderTokenSigner.from_key(str(key_file), fake.key_id, fake.team_id)
        issued = int(time.time()) - 25 * 60  # minted by another worker 25 minutes ago
        with rows(app) as connection:
            connection.execute(ProviderToken.__table__.insert().values(
                key=f"{fake.team_id}:{fake.key_id}", value=signer.sign(issued),
                issued_at=issued))
        assert send_due(app, environ)["sent"] == 1
        clock.advance(40 * 60)  # APNs now finds that token 65 minutes old
        (_,), (delivery,) = one_notification(app)

        assert send_due(app, environ)["sent"] == 1

        second = [e.status for e in fake.log if e.apns_id == str(delivery["apns_id"])]
        assert second == [403, 200]
        assert fake.provider_tokens_seen == 2
        with rows(app) as connection:
            stored = connection.execute(select(ProviderToken.__table__)).one()
        assert stored.issued_at > issued + 20 * 60


def test_config_errors_fail_pause_sending_and_touch_no_token(app, fake, key_file, caplog):
    devices, deliveries = one_notification(app, 3)
    for device in devices:
        fake.answer(device["token"], Answer(403, "InvalidProviderToken"))

    with caplog.at_level(logging.ERROR, logger="app.push.dispatcher"):
        send_due(app, apns_environ(fake, key_file), PUSH_CHUNK_SIZE=1, PUSH_CONCURRENCY=1)

    assert len(fake.log) == 1  # then sending paused
    states = state_of(app)
    assert sorted(states[str(d["apns_id"])].state for d in deliveries) == \
        ["failed", "pending", "pending"]
    assert all(not device_now(app, device).is_invalidated for device in devices)
    assert any("InvalidProviderToken" in r.getMessage() and "pauses" in r.getMessage()
               for r in caplog.records)
    assert not any(device["token"] in caplog.text for device in devices)


def test_a_batch_of_mostly_bad_device_tokens_is_quarantined(app, fake, key_file, caplog):
    devices, deliveries = one_notification(app, 30)
    for device in devices[:20]:
        fake.answer(device["token"], Answer(400, "BadDeviceToken"))

    with caplog.at_level(logging.ERROR, logger="app.push.dispatcher"):
        # one lane: two lanes woken together may each claim part of the 30 (SKIP LOCKED)
        totals = send_due(app, apns_environ(fake, key_file), PUSH_CONCURRENCY=1)

    assert (totals["sent"], totals["failed"]) == (10, 20)
    states = state_of(app)
    assert {states[str(d["apns_id"])].last_reason for d in deliveries[:20]} == {"Quarantined"}
    assert not any(device_now(app, device).is_invalidated for device in devices)
    assert "BadDeviceToken to 20 of 30" in caplog.text


# -- the worker as a process -------------------------------------------------------------


_started = []


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    """A worker left running by a failed test would claim the next tests' deliveries."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def worker_process(service_env, environ, *args, **settings):
    env = {**service_env, **environ, "FLASK_APP": "wsgi.py",
           **{name: str(value) for name, value in settings.items()}}
    process = subprocess.Popen([str(BIN / "flask"), "push", "worker", *args], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    _started.append(process)
    return process


def finished(process, timeout=60):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr
    return json.loads(stdout.splitlines()[-1]) if stdout.strip() else {}


def assert_each_sent_once(app, fake, deliveries):
    states = state_of(app)
    assert {states[str(d["apns_id"])].state for d in deliveries} == {"sent"}
    assert fake.twice_accepted() == []
    accepted = [e.apns_id for e in fake.log if e.status == 200]
    assert sorted(accepted) == sorted(str(d["apns_id"]) for d in deliveries)


def test_the_stream_limit_lowered_to_one_mid_batch_and_raised(app, fake, key_file,
                                                              service_env):
    _, deliveries = one_notification(app, 400)
    fake.latency = 0.005
    process = worker_process(service_env, apns_environ(fake, key_file), "--burst",
                             PUSH_CHUNK_SIZE=100)
    assert fake.wait_for_requests(50)
    fake.set_max_concurrent_streams(1)
    assert fake.wait_for_requests(150)
    fake.set_max_concurrent_streams(1000)

    assert finished(process)["sent"] == 400
    assert_each_sent_once(app, fake, deliveries)


def test_goaway_mid_batch_loses_and_doubles_nothing(app, fake, key_file, service_env):
    _, deliveries = one_notification(app, 400)
    fake.latency = 0.005
    process = worker_process(service_env, apns_environ(fake, key_file), "--burst",
                             PUSH_CHUNK_SIZE=100, PUSH_RETRY_BASE=0.01)
    assert fake.wait_for_requests(150)
    fake.goaway()
    finished(process)
    # Retries whose backoff had not run out when the burst ended
    while count_pending(app):
        time.sleep(0.05)
        finished(worker_process(service_env, apns_environ(fake, key_file), "--burst",
                                PUSH_RETRY_BASE=0.01))

    assert_each_sent_once(app, fake, deliveries)


def count_pending(app):
    with rows(app) as connection:
        return count_by_state(connection).get("pending", 0)


def test_two_workers_share_the_work_and_one_provider_token(app, fake, key_file,
                                                            service_env):
    _, deliveries = one_notification(app, 600)
    fake.latency = 0.002
    environ = apns_environ(fake, key_file)

    workers = [worker_process(service_env, environ, "--burst", PUSH_CHUNK_SIZE=50)
               for _ in range(2)]
    totals = [finished(process) for process in workers]

    assert sum(total.get("sent", 0) for total in totals) == 600  # a late starter may find none
    assert_each_sent_once(app, fake, deliveries)
    assert len(fake.log) == 600
    assert fake.provider_tokens_seen == 1


def test_a_worker_killed_mid_fan_out_is_resumed_and_sends_each_delivery_once(
        app, fake, key_file, service_env):
    devices, deliveries = one_notification(app, 300)
    kill_mid_fan_out_and_resume(app, fake, key_file, service_env, devices)
    assert_resumed_once(app, fake, devices, deliveries)


def kill_mid_fan_out_and_resume(app, fake, key_file, service_env, devices, **settings):
    """Chunks of 100 to 300 devices: the worker SIGKILLed while the second chunk's answers
    hang, then a worker started again (``--burst``) once the dead one's lease ran out."""
    for device in devices[100:200]:  # the second chunk's first attempt never returns
        fake.answer(device["token"], Answer(hang=True), Answer(200))
    environ = apns_environ(fake, key_file, APNS_REQUEST_TIMEOUT=60)
    settings = {"PUSH_CHUNK_SIZE": 100, "PUSH_CONCURRENCY": 1, "PUSH_LEASE": 2, **settings}

    process = worker_process(service_env, environ, **settings)
    # a wait, not a timing: the worker may start slowly on a loaded machine
    if not fake.wait_for_tokens([device["token"] for device in devices[:200]], timeout=90):
        process.kill()
        raise AssertionError(f"{len(fake.log)} pushes arrived; the worker said:\n"
                             f"{process.communicate()[1][-3000:]}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert count_by_state_now(app) == {"sent": 100, "sending": 100, "pending": 100}
    time.sleep(2.1)  # the dead worker's lease runs out
    finished(worker_process(service_env, environ, "--burst", **settings))


def assert_resumed_once(app, fake, devices, deliveries):
    """Three chunks of 100, the worker killed while the second's answers hung: each
    delivery sent once, and only the second chunk's tried twice."""
    assert_each_sent_once(app, fake, deliveries)
    per_token = {}
    for entry in fake.log:
        per_token[entry.token] = per_token.get(entry.token, 0) + 1
    assert [per_token[d["token"]] for d in devices] == [1] * 100 + [2] * 100 + [1] * 100
    states = state_of(app)
    assert [states[str(d["apns_id"])].attempts for d in deliveries] == \
        [1] * 100 + [2] * 100 + [1] * 100


def count_by_state_now(app):
    with rows(app) as connection:
        return count_by_state(connection)


def test_sigterm_hands_back_what_is_in_flight_and_exits_0(app, fake, key_file, service_env):
    _, _deliveries = one_notification(app, 50)
    fake.hold()
    process = worker_process(service_env, apns_environ(fake, key_file),
                             PUSH_SHUTDOWN_GRACE=0.5)
    assert fake.wait_for_requests(50)
    process.send_signal(signal.SIGTERM)

    finished(process, timeout=20)
    states = state_of(app)
    assert {(row.state, row.attempts, row.lease_until) for row in states.values()} == \
        {("pending", 0, None)}


def test_without_apns_settings_the_worker_says_so_and_exits(service_env):
    process = worker_process(service_env, {"PUSH_STANDIN": "off"})
    _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "push is not configured" in stderr
