"""``make bench``: the service under gunicorn on PostgreSQL beside a bare Flask app and
django-push-notifications.

A benchmark, not a test. Three servers run under gunicorn with the same worker count: the
service; ``bench/bare_app.py`` (bare Flask, no database, no marshmallow: the same request
parsed and a document of about the same size returned); and django-push-notifications
(DPN) with Django REST framework, the well-known Django way of registering APNs devices
(``bench/dpn/``, in its own virtual environment ``bench/.venv-dpn`` made on the first run,
on its own database). wrk loads one server at a time (16 connections, 2 threads, a 3 s
warm-up, then 15 s measured); each row prints requests/s, p50 and p99 per server and the
ratios service/bare and service/DPN:

- token registration (rows ``patch`` and ``dpn``): the service's ``PATCH
  /api/apple_device_tokens/<token>`` as Poparazzi sends it, and the bare app's; DPN's
  ``POST /device/apns/`` with ``{"registration_id": <token>, "active": true}`` and
  ``Authorization: Token <key>`` (its ``APNSDeviceAuthorizedViewSet``). Each request
  registers a new random 64-hex token (so requests do not queue on one row's lock) with
  a credential drawn from a pool (``--auth-pool``, 1,000: anonymous sessions of the
  service, users with DRF tokens for DPN);
- page of 100 (row ``list``): ``GET /api/apple_device_tokens?page[size]=100&include=user``
  by a logged-in user who owns ``--page-rows`` tokens (by default 10^3 and 10^6, written
  straight into the table with ``generate_series``): keyset pages should cost the same
  whatever the size. The bare app's page is measured once.

Every response is checked (``bench/wrk.lua`` counts non-2xx); the run fails if one is not
2xx. Beside the figures it reports the CPU each request costs the server and PostgreSQL,
read from /proc, and how much of the machine other processes used meanwhile: on a shared
two-core machine that is what makes two runs disagree. It waits (up to 30 s) for the
machine to go quiet before each run, and ``--repeat N`` alternates the servers N times
and reports medians. Finally it counts the SQL statements one request of each row runs
(in-process: an engine event for the service, Django's query capture for DPN), so an N+1
shows up here first.

Settings that differ from production, on purpose: ``GUNICORN_MAX_REQUESTS=0`` (a worker
recycled mid-run costs a second of CPU; ``BENCH_MAX_REQUESTS`` overrides it), the access
log goes to /dev/null and ``LOG_LEVEL=WARNING``. DPN runs with ``DEBUG`` off, persistent
database connections and one row a token (``bench/dpn/settings.py`` says why).

Worker count: 3 by default (``--workers`` or ``BENCH_WORKERS``). On two cores the service
did best with 3 sync workers (2 leave a core idle while a worker waits on PostgreSQL; 4
and 5 spend more CPU per request on scheduling and accept wake-ups and get slower); the
bare app is the same from 2 to 5.

It uses its own databases, ``pushreg_bench`` and ``pushreg_bench_dpn`` (dropped, created
and migrated at the start of each run), talks only to 127.0.0.1, stops everything it
started before it exits, and exits non-zero when wrk or PostgreSQL is missing, a server
does not start or a response is not 2xx. Results go to ``bench/results/`` (git-ignored)
as JSON; server logs beside them.

    .venv/bin/python bench/run.py                       # the defaults (make bench)
    .venv/bin/python bench/run.py --repeat 3            # medians of three runs each
    .venv/bin/python bench/run.py --workers 2,3,4,5     # sweep WEB_CONCURRENCY
    .venv/bin/python bench/run.py --rows patch,dpn --duration 5
    .venv/bin/python bench/run.py --rows list --page-rows 1000,100000,1000000
"""

import argparse
import json
import os
import signal
import statistics
import sys
from datetime import UTC, datetime

import dpn_server
import service
from machine import (
    QUIET_SHARE,
    BenchError,
    CpuMeter,
    analyze,
    ensure_postgres,
    ensure_wrk,
    wait_drained,
    wait_for_quiet,
)
from report import DEVICES, REGISTER, SERVERS, report
from servers import RESULTS, run_wrk

DEFAULT_WORKERS = "3"  # for every server; the module docstring says why
DEFAULT_PAGE_ROWS = "1000,1000000"
DEFAULT_AUTH_POOL = 1000
ROW_CHOICES = {
    "patch": "token registration: the service's PATCH and the bare app's",
    "dpn": "token registration: django-push-notifications' POST (the service's PATCH too)",
    "list": "page of 100 tokens with include=user, at each --page-rows",
    "devices": "device registration: POST /api/devices (token and fingerprint), and the "
               "bare app's twin",
}
DEVICE_USERS = 10  # a fingerprint needs a logged-in user: the row's requests share these


class Measurement:
    """What wrk loads for one figure: a server, the wrk.lua arguments, and the row and
    server names the figure is filed under."""

    def __init__(self, row, server, lua_args):
        self.row = row
        self.server = server
        self.lua_args = lua_args

    @property
    def key(self):
        return self.row, self.server.name


