"""Fan-out benchmark: ONE notification to N devices through the ledger, the dispatcher and
``flask push worker --burst``, to the fake APNs (``--channel apns``), the fake FCM
(``--channel fcm``: Android devices, HTTP v1, an OAuth access token) or a local webhook
receiver (``--channel webhook``: signed POSTs over HTTP/1.1 keep-alive), in its own process.
``--receipts``: the notification's API key has a callback (the local receiver), so every
outcome is also kept as a receipt and POSTed by the worker: the cost of receipts.

Devices, the notification and its deliveries are inserted directly (as ``accept`` would
have, in one go); then the worker runs until nothing is due. Prints pushes/s, the worker's
CPU per push (the figure to read on a shared machine; the load average is printed too), the
fake's, and the p50/p99 from accept (a delivery's ``created_at``) to APNs' answer
(``sent_at``).

    .venv/bin/python bench/push_fanout.py [--channel apns|fcm|webhook] [--devices 100000]
        [--database-url URL] [--chunk-size 1000] [--concurrency 2] [--connections 2]
        [--workers 1] [--profile FILE] [--queue embedded|procrastinate] [--receipts]

The default database is PostgreSQL ``pushreg_bench`` (created when missing); its push tables
are emptied first. ``--database-url sqlite:///…`` runs it on SQLite. ``--profile FILE``
samples the (first) worker with py-spy (``pip install py-spy``) into collapsed stacks; its
CPU figure then counts py-spy too. ``--queue procrastinate`` (PostgreSQL) enqueues the
deliveries as procrastinate jobs with the rows, as ``accept`` does.
"""

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app.config import normalise_database_url  # noqa: E402
from app.models import Credential, CredentialKind, Device, LiveActivity  # noqa: E402
from app.models.notification import Delivery, Notification, ProviderToken  # noqa: E402
from app.models.receipt import ReceiptBatch, ReceiptEvent  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from app.push.webhook import new_signing_secret  # noqa: E402
from app.security.crypto import seal  # noqa: E402
from bench.push_transport import cpu_seconds_of, start_fake  # noqa: E402

BIN = Path(sys.executable).parent
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/pushreg_bench"
SECRET_KEY = "bench-" + "k" * 40  # the worker's, so the bench can seal signing secrets
RECEIPT_KEY = "bench-receipts"


def ensure_database(url: str):
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = sa.create_engine(normalise_database_url(
        parsed.set(database="postgres").render_as_string(hide_password=False)),
        isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                   {"name": parsed.database})
        if not exists:
            connection.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def flask(env, *args, prefix=(), **popen):
    # PYTHONPATH: this checkout's app, not the one the virtualenv was installed from (a
    # git worktree shares the virtualenv of another)
    return subprocess.Popen([*prefix, str(BIN / "flask"), *args], cwd=ROOT,
                            env={**env, "FLASK_APP": "wsgi.py", "PYTHONPATH": str(ROOT)},
                            **popen)


STARTED_LINE = "push worker started"


def watch_start(worker) -> list[float]:
    """Pass the worker's log through to stderr; the list gets the moment it logged that it
    started (its imports and app done, its transports open), the start of its sending."""
    started: list[float] = []

    def read():
        for line in worker.stderr:
            if not started and STARTED_LINE in line:
                started.append(time.perf_counter())
            sys.stderr.write(line)

    threading.Thread(target=read, daemon=True).start()
    return started


def endpoint(channel: str, served: dict) -> dict:
    """A new device's push endpoint columns on ``channel``."""
    if channel == "webhook":
        return {"channel": "webhook", "environment": None, "bundle_id": None,
                "token": f"{served['url']}/hook/{secrets.token_hex(8)}",
                "signing_secret": served["sealed_secret"]}
    if channel == "fcm":
        return {"channel": "fcm", "environment": None, "bundle_id": None,
                "token": f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(104)}"}
    return {"channel": "ios_push", "token": secrets.token_hex(32),
            "environment": "production", "bundle_id": served.get("bundle_id")}


def receipts_key(connection, callback: str | None) -> int | None:
    """The API key the notification is sent by: with ``callback``, receipts go there."""
    if callback is None:
        return None
    return connection.scalar(sa.insert(Credential.__table__).values(
        kind=CredentialKind.API_KEY.value, secret_digest=secrets.token_hex(32),
        public_id=secrets.token_urlsafe(16), name=RECEIPT_KEY, scopes="notifications:send",
        callback_url=callback, callback_secret=seal(new_signing_secret(), SECRET_KEY),
        created_at=utcnow(), updated_at=utcnow(), last_used_at=utcnow())
        .returning(Credential.__table__.c.id))


