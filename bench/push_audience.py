"""Audience benchmark: a broadcast (``--audience all``) or a topic (``--audience topic``) to
N devices, APNs and FCM mixed, POSTed over JSON:API and expanded by a running ``flask push
worker`` through the fake APNs and the fake FCM; then, as the baseline of the same run, the
same devices' deliveries written up front (as explicit recipients' are) and sent by a new
worker. ``--audience devices``: an explicit notification to the first 500 of them (its
deliveries written by the POST), no baseline. ``--queue``: the embedded queue or
procrastinate (the baseline runs on the embedded queue only).

Prints the POST's p50/p99 (``--posts`` of them before any worker runs; the audience's size
must not show in it), then for the audience and the baseline: the time from the POST's 202
(the baseline's commit) to the first request at a fake and to the first delivery recorded
sent, pushes/s to the last, the worker's
CPU per push and its RSS (at a tenth of the way, at the end, and its peak), whether every
device got exactly one push (the ledger: one sent delivery per device; the fakes' tallies:
as many tokens answered 200 as devices, none twice), the ledger's bytes per delivery
(``deliveries`` with its indexes, and ``delivery_counts``) and PostgreSQL's WAL bytes per
delivery. Each figure comes with the load average.

    .venv/bin/python bench/push_audience.py [--audience all|topic|devices]
        [--devices 100000] [--queue embedded|procrastinate] [--fcm-share 0.3] [--posts 30]
        [--database-url URL] [--chunk-size 1000] [--concurrency 2] [--connections 2]
        [--no-baseline] [--own-wal|--no-own-wal] [--profile FILE]

PostgreSQL only (the WAL position is PostgreSQL's). The devices are written by one
``INSERT … SELECT generate_series`` (10⁶ in well under a minute), the push tables emptied
first.
"""

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app.config import normalise_database_url  # noqa: E402
from app.models import Device, WorkerHeartbeat  # noqa: E402
from app.models.types import utcnow  # noqa: E402
from bench.push_fanout import (  # noqa: E402
    ALERT,
    BIN,
    DEFAULT_DATABASE,
    apns_environment,
    ensure_database,
    fcm_environment,
    flask,
    percentile,
)
from bench.push_transport import cpu_seconds_of, start_fake  # noqa: E402

TOPIC = "bench.everyone"
EXPLICIT_DEVICES = 500  # their ids fit the 64 kB a request body may have
SETTLE = 2.0  # seconds from the worker's first heartbeat to its LISTEN (either queue)
PUSH_TABLES = "deliveries, delivery_counts, notifications, provider_tokens, device_topics"

# Deterministic, distinct tokens (devices are emptied first): 64 hex digits for APNs, an
# FCM registration token's shape for Android.
SEED = r"""
INSERT INTO devices (id, channel, token, bundle_id, environment, app_version, is_voip,
                     is_invalidated, last_seen_at, created_at, updated_at)
SELECT gen_random_uuid(), CASE WHEN fcm THEN 'fcm' ELSE 'ios_push' END,
       CASE WHEN fcm THEN md5(i || 'a') || '\:APA91b' || md5(i || 'b') || md5(i || 'c')
            ELSE md5(i || 'x') || md5(i || 'y') END,
       CASE WHEN fcm THEN NULL ELSE :bundle_id END,
       CASE WHEN fcm THEN NULL ELSE 'production' END,
       '3.1.0', false, false, now() - interval '1 day', now(), now()
FROM generate_series(1, :devices) AS i, LATERAL (SELECT :every > 0 AND i % :every = 0) AS f(fcm)
"""
SUBSCRIBE = ("INSERT INTO device_topics (device_id, topic, created_at)"
             " SELECT id, :topic, now() FROM devices")
# The baseline: what accepting explicit recipients writes, for every device at once.
EXPLICIT = """
INSERT INTO deliveries (notification_id, device_id, channel, apns_id, state, attempts,
                        next_attempt_at, created_at, updated_at)
SELECT :notification_id, id, channel, gen_random_uuid(), 'pending', 0, now(), now(), now()
FROM devices ORDER BY id
"""


