"""Audience benchmark: a broadcast (``--audience all``) or a topic (``--audience topic``) to
N devices, APNs and FCM mixed, POSTed over JSON:API and expanded by ``flask push worker``
through the fake APNs and the fake FCM; ``--audience devices``: an explicit notification to
the first 1,000 of them (its deliveries written by the POST), for comparison. ``--queue``:
the embedded queue or procrastinate.

Prints the POST's p50/p99 (``--posts`` of them before any worker runs; the audience's
size must not show in it), then, with a worker running, the time from one POST's 202 to
its first delivery answered, pushes/s end to end, whether every device got exactly
one delivery, all sent, the worker's peak RSS, and the ledger's bytes per delivery
(``deliveries`` with its indexes) and PostgreSQL's WAL bytes per delivery.

    .venv/bin/python bench/push_audience.py [--audience all|topic|devices]
        [--devices 100000] [--queue embedded|procrastinate] [--fcm-share 0.3] [--posts 30]
        [--database-url URL] [--chunk-size 1000] [--concurrency 2] [--connections 2]
"""

import argparse
import json
import os
import resource
import select
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app.config import normalise_database_url  # noqa: E402
from app.models import Device, DeviceTopic, WorkerHeartbeat  # noqa: E402
from app.models.notification import Delivery, Notification, ProviderToken  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from bench.push_fanout import (  # noqa: E402
    DEFAULT_DATABASE,
    apns_environment,
    endpoint,
    ensure_database,
    fcm_environment,
    flask,
    percentile,
)
from bench.push_transport import start_fake  # noqa: E402

TOPIC = "bench.everyone"
INSERT_BATCH = 20_000
SETTLE = 2.0  # seconds from the worker's first heartbeat to its LISTEN (either queue)


def fill(engine, devices: int, fcm_share: float, bundle_id: str, topic: bool):
    """Empty the push tables, then ``devices`` devices (a share of them FCM), each
    subscribed to ``TOPIC`` when ``topic``."""
    now = utcnow()
    with engine.begin() as connection:
        for table in (Delivery, Notification, ProviderToken, DeviceTopic, Device):
            connection.execute(table.__table__.delete())
    android_every = round(1 / fcm_share) if fcm_share else 0
    for start in range(0, devices, INSERT_BATCH):
        rows = [{"id": uuid.uuid4(), **endpoint(
            "fcm" if android_every and index % android_every == 0 else "apns",
            {"bundle_id": bundle_id}),
            "is_voip": False, "is_invalidated": False, "app_version": "3.1.0",
            "last_seen_at": now - timedelta(days=1), "created_at": now, "updated_at": now}
            for index in range(start, min(devices, start + INSERT_BATCH))]
        with engine.begin() as connection:
            connection.execute(sa.insert(Device.__table__), rows)
            if topic:
                connection.execute(sa.insert(DeviceTopic.__table__), [
                    {"device_id": row["id"], "topic": TOPIC, "created_at": now}
                    for row in rows])
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE devices"))
        if topic:
            connection.execute(sa.text("ANALYZE device_topics"))


def api_key(env) -> str:
    output = subprocess.run(
        [sys.executable, "-m", "flask", "keys", "create", "--name", f"bench-{uuid.uuid4()}",
         "--scope", "notifications:send", "--scope", "notifications:broadcast"],
        cwd=ROOT, env={**env, "FLASK_APP": "wsgi.py"}, capture_output=True, text=True,
        check=True).stdout
    return json.loads(output)["key"]


EXPLICIT_DEVICES = 500  # their ids fit the 64 kB a request body may have


def recipients(engine, audience: str) -> dict:
    """The notification's members naming whom it goes to."""
    if audience == "all":
        return {"attributes": {"audience": {"all": True}}}
    if audience == "topic":
        return {"attributes": {"audience": {"topics": [TOPIC]}}}
    with engine.connect() as connection:
        ids = connection.scalars(sa.select(Device.id).order_by(Device.id)
                                 .limit(EXPLICIT_DEVICES)).all()
    return {"attributes": {}, "relationships": {"devices": {"data": [
        {"type": "devices", "id": str(id_)} for id_ in ids]}}}


def poster(env, key: str, members: dict):
    """A function POSTing the notification through the app (in this process: its WSGI
    stack and database), returning how long it took and when it answered."""
    os.environ.update(env)
    from app import create_app
    from app.config import Config

    client = create_app(Config()).test_client()
    document = {"data": {"type": "notifications", **members, "attributes": {
        "alert": {"title": "New post", "body": "Someone posted a photo"}, "badge": 1,
        "data": {"post_id": "p123"}, **members["attributes"]}}}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/vnd.api+json",
               "Accept": "application/vnd.api+json"}

    def post():
        started = time.perf_counter()
        response = client.post("/api/notifications", json=document, headers=headers)
        answered = time.perf_counter()
        assert response.status_code == 202, response.get_data(as_text=True)
        return answered - started, answered, utcnow()
    return post


def forget_notifications(engine):
    """The POSTs timed before any worker ran are not sent: their rows and jobs go."""
    with engine.begin() as connection:
        connection.execute(Notification.__table__.delete())
        connection.execute(sa.text(
            "TRUNCATE procrastinate.procrastinate_periodic_defers,"
            " procrastinate.procrastinate_events, procrastinate.procrastinate_jobs"))