def list_row(rows):
    return f"list@{rows}"


# -- setting up ----------------------------------------------------------------------------
def start_servers(servers, args, workers):
    """The servers the rows need, into ``servers`` as each starts (the caller stops them
    whatever happens), then waited for."""
    wanted = set(args.row_names)
    servers["service"] = service.start_service(workers, args.gunicorn_threads)
    if wanted & {"patch", "list", "devices"}:
        servers["bare"] = service.start_bare(workers, args.gunicorn_threads)
    if "dpn" in wanted:
        servers["dpn"] = dpn_server.start(workers, args.gunicorn_threads)
    for server in servers.values():
        server.wait_ready()


class Preparation:
    """What the rows need, gathered before any load: the figures to measure in order,
    sample response sizes, one page's time alone, and sessions for the query count."""

    def __init__(self, servers):
        self.servers = servers
        self.base = {name: server.base_url for name, server in servers.items()}
        self.measurements = []
        self.sizes = {}
        self.page_alone_ms = {}
        self.patch_session = None
        self.list_sessions = {}

    def add(self, row, server_name, *lua_args):
        self.measurements.append(Measurement(row, self.servers[server_name],
                                             [str(arg) for arg in lua_args]))

    def registration(self, auth_pool, with_bare, dpn_credentials):
        pool = service.session_pool(self.base["service"], auth_pool)
        self.patch_session = pool[0]
        self.add(REGISTER, "service", "patch", service.write_credentials("service", pool))
        self.sizes[REGISTER, "service"] = len(
            service.register_token(self.base["service"], pool[0]).content)
        if with_bare:
            self.add(REGISTER, "bare", "patch", service.write_credentials("bare", ["bare"]))
            self.sizes[REGISTER, "bare"] = len(
                service.register_token(self.base["bare"], "bare").content)
        if dpn_credentials:
            self.add(REGISTER, "dpn", "dpn", dpn_credentials)

    def devices(self):
        users = [service.log_in(self.base["service"])[0] for _ in range(DEVICE_USERS)]
        self.devices_session = users[0]
        self.add(DEVICES, "service", "devices", service.write_credentials("devices", users))
        self.sizes[DEVICES, "service"] = len(
            service.register_device(self.base["service"], users[0]).content)
        self.add(DEVICES, "bare", "devices", service.write_credentials("bare", ["bare"]))
        self.sizes[DEVICES, "bare"] = len(
            service.register_device(self.base["bare"], "bare").content)

    def pages(self, page_row_counts):
        for rows in page_row_counts:
            row = list_row(rows)
            session_id, user_id = service.log_in(self.base["service"])
            print(f"  writing {rows:,} tokens for the list row", flush=True)
            service.give_tokens(user_id, rows)
            self.list_sessions[row] = session_id
            self.add(row, "service", "get", service.write_credentials(row, [session_id]),
                     service.LIST_PATH)
            self.sizes[row, "service"], self.page_alone_ms[row] = service.sample_page(
                self.base["service"], session_id, expect_items=service.PAGE_SIZE)
        self.add("list", "bare", "get", service.write_credentials("bare", ["bare"]),
                 service.LIST_PATH)
        self.sizes["list", "bare"], self.page_alone_ms["list (bare)"] = service.sample_page(
            self.base["bare"], "bare")

    def record(self):
        return {"response_bytes": {f"{row}/{name}": size
                                   for (row, name), size in self.sizes.items()},
                "page_alone_ms": self.page_alone_ms}


def prepare(servers, args, dpn_credentials):
    wanted = set(args.row_names)
    preparation = Preparation(servers)
    if wanted & {"patch", "dpn"}:
        preparation.registration(args.auth_pool, "patch" in wanted, dpn_credentials)
    if "list" in wanted:
        preparation.pages(args.page_row_counts)
    if "devices" in wanted:
        preparation.devices()
    return preparation


# -- measuring -----------------------------------------------------------------------------
def measure_once(measurement, args):
    server = measurement.server
    analyze(server.database)
    busy = wait_for_quiet(args.quiet_wait)
    if busy is not None and busy > QUIET_SHARE:
        print(f"  (the machine is still {busy:.0%} busy with other work; measuring anyway)",
              flush=True)
    if args.warmup:
        run_wrk(server.base_url, measurement.lua_args, args, args.warmup)
    with CpuMeter(server.process.pid, server.database) as meter:
        stats = run_wrk(server.base_url, measurement.lua_args, args, args.duration)
    stats["cpu"] = meter.per_request(stats["requests"])
    print(f"  {server.name:<8} {measurement.row:<16} {_figures(stats)}", flush=True)
    if not wait_drained(server.process.pid, server.database):
        print(f"  ({server.name} was still busy two minutes after the run)", flush=True)
    return stats


