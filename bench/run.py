"""``make bench``: the service under gunicorn on PostgreSQL against a bare Flask app.

A benchmark, not a test. Both servers run under gunicorn with ``gunicorn.conf.py`` and the
same worker count; wrk loads one of them at a time (16 connections, 2 threads, a 3 s
warm-up, then 15 s measured) and each row prints requests/s, p50 and p99 for the service
and for the bare app (``bench/bare_app.py``: no database, no marshmallow, the same request
parsed and a document of about the same size returned), and the ratio service/bare:

- ``patch``: ``PATCH /api/apple_device_tokens/<token>`` as Poparazzi sends it, a new random
  64-hex token per request (so requests do not queue on one row's lock);
- ``list``: ``GET /api/apple_device_tokens?page[size]=100&include=user``, a page of 100
  tokens of a logged-in user with the user included;
- ``devices``: ``POST /api/devices`` as an installation registers (a logged-in user of its
  own, a new random token and fingerprint per request, with app metadata).

Every response is checked (``bench/wrk.lua`` counts non-2xx); the run fails if one is not
2xx. Beside the figures it reports the CPU each request costs the server and PostgreSQL,
read from /proc, and how much of the machine other processes used meanwhile: on a shared
two-core machine that is what makes two runs disagree. It waits (up to 30 s) for the
machine to go quiet before each run, and ``--repeat N`` alternates the servers N times
and reports medians. Finally it counts the SQL statements one request of each row runs
(in-process, with an engine event), so an N+1 shows up here first.

Settings that differ from production, on purpose: ``GUNICORN_MAX_REQUESTS=0`` (a worker
recycled mid-run costs a second of CPU; ``BENCH_MAX_REQUESTS`` overrides it), the access
log goes to /dev/null and ``LOG_LEVEL=WARNING``.

Worker count: 3 by default (``--workers`` or ``BENCH_WORKERS``). On two cores the service
did best with 3 sync workers (2 leave a core idle while a worker waits on PostgreSQL; 4
and 5 spend more CPU per request on scheduling and accept wake-ups and get slower); the
bare app is the same from 2 to 5.

It uses its own database, ``pushreg_bench`` (dropped, created and migrated at the start
of each run), talks only to 127.0.0.1, stops everything it started before it exits, and
exits non-zero when wrk or PostgreSQL is missing, a server does not start or a response
is not 2xx. Results go to ``bench/results/`` (git-ignored) as JSON; server logs beside
them.

    .venv/bin/python bench/run.py                       # the defaults (make bench)
    .venv/bin/python bench/run.py --repeat 3            # medians of three runs each
    .venv/bin/python bench/run.py --workers 2,3,4,5     # sweep WEB_CONCURRENCY
    .venv/bin/python bench/run.py --rows patch --duration 5
"""

import argparse
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PG_PORT = 5432
DATABASE = "pushreg_bench"
DATABASE_URL = f"postgresql://postgres@{HOST}:{PG_PORT}/{DATABASE}"
ADMIN_DSN = f"host={HOST} port={PG_PORT} user=postgres dbname=postgres connect_timeout=5"

JSONAPI = "application/vnd.api+json"
CLIENT_HEADERS = {"Accept": f"{JSONAPI}, application/json", "Content-Type": JSONAPI,
                  "Version": "3.1.23#839"}
LIST_PATH = "/api/apple_device_tokens?page%5Bsize%5D=100&include=user"
LIST_TOKENS = 100
CODE_IN_TEXT = re.compile(r"\b(\d{6})\b")

DEFAULT_WORKERS = "3"  # for both servers; the module docstring says why
TARGET_PATCH_RATIO = 0.35
TARGET_PATCH_P99_MS = 30.0
START_TIMEOUT = 30
NOISY_SHARE = 0.10
QUIET_SHARE = 0.10
STOP_TIMEOUT = 10

ROWS = {
    "patch": "token PATCH",
    "list": "token list, 100 + include=user",
    "devices": "devices POST, token+fingerprint",
}


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


# -- the machine ---------------------------------------------------------------------------
def ensure_wrk():
    if shutil.which("wrk"):
        return
    print("wrk is missing; installing it with apt-get", flush=True)
    if _apt("install", "-y", "wrk") != 0:
        _apt("update")
        _apt("install", "-y", "wrk")
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed and apt-get could not install it. Install it "
                         "(Debian/Ubuntu: `apt-get install wrk`, as root) and run again.")