def seed(engine, devices: int, fcm_share: float, bundle_id: str, topic: bool):
    """Empty the push tables and the devices, then ``devices`` devices (one in
    1/``fcm_share`` on FCM), each subscribed to ``TOPIC`` when ``topic``."""
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {PUSH_TABLES}, devices CASCADE"))
        connection.execute(sa.text(SEED), {"devices": devices, "bundle_id": bundle_id,
                                           "every": round(1 / fcm_share) if fcm_share else 0})
        if topic:
            connection.execute(sa.text(SUBSCRIBE), {"topic": TOPIC})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE devices"))
        connection.execute(sa.text("VACUUM ANALYZE device_topics"))


def forget_notifications(engine):
    """No notification left (the POSTs timed before any worker ran are not sent: their
    rows and jobs go), nor a provider token minted with an earlier fake's key."""
    with engine.begin() as connection:
        connection.execute(sa.text(
            "TRUNCATE deliveries, delivery_counts, notifications, provider_tokens,"
            " procrastinate.procrastinate_periodic_defers,"
            " procrastinate.procrastinate_events, procrastinate.procrastinate_jobs CASCADE"))


def api_key(env) -> str:
    output = subprocess.run(
        [str(BIN / "flask"), "keys", "create", "--name", f"bench-{uuid.uuid4()}",
         "--scope", "notifications:send", "--scope", "notifications:broadcast"],
        cwd=ROOT, env={**env, "FLASK_APP": "wsgi.py"}, capture_output=True, text=True,
        check=True).stdout
    return json.loads(output)["key"]


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


def explicit_notification(engine):
    """The baseline's notification and every device's delivery, committed: when."""
    with engine.begin() as connection:
        notification_id = connection.scalar(sa.text(
            "INSERT INTO notifications (id, push_type, content, created_at, updated_at)"
            " VALUES (gen_random_uuid(), 'alert', :content, now(), now()) RETURNING id"),
            {"content": json.dumps(ALERT)})
        connection.execute(sa.text(EXPLICIT), {"notification_id": notification_id})
        connection.execute(sa.text(
            "UPDATE notifications SET targeted = (SELECT count(*) FROM deliveries)"))
    return time.perf_counter(), utcnow()


