"""Scheduled notifications through the workers (issue 22): an audience expanded by two
workers at once keeps its throttle; send_at is kept to the second against the fake APNs."""

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Delivery
from app.models.types import utcnow
from app.push import expansion
from app.push.moments import MINUTE
from tests.factories import bearer
from tests.jsonapi_helpers import body
from tests.push_rows import make_devices
from tests.test_audiences import BROADCAST, SEND, post
from tests.test_dispatch import (  # noqa: F401  (fixtures)
    _no_worker_outlives_its_test,
    apns_environ,
    fake,
    rows,
    worker_process,
)
from tests.test_notifications_api import make_key
from tests.test_schedule import iso, no_minute_over

pytestmark = pytest.mark.committed  # the workers read the ledger on their own connections

ZONES = ("Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "Europe/Dublin", None)


def expand_with_workers(app, chunk_size, workers):
    """Threads, each its own connection, stepping through every expansion at once."""
    with app.app_context():
        engine = db.engine
    start, failures = threading.Barrier(workers), []

    def work():
        start.wait()
        try:
            while True:
                with engine.begin() as connection:
                    step = expansion.step(connection, chunk_size, utcnow(),
                                          default_zone="Europe/Dublin")
                if step is None:
                    return
        except Exception as exc:  # reported by the test, not lost in its thread
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures


def scheduled(app):
    with rows(app) as connection:
        return connection.scalars(select(Delivery.scheduled_at)).all()


@pytest.mark.parametrize("local_time", [None, "08:00"])
def test_an_audience_expanded_by_two_workers_keeps_its_throttle(client, app, local_time,
                                                                request):
    # SQLite's writers wait on one lock (their race is PostgreSQL's to decide): one worker
    workers = 2 if request.config.getoption("--db") == "postgresql" else 1
    with rows(app) as connection:
        for index, zone in enumerate(ZONES):
            make_devices(connection, 130 + index, time_zone=zone)
    headers = bearer(make_key(app, (SEND, BROADCAST))[0])
    start = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    attributes = {"throttle": {"per_minute": 60}, "send_at": iso(start)}
    if local_time:
        attributes["local_time"] = local_time
    sent = body(post(client, headers, {"all": True}, **attributes), 202)["data"]
    assert sent["attributes"]["status"] == "expanding"

    expand_with_workers(app, chunk_size=37, workers=workers)

    moments = scheduled(app)
    assert len(moments) == 660
    assert no_minute_over(moments, 60)
    if local_time is None:  # one start: minute after minute, full
        assert sorted(Counter((moment - start) // MINUTE for moment in moments).values()) == \
            [60] * 11
    shown = body(client.get(f"/api/notifications/{sent['id']}", headers=headers), 200)
    assert shown["data"]["attributes"]["status"] == "scheduled"
    assert shown["data"]["attributes"]["counts"]["targeted"] == 660


def test_send_at_seconds_ahead_is_kept_to_the_second(
        client, app, fake, key_file, service_env):  # noqa: F811
    with rows(app) as connection:
        devices = make_devices(connection, 20)
    worker = worker_process(service_env, apns_environ(fake, key_file), PUSH_POLL_INTERVAL=0.1)
    time.sleep(2)  # the worker is up and idle
    assert worker.poll() is None, worker.communicate()[1][-3000:]
    send_at = int(time.time()) + 4  # whole seconds, as UNIX time says them
    headers = bearer(make_key(app, (SEND,))[0])
    doc = {"data": {"type": "notifications", "attributes": {"alert": "Kick-off",
                                                            "send_at": send_at},
                    "relationships": {"devices": {"data": [
                        {"type": "devices", "id": str(device["id"])} for device in devices]}}}}
    sent = body(client.post("/api/notifications", json=doc, headers=headers), 202)["data"]
    assert sent["attributes"]["status"] == "scheduled"

    while time.time() < send_at - 0.05:
        assert fake.log == [], "sent before its moment"
        time.sleep(0.02)
    arrived = fake.wait_for_tokens([device["token"] for device in devices], timeout=5)
    done_at = time.time()
    assert arrived, f"{len(fake.log)} of 20 arrived"
    assert done_at - send_at < 1.0, f"the last arrived {done_at - send_at:.2f} s late"
    worker.kill()
    assert datetime.fromtimestamp(send_at, UTC) == \
        datetime.fromisoformat(sent["attributes"]["send_at"])