def _apt(*args):
    if not shutil.which("apt-get"):
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "-q", *args], env=env, stdout=subprocess.DEVNULL,
                          check=False, timeout=600).returncode


def port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_postgres():
    if not port_open(PG_PORT):
        print(f"PostgreSQL is not answering on {HOST}:{PG_PORT}; starting it", flush=True)
        versions = sorted(os.listdir("/etc/postgresql")) if Path("/etc/postgresql").is_dir() \
            else []
        for version in versions:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                            "start"], check=False, timeout=60)
        deadline = time.monotonic() + 30
        while not port_open(PG_PORT) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not port_open(PG_PORT):
            raise BenchError(f"PostgreSQL is not running on {HOST}:{PG_PORT} and could not "
                             "be started (pg_ctlcluster <version> main start).")
    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            # Its own database, rebuilt by the migrations on every run: empty tables and a
            # schema that matches the code even when a migration was edited in place.
            connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{DATABASE}"')
    except psycopg.Error as exc:
        raise BenchError(f"cannot use PostgreSQL as user postgres (trust auth): {exc}") from exc
    migrate = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
                             cwd=ROOT, env=_server_env(), capture_output=True, text=True,
                             check=False, timeout=120)
    if migrate.returncode != 0:
        raise BenchError(f"migrations failed:\n{migrate.stdout}{migrate.stderr}")


def _server_env(**extra):
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "APP_ENV", "GUNICORN_BIND")}
    env.update(DATABASE_URL=DATABASE_URL, FLASK_APP="wsgi.py", LOG_LEVEL="WARNING",
               GUNICORN_ACCESS_LOG="/dev/null", GUNICORN_GRACEFUL_TIMEOUT="5",
               GUNICORN_MAX_REQUESTS=os.environ.get("BENCH_MAX_REQUESTS", "0"))
    env.update(extra)
    return env


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# -- servers -------------------------------------------------------------------------------
class Server:
    """One gunicorn, in its own process group, logging to a file in bench/results/."""

    def __init__(self, name, app_spec, workers, threads, extra_args=()):
        self.name = name
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.workers = workers
        self.threads = threads
        self.log_path = RESULTS / f"{name}.log"
        command = [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
                   *extra_args, app_spec]
        env = _server_env(PORT=str(self.port), WEB_CONCURRENCY=str(workers),
                          GUNICORN_THREADS=str(threads))
        self._log = open(self.log_path, "w")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                requests.get(f"{self.base_url}/api/apple_device_tokens", timeout=2,
                             headers=CLIENT_HEADERS)
            except requests.RequestException:
                time.sleep(0.2)
                continue
            time.sleep(1)  # the other workers finish booting
            if self.process.poll() is None:
                return
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise BenchError(f"{self.name} did not start on {self.base_url}; log "
                         f"{self.log_path}:\n{tail}")

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)  # graceful: workers finish up
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of this server's own process group (workers of a dead master).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"warning: {self.name} (pid {self.process.pid}) did not exit", flush=True)
        self._log.close()


# -- clients of the real service -----------------------------------------------------------
def _call(method, url, session_id=None, document=None, expect=(200,)):
    headers = dict(CLIENT_HEADERS)
    if session_id:
        headers["Authorization"] = f"Bearer {session_id}"
    body = json.dumps(document) if document is not None else None
    response = requests.request(method, url, data=body, headers=headers, timeout=10)
    if response.status_code not in expect:
        raise BenchError(f"{method} {url} answered {response.status_code}: "
                         f"{response.text[:500]}")
    return response


def create_session(base_url):
    response = _call("POST", f"{base_url}/api/sessions", document={
        "data": {"type": "sessions", "attributes": {"is_cookie_based": False}}},
        expect=(201,))
    return response.json()["data"]["id"]


