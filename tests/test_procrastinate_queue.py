"""The procrastinate queue (PUSH_QUEUE=procrastinate, PostgreSQL): deliveries travel in
chunked jobs written with the ledger rows; workers claim the rows through the ledger, so a
killed, retried or duplicated job sends nothing twice.

The worker runs in this process (``--burst``) or as ``flask push worker`` in a subprocess
where process behaviour matters (SIGKILL, SIGTERM), as in tests/test_dispatch.py.
"""

import signal
import time

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models.notification import Delivery
from app.push.procrastinate_queue import DELIVER, SCHEMA, enqueue
from app.resources import notifications
from tests import test_dispatch
from tests.fake_apns import Answer
from tests.push_rows import make_devices
from tests.test_dispatch import (  # noqa: F401 (fixtures)
    _no_worker_outlives_its_test,
    apns_environ,
    assert_each_sent_once,
    assert_resumed_once,
    finished,
    kill_mid_fan_out_and_resume,
    one_notification,
    rows,
    send_due,
    state_of,
    worker_process,
)

fake = test_dispatch.fake  # the fake APNs fixture

pytestmark = pytest.mark.committed  # the workers read the ledger on their own connections

PROCRASTINATE = {"PUSH_QUEUE": "procrastinate"}


@pytest.fixture(autouse=True)
def _postgresql_only(request):
    if request.config.getoption("--db") != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")


@pytest.fixture(autouse=True)
def _no_jobs_left(_postgresql_only, app):
    """Each test starts and ends with procrastinate's tables empty (the fixtures that
    empty ours know nothing of its schema)."""
    _clear_jobs(app)
    yield
    _clear_jobs(app)


def _clear_jobs(app):
    with rows(app) as connection:
        connection.execute(text(
            f"TRUNCATE {SCHEMA}.procrastinate_periodic_defers, {SCHEMA}.procrastinate_events,"
            f" {SCHEMA}.procrastinate_jobs, {SCHEMA}.procrastinate_workers"))


@pytest.fixture
def procrastinate_app(app, monkeypatch):
    """The app with PUSH_QUEUE=procrastinate (accepting enqueues jobs)."""
    monkeypatch.setitem(app.config, "PUSH_QUEUE", "procrastinate")
    return app


def delivery_jobs(app, status="todo"):
    """The ids each delivery job names, in job order."""
    with rows(app) as connection:
        return [list(ids) for ids in connection.scalars(text(
            f"SELECT args -> 'ids' FROM {SCHEMA}.procrastinate_jobs"
            " WHERE task_name = :task AND status = :status ORDER BY id"),
            {"task": DELIVER, "status": status})]


def accept_for(app, devices, commit=True):
    """``notifications.accept`` from an operator to ``devices``: the delivery ids."""
    with app.app_context():
        notification, _ = notifications.accept(None, {"alert": "Hello"},
                                               devices=[device["id"] for device in devices])
        ids = db.session.scalars(select(Delivery.id).where(
            Delivery.notification_id == notification.id)).all()
        db.session.commit() if commit else db.session.rollback()
        db.session.remove()
    return ids


def new_devices(app, count):
    with rows(app) as connection:
        return make_devices(connection, count)


def test_a_notification_travels_in_chunked_jobs(
        procrastinate_app, fake, key_file, monkeypatch):
    app = procrastinate_app
    devices = new_devices(app, 250)
    monkeypatch.setitem(app.config, "PUSH_CHUNK_SIZE", 100)
    ids = accept_for(app, devices)

    jobs = delivery_jobs(app)
    assert [len(job) for job in jobs] == [100, 100, 50]
    assert sorted(id_ for job in jobs for id_ in job) == sorted(ids)
    totals = send_due(app, apns_environ(fake, key_file), **PROCRASTINATE)

    assert totals["sent"] == 250
    assert sorted(entry.token for entry in fake.log) == sorted(d["token"] for d in devices)
    assert fake.twice_accepted() == []
    assert delivery_jobs(app) == []
    assert send_due(app, apns_environ(fake, key_file), **PROCRASTINATE)["sent"] == 0