def wait_for_worker(engine, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.scalar(sa.select(sa.func.count()).select_from(WorkerHeartbeat)):
                return
        time.sleep(0.2)
    sys.exit("the worker did not start")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_until_sent(engine, devices: int, worker_pid: int, timeout: float):
    """Until every device's delivery is written and none is pending: when that was seen,
    and the worker's RSS sampled on the way (progress share → MB)."""
    deadline = time.monotonic() + timeout
    samples = {}
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            targeted, open_ = connection.execute(sa.text(
                "SELECT (SELECT coalesce(sum(targeted), 0) FROM notifications),"
                " (SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending'))")
            ).one()
        samples[round(1 - open_ / devices if targeted >= devices else 0, 2)] = rss_mb(worker_pid)
        if targeted >= devices and not open_:
            return time.perf_counter(), samples
        time.sleep(0.5)
    sys.exit(f"not sent within {timeout} s")


class WalWatch:
    """PostgreSQL's WAL written meanwhile: the whole cluster's (LSN delta), and this
    database's own (the records whose blocks are its relations, read back with
    pg_walinspect from a slot that keeps them; other databases on a shared server write
    WAL too). Records without blocks (commits) are left out: a few per chunk."""

    def __init__(self, engine, own: bool):
        self.engine, self.slot = engine, f"bench_audience_{os.getpid()}" if own else None
        with engine.begin() as connection:
            self.start = connection.scalar(sa.text("SELECT pg_current_wal_lsn()"))
            if not own:
                return
            connection.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
            connection.execute(sa.text(
                "SELECT pg_create_physical_replication_slot(:slot, true)"), {"slot": self.slot})

    def written(self) -> dict:
        try:
            with self.engine.connect() as connection:
                end = connection.scalar(sa.text("SELECT pg_current_wal_lsn()"))
                own, fpi = (None, None) if self.slot is None else connection.execute(sa.text(
                    "SELECT sum(record_length), sum(fpi_length)"
                    " FROM pg_get_wal_records_info(:start, :end) WHERE block_ref LIKE"
                    " '%/' || (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " || '/%'"), {"start": self.start, "end": end}).one()
                cluster = connection.scalar(sa.text("SELECT pg_wal_lsn_diff(:end, :start)"),
                                            {"start": self.start, "end": end})
        finally:
            self.drop()
        unread = self.slot is None
        return {"cluster": float(cluster), "own": float("nan") if unread else float(own or 0),
                "own_fpi": float("nan") if unread else float(fpi or 0)}

    def drop(self):
        if self.slot is None:
            return
        with self.engine.begin() as connection:
            connection.execute(sa.text(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = :slot"), {"slot": self.slot})


def ledger_figures(engine, wal: dict, accepted_at) -> dict:
    with engine.connect() as connection:
        states = dict(connection.execute(sa.text(
            "SELECT state, count(*) FROM deliveries GROUP BY state")).all())
        deliveries, devices, first = connection.execute(sa.text(
            "SELECT count(*), count(DISTINCT device_id), min(sent_at) FROM deliveries")).one()
        sizes = connection.execute(sa.text(
            "SELECT pg_table_size('deliveries'), pg_indexes_size('deliveries'),"
            " pg_total_relation_size('delivery_counts'), (SELECT count(*) FROM delivery_counts)"
            )).one()
        targeted = connection.scalar(sa.text("SELECT sum(targeted) FROM notifications"))
    per = max(1, deliveries)
    return {"states": states, "deliveries": deliveries, "devices": devices,
            "targeted": targeted,
            "first_delivery_s": (first - accepted_at).total_seconds() if first else None,
            "table_bytes_per_delivery": sizes[0] / per,
            "index_bytes_per_delivery": sizes[1] / per,
            "counts_bytes_per_delivery": sizes[2] / per, "count_rows": sizes[3],
            **{f"wal_{kind}_per_delivery": bytes_ / per for kind, bytes_ in wal.items()}}


class Fakes:
    """The fake APNs and FCM, each counting the tokens it answered 200."""

    def __init__(self, connections: int):
        self.apns_process, self.apns = start_fake(1000, "tests.fake_apns", "--tally")
        self.fcm_process, fcm = start_fake(1000, "tests.fake_fcm", "--tally")
        self.environment = {**fcm_environment(fcm, connections),
                            **apns_environment(self.apns, connections)}

    def stop(self) -> dict:
        """Stop both: their tallies added up (pushes, tokens, tokens pushed twice), and
        when the first request reached either (``first_request_at``, None: none did)."""
        total = {"pushes": 0, "tokens": 0, "twice": 0}
        firsts = []
        for process in (self.apns_process, self.fcm_process):
            process.send_signal(signal.SIGTERM)
            lines = [json.loads(line)
                     for line in process.communicate(timeout=60)[0].splitlines()]
            firsts += [line["first_request_at"] for line in lines if "first_request_at" in line]
            total = {key: total[key] + lines[-1][key] for key in total}
        return total | {"first_request_at": min(firsts, default=None)}

    def cpu(self) -> float:
        return sum(cpu_seconds_of(process.pid)
                   for process in (self.apns_process, self.fcm_process))

    def kill(self):
        """Stop both, if still running (a run cut short)."""
        for process in (self.apns_process, self.fcm_process):
            if process.poll() is None:
                process.kill()
                process.wait()


def run_phase(engine, env, args, fakes, start, profile=None) -> dict:
    """A running worker; ``start()`` makes the work (returns when it was accepted); until
    every device's push is answered: the figures."""
    profiler = [str(BIN / "py-spy"), "record", "--nonblocking", "--format", "raw", "--rate",
                "100", "-o", profile, "--"] if profile else []
    with engine.begin() as connection:
        connection.execute(sa.delete(WorkerHeartbeat))
    worker = flask(env, "push", "worker", "--chunk-size", str(args.chunk_size),
                   "--concurrency", str(args.concurrency), stdout=subprocess.PIPE, text=True,
                   prefix=profiler)
    wait_for_worker(engine)
    time.sleep(SETTLE)
    worker_pid = _python_pid(worker.pid) if profile else worker.pid
    wal = WalWatch(engine, args.own_wal)
    cpu, database_cpu, fakes_cpu = cpu_seconds_of(worker_pid), backends_cpu(engine), fakes.cpu()
    try:
        started, accepted_at = start()
        finished, rss = wait_until_sent(engine, args.expected, worker_pid, timeout=7200)
        cpu = cpu_seconds_of(worker_pid) - cpu
        database_cpu = sum(seconds - database_cpu.get(pid, 0)  # a backend opened since: all of it
                           for pid, seconds in backends_cpu(engine).items())
        fakes_cpu = fakes.cpu() - fakes_cpu
        peak = rss_mb(worker_pid, "VmHWM")
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=120)
        figures = ledger_figures(engine, wal.written(), accepted_at)
    finally:
        wal.drop()  # a slot left behind would keep the server's WAL forever
    sent = figures["states"].get("sent", 0)
    return figures | {"seconds": finished - started, "pushes_per_s": sent / (finished - started),
                      "worker_cpu_ms_per_push": cpu * 1000 / max(1, sent),
                      "database_cpu_ms_per_push": database_cpu * 1000 / max(1, sent),
                      "fakes_cpu_ms_per_push": fakes_cpu * 1000 / max(1, sent),
                      "rss_mb": rss, "rss_peak_mb": peak, "load": os.getloadavg(),
                      "accepted_at": accepted_at}


def backends_cpu(engine) -> dict[int, float]:
    """The CPU seconds of each PostgreSQL backend serving this database (the worker's pool;
    the same machine), but this process's own."""
    with engine.connect() as connection:
        pids = connection.scalars(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()")).all()
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            seconds[pid] = cpu_seconds_of(pid)
    return seconds


def _python_pid(profiler_pid: int) -> int:
    """The worker py-spy started (its only child)."""
    children = Path(f"/proc/{profiler_pid}/task/{profiler_pid}/children")
    for _ in range(50):
        if pids := children.read_text().split():
            return int(pids[0])
        time.sleep(0.1)
    sys.exit("py-spy started no worker")


def report(name: str, figures: dict, tally: dict, devices: int):
    sent = figures["states"].get("sent", 0)
    first = tally.pop("first_request_at")
    at_fake = f"{first - figures['accepted_at'].timestamp():.3f} s" if first else "never"
    once = (figures["deliveries"] == figures["devices"] == figures["targeted"] == sent
            == devices == tally["pushes"] == tally["tokens"]) and not tally["twice"]
    rss = figures["rss_mb"]
    budget = sum(figures[f"{part}_cpu_ms_per_push"] for part in ("worker", "database", "fakes"))
    tenth = next((mb for share, mb in sorted(rss.items()) if share >= 0.1), float("nan"))
    print(f"{name}: {sent} pushes in {figures['seconds']:.1f} s: "
          f"{figures['pushes_per_s']:,.0f} pushes/s; the first at a fake {at_fake} after the "
          f"accept, recorded sent after {figures['first_delivery_s']:.2f} s; worker CPU "
          f"{figures['worker_cpu_ms_per_push']:.3f} ms/push, its PostgreSQL backends "
          f"{figures['database_cpu_ms_per_push']:.3f}, the fakes "
          f"{figures['fakes_cpu_ms_per_push']:.3f}: at most "
          f"{2000 / budget:,.0f} pushes/s on 2 idle cores; load "
          f"{' '.join(f'{value:.1f}' for value in figures['load'])}")
    print(f"  every device exactly once: {once} (ledger {figures['deliveries']} deliveries to "
          f"{figures['devices']} devices, targeted {figures['targeted']}; fakes {tally})")
    print(f"  worker RSS {tenth:.0f} MB at 10 %, {rss[max(rss)]:.0f} MB at the end, peak "
          f"{figures['rss_peak_mb']:.0f} MB")
    print(f"  ledger {figures['table_bytes_per_delivery']:.0f} + "
          f"{figures['index_bytes_per_delivery']:.0f} B/delivery (table + indexes), "
          f"delivery_counts {figures['counts_bytes_per_delivery']:.1f} B/delivery "
          f"({figures['count_rows']} rows); WAL {figures['wal_own_per_delivery']:.0f} "
          f"B/delivery of this database ({figures['wal_own_fpi_per_delivery']:.0f} of it "
          f"full-page images), {figures['wal_cluster_per_delivery']:.0f} of the whole server")


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
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the explicit-recipients run of the same devices")
    parser.add_argument("--profile", metavar="FILE",
                        help="sample the audience's worker with py-spy into FILE")
    parser.add_argument("--own-wal", action=argparse.BooleanOptionalAction, default=None,
                        help="read this database's own WAL back (pg_walinspect; a slot "
                             "keeps the whole server's WAL meanwhile: default up to 10⁵ "
                             "devices)")
    args = parser.parse_args()
    if args.own_wal is None:
        args.own_wal = args.devices <= 100_000
    if args.profile and not (BIN / "py-spy").exists():
        sys.exit(f"--profile needs py-spy: {BIN / 'pip'} install py-spy")

    ensure_database(args.database_url)
    args.expected = min(args.devices, EXPLICIT_DEVICES) if args.audience == "devices" \
        else args.devices
    env = {**os.environ, "DATABASE_URL": args.database_url, "PUSH_QUEUE": args.queue,
           "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
           "PYTHONPATH": str(ROOT)}  # this checkout's app, whichever venv runs it
    if flask(env, "db", "upgrade", stdout=subprocess.DEVNULL).wait() != 0:
        sys.exit("flask db upgrade failed")
    engine = sa.create_engine(normalise_database_url(args.database_url))
    fakes = Fakes(args.connections)
    try:
        env |= fakes.environment
        started = time.perf_counter()
        seed(engine, args.devices, args.fcm_share, fakes.apns["bundle_id"],
             args.audience == "topic")
        print(f"seeded {args.devices} devices in {time.perf_counter() - started:.1f} s",
              flush=True)

        post = poster(env, api_key(env), recipients(engine, args.audience))
        durations = sorted(post()[0] for _ in range(args.posts))  # no worker runs yet
        print(f"POST p50 {statistics.median(durations) * 1000:.1f} ms, p99 "
              f"{percentile(durations, 0.99) * 1000:.1f} ms ({args.posts} POSTs, audience "
              f"{args.audience} of {args.expected} devices; load "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
        forget_notifications(engine)
        figures = run_phase(engine, env, args, fakes, lambda: post()[1:], args.profile)
        report(f"audience {args.audience}, {args.queue} queue", figures, fakes.stop(),
               args.expected)
        # the baseline's rows are written behind the queue's back: embedded only
        if not args.no_baseline and args.audience != "devices" and args.queue == "embedded":
            forget_notifications(engine)
            fakes = Fakes(args.connections)
            env |= fakes.environment
            baseline = run_phase(engine, env, args, fakes,
                                 lambda: explicit_notification(engine))
            report("baseline (the deliveries written up front, as explicit recipients')",
                   baseline, fakes.stop(), args.devices)
            print("audience ÷ baseline: "
                  f"{figures['pushes_per_s'] / baseline['pushes_per_s']:.2f} in pushes/s, "
                  f"{figures['worker_cpu_ms_per_push'] / baseline['worker_cpu_ms_per_push']:.2f}"
                  " in worker CPU a push")
        print(f"chunk {args.chunk_size}, concurrency {args.concurrency}, {args.connections} "
              f"connections per provider, {args.fcm_share:.0%} FCM")
    finally:
        fakes.kill()
        engine.dispose()


if __name__ == "__main__":
    main()