def wait_for_worker(engine, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.scalar(sa.select(sa.func.count()).select_from(WorkerHeartbeat)):
                return
        time.sleep(0.2)
    sys.exit("the worker did not start")


def wait_until_sent(engine, devices, timeout):
    """Until every device's delivery is written and none is pending: when that was seen."""
    table = Delivery.__table__
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            targeted = connection.scalar(sa.select(Notification.__table__.c.targeted))
            pending = connection.scalar(sa.select(sa.func.count()).select_from(table).where(
                table.c.state.in_(("pending", "sending"))))
        if targeted >= devices and not pending:
            return time.perf_counter()
        time.sleep(0.5)
    sys.exit(f"not sent within {timeout} s")


def first_request(fake, timeout=5.0) -> float | None:
    """When a standalone fake received its first request (its second line of output);
    None if it received none."""
    if not select.select([fake.stdout], [], [], timeout)[0]:
        return None
    return json.loads(fake.stdout.readline())["first_request_at"]


def wal_position(engine):
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT pg_current_wal_lsn()"))


def measured(engine, since_lsn, accepted_at):
    table = Delivery.__table__
    with engine.connect() as connection:
        states = dict(connection.execute(
            sa.select(table.c.state, sa.func.count()).group_by(table.c.state)).all())
        per_device = connection.execute(sa.select(
            sa.func.count(), sa.func.count(sa.distinct(table.c.device_id)))).one()
        first = connection.scalar(sa.select(sa.func.min(table.c.sent_at)))
        ledger_bytes = connection.scalar(sa.text("SELECT pg_total_relation_size('deliveries')"))
        wal = connection.scalar(sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :lsn)"),
                                {"lsn": since_lsn})
        targeted = connection.scalar(sa.select(Notification.__table__.c.targeted))
    return {"states": states, "deliveries": per_device[0], "devices": per_device[1],
            "targeted": targeted,
            "first_delivery_s": (first - accepted_at).total_seconds() if first else None,
            "ledger_bytes_per_delivery": ledger_bytes / max(1, per_device[0]),
            "wal_bytes_per_delivery": float(wal) / max(1, per_device[0])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audience", choices=("all", "topic", "devices"), default="all")
    parser.add_argument("--queue", choices=("embedded", "procrastinate"), default="embedded")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--fcm-share", type=float, default=0.3)
    parser.add_argument("--posts", type=int, default=30)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 DEFAULT_DATABASE))
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()

    ensure_database(args.database_url)
    apns_fake, apns = start_fake(1000, "tests.fake_apns")
    fcm_fake, fcm = start_fake(1000, "tests.fake_fcm")
    env = {**os.environ, **fcm_environment(fcm, args.connections),
           **apns_environment(apns, args.connections), "DATABASE_URL": args.database_url,
           "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"), "PUSH_QUEUE": args.queue,
           "PYTHONPATH": str(ROOT)}  # this checkout's app, whichever venv runs it
    try:
        if flask(env, "db", "upgrade", stdout=subprocess.DEVNULL).wait() != 0:
            sys.exit("flask db upgrade failed")
        engine = sa.create_engine(normalise_database_url(args.database_url))
        started = time.perf_counter()
        fill(engine, args.devices, args.fcm_share, apns["bundle_id"], args.audience == "topic")
        print(f"inserted {args.devices} devices in {time.perf_counter() - started:.1f} s",
              flush=True)
        post = poster(env, api_key(env), recipients(engine, args.audience))
        expected = min(args.devices, EXPLICIT_DEVICES) if args.audience == "devices" \
            else args.devices
        durations = sorted(post()[0] for _ in range(args.posts))  # no worker runs yet
        forget_notifications(engine)
        worker = flask(env, "push", "worker", "--chunk-size", str(args.chunk_size),
                       "--concurrency", str(args.concurrency), stdout=subprocess.PIPE,
                       text=True)
        wait_for_worker(engine)
        time.sleep(SETTLE)
        lsn = wal_position(engine)
        _, started, accepted_at = post()
        finished = wait_until_sent(engine, expected, timeout=3600)
        first_request_at = min(filter(None, map(first_request, (apns_fake, fcm_fake))))
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=120)
        elapsed = finished - started
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        figures = measured(engine, lsn, accepted_at)
        engine.dispose()
    finally:
        for fake in (apns_fake, fcm_fake):
            fake.terminate()
            fake.wait()

    sent = figures["states"].get("sent", 0)
    print(json.dumps(figures))
    print(f"POST p50 {statistics.median(durations) * 1000:.1f} ms, p99 "
          f"{percentile(durations, 0.99) * 1000:.1f} ms ({args.posts} posts, audience "
          f"{args.audience} of {expected} devices)")
    print(f"first delivery at the fake {first_request_at - accepted_at.timestamp():.3f} s "
          f"after the 202, recorded sent after {figures['first_delivery_s']:.3f} s (its "
          f"chunk's answers all in; a running worker, {args.queue} queue)")
    print(f"{sent} pushes in {elapsed:.1f} s from the 202 to the last answer "
          f"(polled every 0.5 s): {sent / elapsed:.0f} pushes/s")
    once = figures["deliveries"] == figures["devices"] == figures["targeted"] == sent
    print(f"every device exactly once: {once}; worker peak RSS {peak_rss_mb:.0f} MB "
          "(the largest child process)")
    print(f"ledger {figures['ledger_bytes_per_delivery']:.0f} B/delivery (table and indexes), "
          f"WAL {figures['wal_bytes_per_delivery']:.0f} B/delivery; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; chunk {args.chunk_size}, "
          f"concurrency {args.concurrency}, {args.connections} connections per provider")


if __name__ == "__main__":
    main()