def test_a_rolled_back_accept_leaves_no_job(procrastinate_app):
    devices = new_devices(procrastinate_app, 3)

    assert len(accept_for(procrastinate_app, devices, commit=False)) == 3

    assert delivery_jobs(procrastinate_app) == []
    with rows(procrastinate_app) as connection:
        assert connection.scalar(select(Delivery.id)) is None


def test_a_retried_delivery_is_sent_by_a_later_job(
        procrastinate_app, fake, key_file):
    app = procrastinate_app
    (device,) = new_devices(app, 1)
    (delivery_id,) = accept_for(app, [device])
    fake.answer(device["token"], Answer(503, "ServiceUnavailable"), Answer(200))
    environ = apns_environ(fake, key_file)

    send_due(app, environ, PUSH_RETRY_BASE=2, **PROCRASTINATE)
    (retry,) = state_of(app).values()
    assert (retry.state, retry.attempts) == ("pending", 1)
    assert delivery_jobs(app) == [[delivery_id]]  # due when the backoff runs out
    assert send_due(app, environ, **PROCRASTINATE)["sent"] == 0  # not due yet
    time.sleep(2.1)
    assert send_due(app, environ, **PROCRASTINATE)["sent"] == 1

    assert [entry.status for entry in fake.log] == [503, 200]
    assert len({entry.apns_id for entry in fake.log}) == 1
    (row,) = state_of(app).values()
    assert (row.state, row.attempts) == ("sent", 2)


def test_a_duplicated_job_sends_nothing_twice(app, fake, key_file):
    _, deliveries = one_notification(app, 20)
    with rows(app) as connection:
        ids = [row.id for row in connection.execute(select(Delivery.id))]
        enqueue(connection, dict.fromkeys(ids), 20)
        enqueue(connection, dict.fromkeys(ids), 7)

    assert send_due(app, apns_environ(fake, key_file), **PROCRASTINATE)["sent"] == 20
    assert_each_sent_once(app, fake, deliveries)


def enqueued(app, deliveries, chunk_size):
    with rows(app) as connection:
        apns_ids = [d["apns_id"] for d in deliveries]
        by_apns_id = dict(connection.execute(
            select(Delivery.apns_id, Delivery.id).where(Delivery.apns_id.in_(apns_ids))).all())
        return enqueue(connection, dict.fromkeys(by_apns_id[a] for a in apns_ids), chunk_size)


def test_a_worker_killed_mid_fan_out_is_resumed_and_sends_each_delivery_once(
        app, fake, key_file, service_env):
    devices, deliveries = one_notification(app, 300)
    assert enqueued(app, deliveries, 100) == 3  # in the devices' order

    # the restarted worker runs the dead one's job again (its heartbeat stopped)
    kill_mid_fan_out_and_resume(app, fake, key_file, service_env, devices, **PROCRASTINATE)

    assert_resumed_once(app, fake, devices, deliveries)
    assert delivery_jobs(app) == []


def test_sigterm_hands_back_what_is_in_flight_and_exits_0(
        app, fake, key_file, service_env):
    _, deliveries = one_notification(app, 50)
    enqueued(app, deliveries, 1000)
    fake.hold()
    process = worker_process(service_env, apns_environ(fake, key_file),
                             PUSH_SHUTDOWN_GRACE=0.5, **PROCRASTINATE)
    assert fake.wait_for_requests(50, timeout=60)
    process.send_signal(signal.SIGTERM)

    finished(process, timeout=30)
    states = state_of(app)
    assert {(row.state, row.attempts, row.lease_until) for row in states.values()} == \
        {("pending", 0, None)}
    (job,) = delivery_jobs(app)  # handed back and enqueued again
    assert len(job) == 50


def test_deliveries_no_job_names_are_found_by_the_sweep(
        app, fake, key_file):
    _, deliveries = one_notification(app, 5)  # written with no job (the embedded queue)

    totals = send_due(app, apns_environ(fake, key_file), PUSH_LEASE=0.5, **PROCRASTINATE)
    assert totals["sent"] == 0  # due for less than a lease: a job may be on its way
    time.sleep(0.6)
    assert send_due(app, apns_environ(fake, key_file), PUSH_LEASE=0.5,
                    **PROCRASTINATE)["sent"] == 5
    assert_each_sent_once(app, fake, deliveries)