def fill(engine, devices: int, channel: str, served: dict, queue: str, chunk_size: int,
         callback: str | None = None, live_activities: bool = False):
    """Empty the push tables, then one notification to ``devices`` new devices (sent by a
    key whose receipts go to ``callback``, if given); with ``live_activities``, a Live
    Activity update to one running activity on each device, through its own token."""
    now = utcnow()
    with engine.begin() as connection:
        for table in (ReceiptEvent, ReceiptBatch, Delivery, Notification, ProviderToken,
                      LiveActivity, Device):
            connection.execute(table.__table__.delete())
        connection.execute(Credential.__table__.delete().where(
            Credential.__table__.c.name == RECEIPT_KEY))
        device_rows = [{"id": uuid.uuid4(), **endpoint(channel, served), "is_voip": False,
                        "is_invalidated": False, "last_seen_at": now - timedelta(days=1),
                        "created_at": now, "updated_at": now} for _ in range(devices)]
        connection.execute(sa.insert(Device.__table__), device_rows)
        activities = _running_activities(connection, device_rows, now) \
            if live_activities else {}
        notification_id = uuid.uuid4()
        content = LIVE_ACTIVITY_UPDATE | {"timestamp": int(now.timestamp())} \
            if live_activities else ALERT
        connection.execute(sa.insert(Notification.__table__).values(
            id=notification_id, push_type=content["push_type"],
            sender_id=receipts_key(connection, callback), content=content))
        accepted = utcnow()
        connection.execute(sa.insert(Delivery.__table__), [
            {"notification_id": notification_id, "device_id": row["id"],
             "channel": row["channel"], "apns_id": uuid.uuid4(), "state": "pending",
             "attempts": 0, "next_attempt_at": accepted, "created_at": accepted,
             "updated_at": accepted, "live_activity_id": activities.get(row["id"])}
            for row in device_rows])
        if queue == "procrastinate":
            from app.push import procrastinate_queue

            connection.execute(sa.text(
                f"TRUNCATE {procrastinate_queue.SCHEMA}.procrastinate_jobs CASCADE"))
            procrastinate_queue.enqueue_notification(connection, notification_id, chunk_size)


ALERT = {"push_type": "alert", "alert": {"title": "New post", "body": "Someone posted a photo"},
         "badge": 1, "sound": "default", "custom": {"post_id": "p123"}}
LIVE_ACTIVITY_UPDATE = {"push_type": "liveactivity", "event": "update", "priority": 5,
                        "content_state": {"home": 2, "away": 1, "minute": 67}}


def _running_activities(connection, device_rows, now) -> dict:
    """One running activity on each device, with a push token of its own (sealed, as the
    registry keeps it): device id → activity id."""
    rows = [{"id": uuid.uuid4(), "device_id": row["id"], "activity_id": f"match-{index}",
             "attributes_type": "MatchAttributes",
             "token": seal(secrets.token_hex(32), SECRET_KEY), "created_at": now,
             "updated_at": now} for index, row in enumerate(device_rows)]
    connection.execute(sa.insert(LiveActivity.__table__), rows)
    return {row["device_id"]: row["id"] for row in rows}


def apns_environment(apns: dict, connections: int) -> dict:
    return {"APNS_KEY": apns["key_file"], "APNS_KEY_ID": apns["key_id"],
            "APNS_TEAM_ID": apns["team_id"], "APNS_BUNDLE_ID": apns["bundle_id"],
            "APNS_PRODUCTION_URL": apns["url"], "APNS_SANDBOX_URL": apns["url"],
            "APNS_CA_FILE": apns["ca_file"], "APNS_CONNECTIONS": str(connections)}


def fcm_environment(fcm: dict, connections: int) -> dict:
    return {"FCM_CREDENTIALS_FILE": fcm["credentials_file"], "FCM_URL": fcm["url"],
            "FCM_CA_FILE": fcm["ca_file"], "FCM_CONNECTIONS": str(connections),
            **{name: "" for name in os.environ if name.startswith("APNS_")}}


def webhook_environment(receiver: dict, connections: int) -> dict:
    return {**{name: "" for name in os.environ if name.startswith("APNS_")},
            "WEBHOOK_CONNECTIONS": str(max(connections, 100))}