def log_in(base_url):
    """A logged-in session, the way the client does it: number, texted code, code."""
    session_id = create_session(base_url)
    phone = f"+1555{secrets.randbelow(10**7):07d}"

    def patch(**attributes):
        return _call("PATCH", f"{base_url}/api/sessions/{session_id}", session_id, {
            "data": {"type": "sessions", "id": session_id, "attributes": attributes}})

    patch(phone_number=phone)
    with psycopg.connect(DATABASE_URL) as connection:
        row = connection.execute(
            'SELECT body FROM sms_outbox WHERE "to" = %s ORDER BY id DESC LIMIT 1',
            (phone,)).fetchone()
    if row is None or not CODE_IN_TEXT.search(row[0]):
        raise BenchError(f"no verification code in sms_outbox for {phone}")
    patch(verification_code=CODE_IN_TEXT.search(row[0]).group(1))
    return session_id


def token_document(token):
    return {"data": {"type": "apple_device_tokens", "id": token, "attributes": {
        "is_invalidated": False, "bundle_version": "3.1.23", "build_number": "839",
        "is_production": True, "bundle_id": "TTYL.Inc.Poparazzi", "is_voip": False}}}


def device_document():
    """What bench/wrk.lua's ``devices`` mode sends (DEVICE_BODY there)."""
    return {"data": {"type": "devices", "attributes": {
        "channel": "ios_push", "token": secrets.token_hex(32),
        "fingerprint": secrets.token_hex(16), "environment": "production",
        "bundle_id": "com.example.app", "app_version": "2.1.0", "build_number": "839",
        "device_model": "iPhone15,3", "os_version": "iOS 18.2", "time_zone": "Europe/Paris",
        "is_voip": False}}}


def register_token(base_url, session_id, token=None):
    token = token or secrets.token_hex(32)
    return _call("PATCH", f"{base_url}/api/apple_device_tokens/{token}", session_id,
                 token_document(token))


def prepare_service(base_url):
    """Sessions for the rows: an anonymous one for PATCH, a user with 100 tokens for list,
    a user of its own for devices (a fingerprint needs a user)."""
    patch_session = create_session(base_url)
    list_session = log_in(base_url)
    for _ in range(LIST_TOKENS):
        register_token(base_url, list_session)
    return {"patch": patch_session, "list": list_session, "devices": log_in(base_url)}


def sample_sizes(base_url, sessions):
    """Bytes of one response per row, so the bare app's documents can be compared."""
    sizes = {}
    if "patch" in sessions:
        sizes["patch"] = len(register_token(base_url, sessions["patch"]).content)
    if "devices" in sessions:
        sizes["devices"] = len(_call("POST", f"{base_url}/api/devices", sessions["devices"],
                                     device_document(), expect=(201,)).content)
    if "list" in sessions:
        response = _call("GET", base_url + LIST_PATH, sessions["list"])
        sizes["list"] = len(response.content)
        items = len(response.json()["data"])
        if sessions["list"] != "bare" and items != LIST_TOKENS:
            raise BenchError(f"the list row returned {items} tokens, not {LIST_TOKENS}")
    return sizes


