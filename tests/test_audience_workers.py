"""Audiences expanded by real workers: through the fake APNs, on the embedded queue and on
procrastinate, and resumed after a worker is SIGKILLed mid-expansion."""

import signal
import time

import pytest
from sqlalchemy import select

from app.models import Delivery, Notification
from app.models.types import utcnow
from app.push import expansion
from tests.factories import bearer
from tests.fake_apns import Answer
from tests.jsonapi_helpers import body
from tests.push_rows import make_devices
from tests.test_audiences import BROADCAST, SEND, post, subscribe
from tests.test_dispatch import (  # noqa: F401  (fixtures)
    _no_worker_outlives_its_test,
    apns_environ,
    count_by_state_now,
    fake,
    finished,
    rows,
    send_due,
    worker_process,
)
from tests.test_notifications_api import make_key

pytestmark = pytest.mark.committed  # the workers read the ledger on their own connections


def by_id(devices):
    return sorted(devices, key=lambda device: device["id"])


def deliveries_per_device(app):
    with rows(app) as connection:
        device_ids = connection.scalars(select(Delivery.device_id)).all()
    return sorted(device_ids), len(device_ids)


def expansion_state(app):
    with rows(app) as connection:
        return connection.execute(select(Notification.expanding,
                                         Notification.targeted)).one()


@pytest.mark.parametrize("queue", ["embedded", "procrastinate"])
def test_a_topic_reaches_each_subscribed_device_once(
        client, app, fake, key_file, queue, request, monkeypatch):  # noqa: F811
    if queue == "procrastinate" and request.config.getoption("--db") != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")
    monkeypatch.setitem(app.config, "PUSH_QUEUE", queue)  # accepting enqueues the expansion
    with rows(app) as connection:
        fans = make_devices(connection, 45)
        make_devices(connection, 5)  # not subscribed: not sent to
        subscribe(connection, fans, "team.42")
    headers = bearer(make_key(app, (SEND,))[0])
    sent = body(post(client, headers, {"topics": ["team.42"]}), 202)["data"]
    assert sent["attributes"]["status"] == "expanding"

    totals = send_due(app, apns_environ(fake, key_file), PUSH_QUEUE=queue, PUSH_CHUNK_SIZE=10)

    assert totals["sent"] == 45
    assert sorted(entry.token for entry in fake.log) == sorted(d["token"] for d in fans)
    assert fake.twice_accepted() == []
    shown = body(client.get(f"/api/notifications/{sent['id']}", headers=headers),
                 200)["data"]["attributes"]
    assert shown["status"] == "done"
    assert (shown["counts"]["targeted"], shown["counts"]["sent"]) == (45, 45)


def test_the_first_step_is_small_so_the_first_pushes_leave_early(client, app):
    """A broadcast's first step writes FIRST_STEP deliveries, not a whole chunk: a worker
    sends those while the rest of the audience is written."""
    with rows(app) as connection:
        make_devices(connection, 250)
    headers = bearer(make_key(app, (SEND, BROADCAST))[0])
    body(post(client, headers, {"all": True}), 202)
    steps = []
    with rows(app) as connection:
        while (done := expansion.step(connection, 1000, utcnow())) and not done.done:
            steps.append(len(done.delivery_ids))
        steps.append(len(done.delivery_ids))
    assert steps == [expansion.FIRST_STEP, 150]


@pytest.mark.slow
@pytest.mark.parametrize("queue", ["embedded", "procrastinate"])
def test_a_worker_killed_mid_expansion_is_resumed_and_each_device_gets_it_once(
        client, app, fake, key_file, service_env, queue, request, monkeypatch):  # noqa: F811
    if queue == "procrastinate" and request.config.getoption("--db") != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")
    monkeypatch.setitem(app.config, "PUSH_QUEUE", queue)  # accepting enqueues the expansion
    with rows(app) as connection:
        devices = by_id(make_devices(connection, 300))
    sent = body(post(client, bearer(make_key(app, (SEND, BROADCAST))[0]), {"all": True}),
                202)["data"]
    for device in devices[100:200]:  # the second chunk's first attempt never returns
        fake.answer(device["token"], Answer(hang=True), Answer(200))
    environ = apns_environ(fake, key_file, APNS_REQUEST_TIMEOUT=60)
    settings = {"PUSH_CHUNK_SIZE": 100, "PUSH_CONCURRENCY": 1, "PUSH_LEASE": 2,
                "PUSH_QUEUE": queue}

    process = worker_process(service_env, environ, **settings)
    if not fake.wait_for_tokens([device["token"] for device in devices[:200]], timeout=90):
        process.kill()
        raise AssertionError(f"{len(fake.log)} pushes arrived; the worker said:\n"
                             f"{process.communicate()[1][-3000:]}")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert tuple(expansion_state(app)) == (True, 200)  # two chunks of three written
    assert count_by_state_now(app) == {"sent": 100, "sending": 100}
    time.sleep(2.1)  # the dead worker's lease runs out (and, on procrastinate, its jobs stall)
    finished(worker_process(service_env, environ, "--burst", **settings))

    assert deliveries_per_device(app) == (sorted(d["id"] for d in devices), 300)
    assert tuple(expansion_state(app)) == (False, 300)
    assert fake.twice_accepted() == []
    accepted = sorted(entry.token for entry in fake.log if entry.status == 200)
    assert accepted == sorted(device["token"] for device in devices)
    assert count_by_state_now(app) == {"sent": 300}
    assert sent["attributes"]["status"] == "expanding"
