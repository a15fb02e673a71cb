"""CPU per token registration, in-process: what the hottest request costs and where.

Wall-clock throughput on a shared machine measures the neighbours; ``time.process_time()``
around N ``PATCH /api/apple_device_tokens/<token>`` through Flask's test client measures
this process only (the database's own CPU is not counted: its round trips are, as the
client-side work of psycopg). Each request carries Poparazzi's headers, a session drawn
from a pool and a new random token, as ``bench/wrk.lua`` sends them.

    .venv/bin/python bench/profile_patch.py [--requests 3000] [--batches 5] [--profile]

``DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test_perf``) is migrated
first (``flask db upgrade``). ``--profile`` adds a cProfile breakdown of one more batch by
stage (cumulative CPU of each stage's entry function, per request).
"""

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test_perf"
GENEROUS = "1000000/hour"
RATE_SETTINGS = ("SESSION_CREATE_RATE_LIMIT", "ANONYMOUS_WRITE_RATE_LIMIT")

CLIENT_HEADERS = json.loads(
    (ROOT / "tests/contract/poparazzi/client.headers.json").read_text())["all_requests"]
BODY = ('{"data":{"type":"apple_device_tokens","id":"%s","attributes":{'
        '"is_invalidated":false,"bundle_version":"3.1.23","build_number":"839",'
        '"is_production":true,"bundle_id":"TTYL.Inc.Poparazzi","is_voip":false}}}')

# Stages of one request: (label, module path suffix, function name). A stage's figure is
# the cumulative CPU of its function (what it calls included), so nested stages overlap
# their parents: the table says which.
STAGES = (
    ("whole request (test client included)", "werkzeug/test.py", "open"),
    ("  WSGI app (Flask)", "flask/app.py", "wsgi_app"),
    ("    Flask cookie session (open_session)", "flask/sessions.py", "open_session"),
    ("    routing (url match)", "flask/ctx.py", "match_request"),
    ("    negotiation (before_request)", "app/jsonapi/flask.py", "negotiate"),
    ("    auth: current_principal (usual path, SQLite)", "app/web/auth.py", "current_principal"),
    ("      credential lookup (find_live)", "app/resources/credentials.py", "find_live"),
    ("        lifetime condition (ended)", "app/resources/credentials.py", "ended"),
    ("    view register_token", "app/api/apple_device_tokens.py", "register_token"),
    ("      query_for", "app/jsonapi/flask.py", "query_for"),
    ("      parse_resource", "app/jsonapi/document.py", "parse_resource"),
    ("        JSON parse (loads)", "app/jsonapi/untrusted.py", "loads"),
    ("        input hardening (unsafe_text)", "app/jsonapi/untrusted.py", "unsafe_text"),
    ("        schema load", "app/jsonapi/attributes.py", "load"),
    ("      caller + upsert in one statement (PostgreSQL)",
     "app/resources/devices/registration.py", "authenticate_and_register"),
    ("        last-use (note_use)", "app/resources/credentials.py", "note_use"),
    ("      devices.register (usual path, SQLite)", "app/resources/devices/registration.py",
     "register"),
    ("        upsert (_register_by_upsert)", "app/resources/devices/registration.py",
     "_register_by_upsert"),
    ("          as model (_as_model)", "app/resources/devices/registration.py", "_as_model"),
    ("        caps (keep_within_caps: SQLite only)", "app/resources/devices/ownership.py",
     "keep_within_caps"),
    ("      commit (the view)", "sqlalchemy/orm/scoping.py", "commit"),
    ("      render (resource_response)", "app/jsonapi/flask.py", "resource_response"),
    ("        renderer (URLs)", "app/jsonapi/flask.py", "renderer"),
    ("        document", "app/jsonapi/render.py", "document"),
    ("        JSON encode (jsonapi_response)", "app/jsonapi/flask.py", "jsonapi_response"),
    ("    after_request hooks", "flask/app.py", "process_response"),
    ("    teardown (session remove)", "flask/ctx.py", "pop"),
    ("  logging", "logging/__init__.py", "handle"),
    ("  SQL execute (all statements)", "sqlalchemy/orm/session.py", "_execute_internal"),
    ("  psycopg cursor.execute", "psycopg/cursor.py", "execute"),
)


def make_app():
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    for setting in RATE_SETTINGS:
        os.environ[setting] = GENEROUS
    from flask_migrate import upgrade

    from app import create_app

    app = create_app()
    with app.app_context():
        upgrade()
    return app


def session_pool(client, size):
    headers = dict(CLIENT_HEADERS)
    document = {"data": {"type": "sessions", "attributes": {"is_cookie_based": False}}}
    pool = []
    for _ in range(size):
        response = client.post("/api/sessions", data=json.dumps(document), headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        pool.append(response.get_json()["data"]["id"])
    return pool


def requests_for(pool, count, rng):
    """(path, body, headers) of ``count`` registrations, made before the clock starts."""
    prepared = []
    for _ in range(count):
        token = f"{rng.getrandbits(256):064x}"
        headers = {**CLIENT_HEADERS, "Authorization": f"Bearer {rng.choice(pool)}"}
        prepared.append((f"/api/apple_device_tokens/{token}", (BODY % token).encode(),
                         headers))
    return prepared


def run(client, prepared):
    for path, body, headers in prepared:
        response = client.patch(path, data=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"PATCH answered {response.status_code}: "
                             f"{response.get_data(as_text=True)}")


def cpu_per_request(client, prepared):
    started = time.process_time()
    run(client, prepared)
    return (time.process_time() - started) / len(prepared) * 1000


def breakdown(client, prepared):
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    run(client, prepared)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = []
    for label, module, function in STAGES:
        cumulative = sum(entry[3] for (path, _line, name), entry in stats.items()
                         if name == function and path.endswith(module))
        calls = sum(entry[1] for (path, _line, name), entry in stats.items()
                    if name == function and path.endswith(module))
        rows.append((label, cumulative / len(prepared) * 1000, calls / len(prepared)))
    return rows, profiler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=0,
                        help="also print the top functions by own time")
    parser.add_argument("--sort", default="tottime", help="order of --top: tottime, cumtime")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging_off = os.environ.get("LOG_LEVEL")
    app = make_app()
    client = app.test_client()
    rng = random.Random(args.seed)
    pool = session_pool(client, args.sessions)
    batch = max(1, args.requests // args.batches)
    run(client, requests_for(pool, 200, rng))  # warm-up: statement caches, imports
    figures = [cpu_per_request(client, requests_for(pool, batch, rng))
               for _ in range(args.batches)]
    print(f"LOG_LEVEL={logging_off or 'INFO (default)'}  {args.batches} batches of {batch}")
    print("CPU ms/request per batch: " + ", ".join(f"{figure:.3f}" for figure in figures))
    print(f"CPU ms/request median: {statistics.median(figures):.3f}")
    if args.profile:
        rows, profiler = breakdown(client, requests_for(pool, batch, rng))
        calls = pstats.Stats(profiler).total_calls / batch
        print(f"\nPython function calls per request (independent of load): {calls:.0f}")
        print("Breakdown under cProfile (inflated by the profiler; compare shares):")
        print(f"{'stage':48} {'ms/req':>8} {'calls/req':>9}")
        for label, milliseconds, calls in rows:
            print(f"{label:48} {milliseconds:8.3f} {calls:9.2f}")
        if args.top:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