# -- wrk -----------------------------------------------------------------------------------
def run_wrk(base_url, row, session_id, args, duration):
    lua_args = [row, session_id] if row in ("patch", "devices") \
        else ["get", session_id, LIST_PATH]
    command = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{duration}s",
               "--timeout", "10s", "--latency", "-s", str(BENCH / "wrk.lua"), base_url,
               "--", *lua_args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False,
                                timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {' '.join(command)}") from exc
    line = next((line for line in result.stdout.splitlines()
                 if line.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    stats = json.loads(line[len("BENCH_JSON "):])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["wrk_output"] = result.stdout.replace(line, "").strip()
    return stats


def wait_for_quiet(max_wait):
    """On a shared machine, wait (at most ``max_wait`` s) until others leave it idle enough.

    Both servers are idle here, so whatever the machine does is someone else's work."""
    if max_wait <= 0 or not Path("/proc/stat").exists():
        return None
    deadline = time.monotonic() + max_wait
    while True:
        busy = _machine_busy_share(1.0)
        if busy <= QUIET_SHARE or time.monotonic() >= deadline:
            return busy


def _machine_busy_share(seconds):
    def ticks():
        with open("/proc/stat") as stat:
            values = [int(value) for value in stat.readline().split()[1:]]
        return sum(values[:8]), values[3] + values[4]

    total_before, idle_before = ticks()
    time.sleep(seconds)
    total_after, idle_after = ticks()
    total = total_after - total_before
    return 1 - (idle_after - idle_before) / total if total else 0.0


def analyze_database():
    """Fresh planner statistics before each run. The PATCH row adds thousands of rows in
    seconds; with the statistics of a nearly empty table PostgreSQL plans the list query
    through the (channel, token) index and spends ~17 ms on it instead of ~0.1 ms."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute("ANALYZE")


def measure_once(server, row, session_id, args):
    analyze_database()
    busy = wait_for_quiet(args.quiet_wait)
    if busy is not None and busy > QUIET_SHARE:
        print(f"  (the machine is still {busy:.0%} busy with other work; measuring anyway)",
              flush=True)
    if args.warmup:
        run_wrk(server.base_url, row, session_id, args, args.warmup)
    with CpuMeter(server.process.pid) as meter:
        stats = run_wrk(server.base_url, row, session_id, args, args.duration)
    stats["cpu"] = meter.per_request(stats["requests"])
    print(f"  {server.name:<8} {ROWS[row]:<32} {_figures(stats)}", flush=True)
    return stats


def _figures(stats):
    latency = stats["latency_us"]
    text = (f"{stats['rps']:8.1f} req/s  p50 {latency['p50'] / 1000:6.2f} ms  "
            f"p99 {latency['p99'] / 1000:6.2f} ms  non-2xx {stats['non2xx']}")
    cpu = stats.get("cpu")
    if cpu:
        text += (f"  | cpu ms/req: server {cpu['server_ms']:.2f} postgres "
                 f"{cpu['postgres_ms']:.2f} wrk {cpu['wrk_ms']:.2f}; other load "
                 f"{cpu['other_share']:.0%}")
    return text


def summarise(runs):
    """The median of each figure over repeated runs (one run: that run)."""
    latency = runs[0]["latency_us"]
    summary = {
        "rps": statistics.median(run["rps"] for run in runs),
        "latency_us": {key: statistics.median(run["latency_us"][key] for run in runs)
                       for key in latency},
        "non2xx": sum(run["non2xx"] for run in runs),
        "errors": {key: sum(run["errors"][key] for run in runs) for key in runs[0]["errors"]},
        "runs": runs,
    }
    if all(run.get("cpu") for run in runs):
        summary["cpu"] = {key: statistics.median(run["cpu"][key] for run in runs)
                          for key in runs[0]["cpu"]}
    return summary


class CpuMeter:
    """CPU seconds spent during a run, read from /proc: by one server's process group, by
    the PostgreSQL backends of the bench database, by wrk, and by everything else on the
    machine (other people's work on a shared box, which distorts the figures)."""

    def __init__(self, server_pgid):
        self.server_pgid = server_pgid
        self.available = Path("/proc/stat").exists()
        self.tick = os.sysconf("SC_CLK_TCK") if self.available else 100

    def __enter__(self):
        self.before = self._sample()
        return self

    def __exit__(self, *_exc):
        self.after = self._sample()

    def per_request(self, requests):
        if not self.available or not requests:
            return None
        spent = {key: self.after[key] - self.before[key] for key in self.before}
        other = spent["machine"] - spent["server"] - spent["postgres"] - spent["wrk"]
        capacity = spent["elapsed"] * (os.cpu_count() or 1)
        return {"server_ms": 1000 * spent["server"] / requests,
                "postgres_ms": 1000 * spent["postgres"] / requests,
                "wrk_ms": 1000 * spent["wrk"] / requests,
                "machine_busy_share": spent["machine"] / capacity if capacity else 0.0,
                "other_share": max(other, 0.0) / capacity if capacity else 0.0}

    def _sample(self):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        sample = {"elapsed": time.monotonic(), "server": 0.0, "postgres": 0.0,
                  "wrk": children.ru_utime + children.ru_stime, "machine": 0.0}
        if not self.available:
            return sample
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
        sample["machine"] = (sum(ticks[:8]) - ticks[3] - ticks[4]) / self.tick
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / self.tick
            if int(fields[2]) == self.server_pgid:
                sample["server"] += seconds
                if int(pid) == self.server_pgid:  # the master: workers it has reaped
                    sample["server"] += (int(fields[13]) + int(fields[14])) / self.tick
            elif command.startswith("postgres:") and f" {DATABASE} " in command:
                sample["postgres"] += seconds
        return sample


# -- queries per request -------------------------------------------------------------------
def count_queries(sessions):
    """SQL statements (and commits) one request of each row runs, counted in-process."""
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import event

    from app import create_app
    from app.extensions import db

    app = create_app()
    with app.app_context():
        engine = db.engine
    seen = {"statements": [], "commits": 0}

    def on_statement(_conn, _cursor, statement, *_):
        seen["statements"].append(" ".join(statement.split()))

    def on_commit(_conn):
        seen["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    client = app.test_client()

    def one(method, path, session_id, document=None):
        seen["statements"].clear()
        seen["commits"] = 0
        headers = {**CLIENT_HEADERS, "Authorization": f"Bearer {session_id}"}
        response = client.open(path, method=method, headers=headers,
                               data=json.dumps(document) if document else None)
        if response.status_code not in (200, 201):
            raise BenchError(f"{method} {path} answered {response.status_code} in-process")
        return {"statements": len(seen["statements"]), "commits": seen["commits"],
                "sql": list(seen["statements"])}

    counts = {}
    if "patch" in sessions:
        tokens = [secrets.token_hex(32) for _ in range(3)]
        runs = [one("PATCH", f"/api/apple_device_tokens/{t}", sessions["patch"],
                    token_document(t)) for t in [*tokens, tokens[0]]]  # new x3, then again
        counts["patch"] = {**runs[0], "per_request": [r["statements"] for r in runs]}
    if "devices" in sessions:
        runs = [one("POST", "/api/devices", sessions["devices"], device_document())
                for _ in range(3)]
        counts["devices"] = {**runs[0], "per_request": [r["statements"] for r in runs]}
    if "list" in sessions:
        runs = [one("GET", LIST_PATH, sessions["list"]) for _ in range(2)]
        counts["list"] = {**runs[0], "per_request": [r["statements"] for r in runs]}
    with app.app_context():
        db.engine.dispose()
    return counts


# -- the run -------------------------------------------------------------------------------
def bench_workers(workers, rows, args):
    """Both servers up, loaded one at a time: service then bare per row, ``repeat`` times."""
    print(f"\nWEB_CONCURRENCY={workers} GUNICORN_THREADS={args.gunicorn_threads}: "
          f"wrk -t{args.wrk_threads} -c{args.connections}, {args.warmup}s warm-up + "
          f"{args.duration}s measured per run, {args.repeat} run(s) per figure, one server "
          "loaded at a time", flush=True)
    result = {"workers": workers, "rows": {}}
    servers = []
    try:
        service = Server("service", "wsgi:app", workers, args.gunicorn_threads)
        servers.append(service)
        bare = Server("bare", "bare_app:app", workers, args.gunicorn_threads,
                      ("--pythonpath", str(BENCH)))
        servers.append(bare)
        service.wait_ready()
        bare.wait_ready()
        sessions = prepare_service(service.base_url)
        sessions = {row: sessions[row] for row in rows}
        bare_sessions = {row: "bare" for row in rows}
        result["response_bytes"] = {"service": sample_sizes(service.base_url, sessions),
                                    "bare": sample_sizes(bare.base_url, bare_sessions)}
        runs = {(row, name): [] for row in rows for name in ("service", "bare")}
        for _ in range(args.repeat):
            for row in rows:
                runs[row, "service"].append(measure_once(service, row, sessions[row], args))
                runs[row, "bare"].append(measure_once(bare, row, bare_sessions[row], args))
    finally:
        for server in servers:
            server.stop()
    for row in rows:
        service_stats = summarise(runs[row, "service"])
        bare_stats = summarise(runs[row, "bare"])
        result["rows"][row] = {"service": service_stats, "bare": bare_stats,
                               "ratio": service_stats["rps"] / bare_stats["rps"]}
    if not args.no_query_count:
        result["queries"] = count_queries(sessions)
    return result


def report(results, args):
    print("\n" + "=" * 112)
    print(f"{'row':<32} {'W':>2} {'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>8} {'ratio':>7} {'cpu ms/req':>11} {'pg ms/req':>10} {'other':>6}")
    noisy = False
    for result in results:
        for row, figures in result["rows"].items():
            for name in ("service", "bare"):
                stats = figures[name]
                latency = stats["latency_us"]
                ratio = f"{figures['ratio']:.3f}" if name == "service" else ""
                cpu = stats.get("cpu") or {}
                noisy = noisy or cpu.get("other_share", 0) > NOISY_SHARE
                print(f"{ROWS[row]:<32} {result['workers']:>2} {name:<8} {stats['rps']:>9.1f} "
                      f"{latency['p50'] / 1000:>8.2f} {latency['p99'] / 1000:>8.2f} "
                      f"{stats['non2xx']:>8} {ratio:>7} {cpu.get('server_ms', 0):>11.2f} "
                      f"{cpu.get('postgres_ms', 0):>10.2f} {cpu.get('other_share', 0):>6.0%}")
        bytes_ = result.get("response_bytes", {})
        print(f"   response bytes service {bytes_.get('service')} / bare {bytes_.get('bare')}")
        for row, count in result.get("queries", {}).items():
            print(f"   queries per request, {ROWS[row]}: {count['statements']} statements "
                  f"+ {count['commits']} commit(s) (runs: {count['per_request']})")
        patch = result["rows"].get("patch")
        if patch and args.connections == 16:
            p99 = patch["service"]["latency_us"]["p99"] / 1000
            ratio_ok = patch["ratio"] >= TARGET_PATCH_RATIO
            p99_ok = p99 < TARGET_PATCH_P99_MS
            print(f"   targets (W={result['workers']}): PATCH ratio {patch['ratio']:.3f} >= "
                  f"{TARGET_PATCH_RATIO} {'met' if ratio_ok else 'MISSED'}; p99 {p99:.2f} ms "
                  f"< {TARGET_PATCH_P99_MS:.0f} ms {'met' if p99_ok else 'MISSED'}")
    print("   cpu ms/req: the server's CPU per request; pg: the PostgreSQL backends'; other: "
          "share of the machine used by processes that are not part of the run")
    if noisy:
        print(f"   WARNING: other processes used more than {NOISY_SHARE:.0%} of the machine "
              "during some runs; those figures understate both servers (try --repeat 3)")
    print("=" * 112, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default=os.environ.get("BENCH_WORKERS", DEFAULT_WORKERS),
                        help="WEB_CONCURRENCY for both servers; a comma list sweeps "
                             f"(default {DEFAULT_WORKERS})")
    parser.add_argument("--gunicorn-threads", type=int, default=1,
                        help="GUNICORN_THREADS for both servers (default 1: sync workers)")
    parser.add_argument("--rows", default="patch,list,devices",
                        help="comma list of rows: patch, list, devices (default all)")
    parser.add_argument("--duration", type=int, default=15, help="seconds measured per row")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per row")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per figure, alternating the servers; the median is "
                             "reported (default 1)")
    parser.add_argument("--quiet-wait", type=int, default=30,
                        help="seconds to wait, before each run, for other processes to "
                             "leave the machine idle (default 30; 0: do not wait)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--no-query-count", action="store_true",
                        help="skip counting SQL statements per request")
    args = parser.parse_args(argv)
    args.worker_counts = [int(w) for w in str(args.workers).split(",") if w.strip()]
    args.row_names = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = set(args.row_names) - set(ROWS)
    if unknown or not args.row_names:
        parser.error(f"rows are {', '.join(ROWS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    try:
        ensure_wrk()
        ensure_postgres()
        results = [bench_workers(workers, args.row_names, args)
                   for workers in args.worker_counts]
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # the servers were stopped on the way out
        print("bench: interrupted", file=sys.stderr)
        return 130
    report(results, args)
    record = {
        "started_at": started.isoformat(), "cpus": os.cpu_count(),
        "wrk": {"connections": args.connections, "threads": args.wrk_threads,
                "duration_s": args.duration, "warmup_s": args.warmup,
                "repeat": args.repeat},
        "gunicorn_threads": args.gunicorn_threads, "database": DATABASE,
        "results": results,
    }
    path = RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(record, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(record, indent=2))
    print(f"results: {path.relative_to(ROOT)}")
    failed = [(result["workers"], row, name) for result in results
              for row, figures in result["rows"].items() for name in ("service", "bare")
              if figures[name]["non2xx"] or figures[name]["errors"]["timeout"]]
    if failed:
        print(f"bench: non-2xx responses or timeouts in {failed}; figures are not valid",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
