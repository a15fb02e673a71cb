"""What an idle push worker costs PostgreSQL: transactions a second, on each queue.

Starts ``flask push worker`` (APNs through the fake, nothing to send) on a database of its
own, lets it settle, then counts the database's transactions (``pg_stat_database``:
``xact_commit + xact_rollback``; each of the idle worker's reads is a transaction of one
statement, its writes one or a few) over ``--seconds``, minus the two this script makes.
No other client may use that database meanwhile.

    .venv/bin/python bench/idle_worker.py [--queue embedded|procrastinate|both]
        [--seconds 60] [--database-url URL]
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app.config import normalise_database_url  # noqa: E402
from bench.push_audience import wait_for_worker  # noqa: E402
from bench.push_fanout import apns_environment, ensure_database, flask  # noqa: E402
from bench.push_transport import start_fake  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/pushreg_bench_idle"
SETTLE = 5.0  # seconds after the worker's first heartbeat before counting


def transactions(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"))


def idle_cost(engine, env, queue: str, seconds: float) -> float:
    """Transactions a second of one idle worker on ``queue``."""
    worker = flask({**env, "PUSH_QUEUE": queue}, "push", "worker",
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_worker(engine)
        time.sleep(SETTLE)
        before = transactions(engine)
        time.sleep(seconds)
        after = transactions(engine)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    return (after - before - 1) / seconds  # the second reading's own transaction


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", choices=("embedded", "procrastinate", "both"),
                        default="both")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_IDLE_DATABASE_URL",
                                                                 DEFAULT_DATABASE))
    args = parser.parse_args()
    ensure_database(args.database_url)
    fake, apns = start_fake(1000, "tests.fake_apns")
    env = {**os.environ, **apns_environment(apns, 1), "DATABASE_URL": args.database_url,
           "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    try:
        if flask(env, "db", "upgrade", stdout=subprocess.DEVNULL).wait() != 0:
            sys.exit("flask db upgrade failed")
        engine = sa.create_engine(normalise_database_url(args.database_url),
                                  poolclass=sa.pool.NullPool)
        queues = ("embedded", "procrastinate") if args.queue == "both" else (args.queue,)
        for queue in queues:
            cost = idle_cost(engine, env, queue, args.seconds)
            print(f"{queue}: {cost:.2f} transactions/s of one idle worker over "
                  f"{args.seconds:g} s (PUSH_POLL_INTERVAL "
                  f"{env.get('PUSH_POLL_INTERVAL', '1')} s; load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