def start_receiver():
    """The local webhook receiver (``bench/webhook_sink.py``) in its own process."""
    process = subprocess.Popen([sys.executable, "-m", "bench.webhook_sink"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    served = json.loads(process.stdout.readline())
    return process, {**served, "sealed_secret": seal(new_signing_secret(), SECRET_KEY)}


def start_target(channel: str):
    return start_receiver() if channel == "webhook" else start_fake(1000, FAKES[channel])


FAKES = {"apns": "tests.fake_apns", "fcm": "tests.fake_fcm"}
FAKE_NAMES = {"apns": "APNs", "fcm": "FCM", "webhook": "webhook receiver"}
CHANNEL_ENVIRONMENT = {"apns": apns_environment, "fcm": fcm_environment,
                       "webhook": webhook_environment}
# Webhooks and receipts go to 127.0.0.1 over plain HTTP: allowed here as in development.
LOCAL_WEBHOOKS = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
                  "SECRET_KEY": SECRET_KEY}


def latencies(engine) -> tuple[dict, list[float]]:
    table = Delivery.__table__
    with engine.connect() as connection:
        states = dict(connection.execute(
            sa.select(table.c.state, sa.func.count()).group_by(table.c.state)).all())
        rows = connection.execute(sa.select(table.c.created_at, table.c.sent_at)
                                  .where(table.c.sent_at.is_not(None))).all()
    return states, sorted((sent - created).total_seconds() for created, sent in rows)


def percentile(values, fraction):
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", choices=("apns", "fcm", "webhook"), default="apns")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 DEFAULT_DATABASE))
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes at once (they share the ledger)")
    parser.add_argument("--profile", metavar="FILE",
                        help="sample the worker with py-spy into FILE (collapsed stacks)")
    parser.add_argument("--queue", choices=("embedded", "procrastinate"), default="embedded")
    parser.add_argument("--live-activities", action="store_true",
                        help="a Live Activity update to one running activity a device "
                             "(APNs only)")
    parser.add_argument("--receipts", action="store_true",
                        help="the sending key has a callback (a local receiver): receipts on")
    args = parser.parse_args()
    if args.live_activities and args.channel != "apns":
        sys.exit("--live-activities goes through APNs: --channel apns")
    if args.profile and not (BIN / "py-spy").exists():
        sys.exit(f"--profile needs py-spy: {BIN / 'pip'} install py-spy")

    ensure_database(args.database_url)
    fake, served = start_target(args.channel)
    sink, callback = start_receiver() if args.receipts else (None, None)
    env = {**os.environ, "DATABASE_URL": args.database_url,
           "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),  # the worker's start line
           **CHANNEL_ENVIRONMENT[args.channel](served, args.connections),
           **LOCAL_WEBHOOKS, "PUSH_QUEUE": args.queue}
    try:
        if flask(env, "db", "upgrade", stdout=subprocess.DEVNULL).wait() != 0:
            sys.exit("flask db upgrade failed")
        engine = sa.create_engine(normalise_database_url(args.database_url))
        started = time.perf_counter()
        fill(engine, args.devices, args.channel, served, args.queue, args.chunk_size,
             callback and callback["url"] + "/receipts", args.live_activities)
        print(f"inserted {args.devices} devices and deliveries in "
              f"{time.perf_counter() - started:.1f} s", flush=True)

        fake_cpu = cpu_seconds_of(fake.pid)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        profiler = [str(BIN / "py-spy"), "record", "--nonblocking", "--format", "raw",
                    "--rate", "200", "-o", args.profile, "--"] if args.profile else []
        workers = [flask(env, "push", "worker", "--burst", "--chunk-size", str(args.chunk_size),
                         "--concurrency", str(args.concurrency), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         prefix=profiler if index == 0 else ())
                   for index in range(args.workers)]
        starts = [watch_start(worker) for worker in workers]
        totals = Counter()
        for worker in workers:
            output = worker.stdout.read().splitlines()  # stderr: watch_start reads it
            worker.wait()
            totals.update(json.loads(next(line for line in reversed(output)
                                          if line.startswith("{"))))
        finished = time.perf_counter()
        elapsed = finished - started
        sending = finished - min((moment for seen in starts for moment in seen),
                                 default=started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        fake_cpu = cpu_seconds_of(fake.pid) - fake_cpu
        states, waits = latencies(engine)
        engine.dispose()
    finally:
        for process in (fake, sink):
            if process is not None:
                process.terminate()
                process.wait()

    sent = states.get("sent", 0)
    print(json.dumps({"worker_totals": totals, "states": states}))
    print(f"{sent} pushes in {elapsed:.1f} s (worker process start to exit): "
          f"{sent / elapsed:.0f} pushes/s; {sent / sending:.0f} pushes/s in the {sending:.1f} s "
          f"from the worker's start line (after its {elapsed - sending:.1f} s of start-up)")
    print(f"worker CPU {worker_cpu * 1000 / max(sent, 1):.3f} ms/push "
          f"(~{max(sent, 1) / worker_cpu:.0f} pushes/s per core); "
          f"fake {FAKE_NAMES[args.channel]} {fake_cpu * 1000 / max(sent, 1):.3f} ms/push")
    print(f"accept → {FAKE_NAMES[args.channel]} answer: p50 {percentile(waits, 0.5):.2f} s, "
          f"p99 {percentile(waits, 0.99):.2f} s, max {waits[-1] if waits else 0:.2f} s")
    print(f"{args.channel}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"chunk {args.chunk_size}, concurrency {args.concurrency}, "
          f"{args.connections} connections, {args.workers} worker process(es), "
          f"{args.queue} queue, receipts {'on' if args.receipts else 'off'}")


if __name__ == "__main__":
    main()
