"""Local-time benchmark: a notification at 09:00 in each device's own zone to N devices
(``--devices``, zones of every kind, some devices without one), POSTed over JSON:API as
an audience and expanded by the workers' own step function, a chunk at a time.

Prints the POST's p50/p99 (``--posts`` of them), the expansion's time and rows/s (every
moment computed and written), how the moments spread, the status read's time, and the
plan of the workers' claim query (``ledger.claim``, run as a worker runs it, inside a
transaction rolled back) with N rows scheduled and none due yet, then with a chunk due.

    .venv/bin/python bench/push_schedule.py [--devices 1000000] [--throttle N]
        [--posts 10] [--database-url URL] [--chunk-size 1000]
"""

import argparse
import json
import os
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
from app.models import Device, DeviceTopic, ThrottleMoment  # noqa: E402
from app.models.notification import Delivery, Notification  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from app.push import expansion, ledger  # noqa: E402
from bench.push_audience import api_key  # noqa: E402
from bench.push_fanout import DEFAULT_DATABASE, endpoint, ensure_database, flask, percentile  # noqa: E402

INSERT_BATCH = 20_000
ZONES = ("America/Los_Angeles", "America/New_York", "America/Sao_Paulo", "Europe/London",
         "Europe/Paris", "Africa/Lagos", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Shanghai",
         "Asia/Tokyo", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland",
         "Pacific/Kiritimati", "Pacific/Pago_Pago", None)


def fill(engine, devices: int):
    now = utcnow()
    with engine.begin() as connection:
        for table in (Delivery, ThrottleMoment, Notification, DeviceTopic, Device):
            connection.execute(table.__table__.delete())
    for start in range(0, devices, INSERT_BATCH):
        rows = [{"id": uuid.uuid4(), **endpoint("apns", {"bundle_id": "com.example.app"}),
                 "time_zone": ZONES[index % len(ZONES)], "is_voip": False,
                 "is_invalidated": False, "last_seen_at": now - timedelta(days=1),
                 "created_at": now, "updated_at": now}
                for index in range(start, min(devices, start + INSERT_BATCH))]
        with engine.begin() as connection:
            connection.execute(sa.insert(Device.__table__), rows)
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE devices"))


def client_for(env):
    os.environ.update(env)
    from app import create_app
    from app.config import Config

    return create_app(Config()).test_client()


def post(client, key, attributes):
    document = {"data": {"type": "notifications", "attributes": {
        "alert": {"title": "Good morning", "body": "Your daily digest"},
        "audience": {"all": True}, **attributes}}}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/vnd.api+json",
               "Accept": "application/vnd.api+json"}
    started = time.perf_counter()
    response = client.post("/api/notifications", json=document, headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.get_data(as_text=True)
    return elapsed, response.get_json()["data"]["id"], headers


def expand(engine, chunk_size):
    """Every chunk, as a worker writes it: (seconds, chunks)."""
    started, chunks = time.perf_counter(), 0
    while True:
        with engine.begin() as connection:
            if expansion.step(connection, chunk_size, utcnow()) is None:
                return time.perf_counter() - started, chunks
        chunks += 1


def claim_plan(engine, chunk_size, now):
    """The plan (EXPLAIN ANALYZE) of the claim of pending rows due by ``now``, with the
    statement and parameters a worker's ``ledger.claim`` sends; nothing is kept."""
    captured = []

    def capture(_conn, _cursor, statement, parameters, *_):
        if statement.lstrip().upper().startswith("UPDATE"):
            captured.append((statement, parameters))

    with engine.connect() as connection:
        sa.event.listen(connection, "before_cursor_execute", capture)
        with connection.begin() as transaction:
            claimed = ledger.claim(connection, limit=chunk_size, lease=120, now=now)
            transaction.rollback()
        sa.event.remove(connection, "before_cursor_execute", capture)
        statement, parameters = captured[-1]  # the pending rows' claim
        with connection.begin() as transaction:
            plan = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters).scalars().all()
            transaction.rollback()
    return len(claimed), plan


def spread(engine):
    table = Delivery.__table__
    with engine.connect() as connection:
        moments = connection.execute(sa.select(sa.func.min(table.c.scheduled_at),
                                               sa.func.max(table.c.scheduled_at),
                                               sa.func.count())).one()
        per_minute = connection.execute(sa.text(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM deliveries "
            "GROUP BY date_trunc('minute', scheduled_at)) AS minutes")).scalar()
    return moments, per_minute


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--throttle", type=int, help="per_minute, with the local time")
    parser.add_argument("--posts", type=int, default=10)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 DEFAULT_DATABASE))
    parser.add_argument("--chunk-size", type=int, default=1000)
    args = parser.parse_args()

    ensure_database(args.database_url)
    env = {**os.environ, "DATABASE_URL": args.database_url, "PUSH_QUEUE": "embedded",
           "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"), "PYTHONPATH": str(ROOT)}
    if flask(env, "db", "upgrade", stdout=subprocess.DEVNULL).wait() != 0:
        sys.exit("flask db upgrade failed")
    engine = sa.create_engine(normalise_database_url(args.database_url))
    started = time.perf_counter()
    fill(engine, args.devices)
    print(f"inserted {args.devices} devices in {time.perf_counter() - started:.1f} s",
          flush=True)
    client, key = client_for(env), api_key(env)
    send_at = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    attributes = {"local_time": "09:00", "send_at": send_at.isoformat()}
    if args.throttle:
        attributes["throttle"] = {"per_minute": args.throttle}
    durations = sorted(post(client, key, attributes)[0] for _ in range(args.posts))
    with engine.begin() as connection:
        connection.execute(Notification.__table__.delete())
    _, notification_id, headers = post(client, key, attributes)
    expanded_s, chunks = expand(engine, args.chunk_size)
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE deliveries"))
    reads = []
    for _ in range(20):
        begun = time.perf_counter()
        shown = client.get(f"/api/notifications/{notification_id}", headers=headers)
        reads.append(time.perf_counter() - begun)
    status = shown.get_json()["data"]["attributes"]["status"]
    (first, last, written), busiest = spread(engine)
    none_due = claim_plan(engine, args.chunk_size, utcnow())
    # the clock at the first moment plus a minute: some rows due among the million
    some_due = claim_plan(engine, args.chunk_size, first + timedelta(minutes=1))
    engine.dispose()

    print(json.dumps({"written": written, "first": first.isoformat(), "last": last.isoformat(),
                      "busiest_minute": busiest, "status": status}))
    print(f"POST p50 {statistics.median(durations) * 1000:.1f} ms, p99 "
          f"{percentile(durations, 0.99) * 1000:.1f} ms ({args.posts} posts, local_time to an "
          f"audience of {args.devices} devices{', throttled' if args.throttle else ''})")
    print(f"expanded {written} deliveries with their moments in {expanded_s:.1f} s "
          f"({chunks} chunks of {args.chunk_size}): {written / expanded_s:.0f} rows/s; "
          f"moments from {first:%H:%M} to {last:%H:%M} UTC "
          f"({(last - first).total_seconds() / 3600:.1f} h), at most {busiest} a minute")
    print(f"status read ({status}) p50 {statistics.median(reads) * 1000:.1f} ms")
    for label, (claimed, plan) in (("none due", none_due), ("a minute due", some_due)):
        print(f"claim with {written} scheduled, {label}: {claimed} claimed")
        print("    " + "\n    ".join(plan))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
