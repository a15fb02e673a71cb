"""Cancel benchmark: one notification with N deliveries pending (half due now, half waiting
on a backoff), canceled on PostgreSQL two ways:

- ``one UPDATE``: every pending delivery in one statement (no statement timeout);
- ``the service's cancel`` (``app/resources/cancellation.py``): the notification sealed and
  up to ``EAGER_LIMIT`` deliveries written canceled, the rest left to the workers.

Prints for each: the time it takes, the receipt events written (``--receipts``: the sender
has a callback), and how long a worker's claim takes while it runs (claims skip the rows
the cancel holds).

    .venv/bin/python bench/push_cancel.py [--deliveries 1000000] [--receipts]
        [--database-url URL]
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app.config import normalise_database_url  # noqa: E402
from app.models import Credential  # noqa: E402
from app.models.notification import Delivery, Notification  # noqa: E402
from app.models.receipt import ReceiptEvent  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from app.push import ledger, receipts  # noqa: E402
from bench.push_fanout import DEFAULT_DATABASE, ensure_database, flask  # noqa: E402

OTHERS = 1000  # another notification's due deliveries, for the claims to find


def fill(engine, deliveries: int, receipts: bool):
    """Empty the ledger, then the notification to cancel (its sender's receipts on with
    ``receipts``) and another one: (the first's id, the other's)."""
    now = utcnow()
    with engine.begin() as connection:
        for table in (ReceiptEvent, Delivery, Notification, Credential):
            connection.execute(table.__table__.delete())
        sender = connection.scalar(sa.insert(Credential.__table__).values(
            kind="api_key", secret_digest=uuid.uuid4().hex, public_id=uuid.uuid4().hex,
            name="bench-cancel", scopes="notifications:send", is_cookie_based=False,
            callback_url="https://receiver.example/receipts" if receipts else None,
            callback_secret="sealed" if receipts else None, created_at=now, updated_at=now,
            last_used_at=now).returning(Credential.__table__.c.id))
        ids = [uuid.uuid4(), uuid.uuid4()]
        for notification_id, count in zip(ids, (deliveries, OTHERS), strict=True):
            connection.execute(sa.insert(Notification.__table__).values(
                id=notification_id, sender_id=sender, push_type="alert",
                content={"push_type": "alert", "alert": "bench"}, created_at=now,
                updated_at=now))
            # half due now, half waiting on a backoff an hour away
            connection.execute(sa.text(
                "INSERT INTO deliveries (notification_id, channel, apns_id, state, attempts,"
                " next_attempt_at, created_at, updated_at) SELECT :id, 'ios_push',"
                " gen_random_uuid(), 'pending', i % 2, CASE WHEN i % 2 = 0 THEN :now"
                " ELSE :later END, :now, :now FROM generate_series(1, :count) AS i"),
                {"id": notification_id, "count": count, "now": now,
                 "later": now + timedelta(hours=1)})
        connection.execute(sa.text("ANALYZE deliveries"))
    return ids


def cancel_at_once(app, notification_id):
    from app.extensions import db
    from app.resources import cancellation

    with app.app_context():
        done = cancellation.cancel(db.session.get(Notification, notification_id))
        db.session.commit()
        db.session.remove()
    return done.deliveries


def one_update(engine, notification_id):
    """Every pending delivery in one statement, as a cancel without a bound would."""
    table = Delivery.__table__
    with engine.begin() as connection:
        now = utcnow()
        changed = connection.execute(
            sa.update(table).where(table.c.notification_id == notification_id,
                                   table.c.state == "pending")
            .values(state="canceled", lease_until=None, updated_at=now,
                    **ledger.CANCELED_WHY)).rowcount
        receipts.keep_canceled(connection, notification_id, now)
    return changed


def claims_while(engine, running: threading.Event, lease=0.001):
    """Claim latencies (ms) until ``running`` clears; what is claimed is released."""
    timings = []
    while running.is_set():
        started = time.perf_counter()
        with engine.begin() as connection:
            taken = ledger.claim(connection, limit=100, lease=lease, now=utcnow())
        timings.append((time.perf_counter() - started) * 1000)
        with engine.begin() as connection:  # as a worker does: never in the claim's
            ledger.release(connection, taken, utcnow())
        time.sleep(0.01)
    return timings


def measure(name, engine, cancel):
    running, timings = threading.Event(), []
    running.set()
    claimer = threading.Thread(target=lambda: timings.extend(claims_while(engine, running)))
    claimer.start()
    started = time.perf_counter()
    canceled = cancel()
    took = time.perf_counter() - started
    running.clear()
    claimer.join()
    with engine.connect() as connection:
        events = connection.scalar(sa.select(sa.func.count()).select_from(
            ReceiptEvent.__table__))
    timings.sort()
    print(f"{name}: {canceled} canceled in {took:.2f} s; {events} receipt events; "
          f"claims meanwhile: {len(timings)}, p50 {statistics.median(timings):.1f} ms, "
          f"max {timings[-1]:.1f} ms", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--receipts", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 DEFAULT_DATABASE))
    args = parser.parse_args()
    ensure_database(args.database_url)
    env = {**os.environ, "DATABASE_URL": args.database_url, "LOG_LEVEL": "WARNING"}
    if flask(env, "db", "upgrade", stdout=subprocess.DEVNULL).wait() != 0:
        sys.exit("flask db upgrade failed")
    os.environ["DATABASE_URL"] = args.database_url
    from app import create_app

    app = create_app()
    engine = sa.create_engine(normalise_database_url(args.database_url))
    for name, cancel in (
            ("one UPDATE", lambda target: one_update(engine, target)),
            ("the service's cancel", lambda target: cancel_at_once(app, target))):
        started = time.perf_counter()
        target, _ = fill(engine, args.deliveries, args.receipts)
        print(f"{args.deliveries} pending deliveries written in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        measure(name, engine, lambda cancel=cancel, target=target: cancel(target))
        with engine.connect() as connection:
            left = connection.scalar(sa.select(sa.func.count()).select_from(
                Delivery.__table__).where(Delivery.__table__.c.state == "pending",
                                          Delivery.__table__.c.notification_id == target))
        print(f"  left pending rows for the workers: {left}", flush=True)


if __name__ == "__main__":
    main()