def _figures(stats):
    latency = stats["latency_us"]
    text = (f"{stats['rps']:8.1f} req/s  p50 {latency['p50'] / 1000:6.2f} ms  "
            f"p99 {latency['p99'] / 1000:6.2f} ms  non-2xx {stats['non2xx']}  "
            f"timeouts {stats['errors']['timeout']}")
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


def tabulate(runs):
    """Rows of figures per server, with the ratios: the bare app's single list figure is
    the baseline of every list row."""
    figures = {key: summarise(stats) for key, stats in runs.items()}
    rows = {}
    for (row, name), summary in figures.items():
        if row != "list":
            rows.setdefault(row, {})[name] = summary
    for row, servers in rows.items():
        if row.startswith("list@") and ("list", "bare") in figures:
            servers["bare"] = figures["list", "bare"]
        for baseline in ("bare", "dpn"):
            if "service" in servers and baseline in servers:
                servers[f"ratio_{baseline}"] = (servers["service"]["rps"]
                                                / servers[baseline]["rps"])
    return rows


def bench_workers(workers, args):
    """Every server up, loaded one at a time, each figure ``repeat`` times."""
    print(f"\nWEB_CONCURRENCY={workers} GUNICORN_THREADS={args.gunicorn_threads}: "
          f"wrk -t{args.wrk_threads} -c{args.connections}, {args.warmup}s warm-up + "
          f"{args.duration}s measured per run, {args.repeat} run(s) per figure, one server "
          "loaded at a time", flush=True)
    service.prepare_database()
    result = {"workers": workers}
    dpn_credentials = None
    if "dpn" in args.row_names:
        dpn_credentials, dpn_queries = dpn_server.prepare(args.auth_pool)
    servers = {}
    try:
        start_servers(servers, args, workers)
        preparation = prepare(servers, args, dpn_credentials)
        runs = {measurement.key: [] for measurement in preparation.measurements}
        for _ in range(args.repeat):
            for measurement in preparation.measurements:
                runs[measurement.key].append(measure_once(measurement, args))
    finally:
        for server in servers.values():
            server.stop()
    result.update(preparation.record(), rows=tabulate(runs))
    if not args.no_query_count:
        result["queries"] = service.count_queries(preparation.patch_session,
                                                  preparation.list_sessions)
        if dpn_credentials:
            result["queries"]["dpn"] = dpn_queries
    return result


# -- the command ---------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="rows: " + "; ".join(f"{name}: {text}" for name, text in ROW_CHOICES.items()))
    parser.add_argument("--workers", default=os.environ.get("BENCH_WORKERS", DEFAULT_WORKERS),
                        help="WEB_CONCURRENCY for every server; a comma list sweeps "
                             f"(default {DEFAULT_WORKERS})")
    parser.add_argument("--gunicorn-threads", type=int, default=1,
                        help="GUNICORN_THREADS for every server (default 1: sync workers)")
    parser.add_argument("--rows", default=",".join(ROW_CHOICES),
                        help=f"comma list of rows: {', '.join(ROW_CHOICES)} (default all)")
    parser.add_argument("--page-rows", default=DEFAULT_PAGE_ROWS,
                        help="comma list of how many tokens the caller of the list row owns; "
                             f"one list figure each (default {DEFAULT_PAGE_ROWS})")
    parser.add_argument("--auth-pool", type=int, default=DEFAULT_AUTH_POOL,
                        help="credentials the registration rows draw from: service sessions, "
                             f"DPN users with tokens (default {DEFAULT_AUTH_POOL})")
    parser.add_argument("--duration", type=int, default=15, help="seconds measured per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per run")
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
    args.worker_counts = _numbers(parser, "--workers", args.workers)
    args.page_row_counts = _numbers(parser, "--page-rows", args.page_rows)
    args.row_names = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = set(args.row_names) - set(ROW_CHOICES)
    if unknown or not args.row_names:
        parser.error(f"rows are {', '.join(ROW_CHOICES)}")
    if args.auth_pool < 1:
        parser.error("--auth-pool is at least 1")
    return args


def _numbers(parser, option, text):
    try:
        numbers = [int(item) for item in str(text).split(",") if item.strip()]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        parser.error(f"{option} is a comma list of positive whole numbers")
    return numbers


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    try:
        ensure_wrk()
        ensure_postgres()
        if "dpn" in args.row_names:
            dpn_server.ensure_venv()
        results = [bench_workers(workers, args) for workers in args.worker_counts]
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
        "gunicorn_threads": args.gunicorn_threads, "auth_pool": args.auth_pool,
        "databases": [service.DATABASE, dpn_server.DATABASE], "results": results,
    }
    path = RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(record, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(record, indent=2))
    print(f"results: {path.relative_to(service.ROOT)}")
    failed = [(result["workers"], row, name) for result in results
              for row, servers in result["rows"].items() for name in SERVERS
              if name in servers and (servers[name]["non2xx"]
                                      or servers[name]["errors"]["timeout"])]
    if failed:
        print(f"bench: non-2xx responses or timeouts in {failed}; figures are not valid",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
