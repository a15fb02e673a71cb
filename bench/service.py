"""The service and the bare Flask app under ``make bench``: starting them, and the
sessions, tokens and credentials the rows need."""

import json
import os
import re
import secrets
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psycopg
import requests
from machine import BenchError, database_url, recreate_database
from servers import BENCH, RESULTS, Server, gunicorn_env

ROOT = BENCH.parent
BIN = ROOT / ".venv" / "bin"
# BENCH_DATABASE: another name, so that two checkouts can bench on one PostgreSQL.
DATABASE = os.environ.get("BENCH_DATABASE", "pushreg_bench")
DATABASE_URL = database_url(DATABASE)

JSONAPI = "application/vnd.api+json"
CLIENT_HEADERS = {"Accept": f"{JSONAPI}, application/json", "Content-Type": JSONAPI,
                  "Version": "3.1.23#839"}
TOKENS_PATH = "/api/apple_device_tokens"
LIST_PATH = f"{TOKENS_PATH}?page%5Bsize%5D=100&include=user"
PAGE_SIZE = 100
CODE_IN_TEXT = re.compile(r"\b(\d{6})\b")


def prepare_database():
    recreate_database(DATABASE)
    migrate = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
                             cwd=ROOT, env=_env(), capture_output=True, text=True,
                             check=False, timeout=120)
    if migrate.returncode != 0:
        raise BenchError(f"migrations failed:\n{migrate.stdout}{migrate.stderr}")


# The bench makes its sessions and logins from one address: per-address limits that protect
# a real deployment would refuse them.
GENEROUS = "1000000/hour"
LIMITS = {name: GENEROUS for name in (
    "SESSION_CREATE_RATE_LIMIT", "ANONYMOUS_WRITE_RATE_LIMIT", "SMS_RATE_LIMIT_PER_ADDRESS",
    "SMS_RATE_LIMIT_PER_PHONE", "SMS_RATE_LIMIT_PER_PHONE_TOTAL", "SMS_GLOBAL_RATE_LIMIT")}


def _env(**extra):
    return gunicorn_env(os.environ, DATABASE_URL=DATABASE_URL, FLASK_APP="wsgi.py",
                        **LIMITS, **extra)


def start_service(workers, threads):
    return _gunicorn("service", "wsgi:app", workers, threads)


def start_bare(workers, threads):
    return _gunicorn("bare", "bare_app:app", workers, threads, "--pythonpath", str(BENCH))


def _gunicorn(name, app_spec, workers, threads, *extra_args):
    command = [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
               *extra_args, app_spec]
    env = _env(WEB_CONCURRENCY=str(workers), GUNICORN_THREADS=str(threads))
    return Server(name, command, env=env, cwd=ROOT, database=DATABASE,
                  probe_path=TOKENS_PATH)


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
    """A logged-in session and its user id, the way the client does it: number, texted
    code, code."""
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
    user = patch(verification_code=CODE_IN_TEXT.search(row[0]).group(1)).json()
    return session_id, user["data"]["relationships"]["user"]["data"]["id"]


def token_document(token):
    return {"data": {"type": "apple_device_tokens", "id": token, "attributes": {
        "is_invalidated": False, "bundle_version": "3.1.23", "build_number": "839",
        "is_production": True, "bundle_id": "TTYL.Inc.Poparazzi", "is_voip": False}}}


def register_token(base_url, session_id, token=None):
    token = token or secrets.token_hex(32)
    return _call("PATCH", f"{base_url}{TOKENS_PATH}/{token}", session_id,
                 token_document(token))


def device_document():
    """What bench/wrk.lua's ``devices`` mode sends (DEVICE_BODY there)."""
    return {"data": {"type": "devices", "attributes": {
        "channel": "ios_push", "token": secrets.token_hex(32),
        "fingerprint": secrets.token_hex(16), "environment": "production",
        "bundle_id": "com.example.app", "app_version": "2.1.0", "build_number": "839",
        "device_model": "iPhone15,3", "os_version": "iOS 18.2", "time_zone": "Europe/Paris",
        "is_voip": False}}}


def register_device(base_url, session_id):
    return _call("POST", f"{base_url}/api/devices", session_id, device_document(),
                 expect=(201,))


def write_credentials(name, credentials):
    """One credential a line, for wrk.lua. Throwaway sessions of the bench database, in
    the git-ignored results folder."""
    path = RESULTS / f"{name}.credentials"
    path.write_text("".join(f"{credential}\n" for credential in credentials))
    return path


def session_pool(base_url, size):
    """``size`` anonymous sessions, as Poparazzi has before its first login."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: create_session(base_url), range(size)))


def give_tokens(user_id, count):
    """``count`` tokens owned by ``user_id``, written straight into the table (one
    ``generate_series`` statement: a million take seconds, not the hours of the API)."""
    with psycopg.connect(DATABASE_URL) as connection:
        connection.execute("""
            INSERT INTO devices (id, channel, token, user_id, bundle_id, app_version,
                                 build_number, environment, is_voip, is_invalidated,
                                 created_at, updated_at, last_seen_at)
            SELECT gen_random_uuid(), 'ios_push', md5(%(user)s || i) || md5(i || %(user)s),
                   %(user)s::uuid, 'TTYL.Inc.Poparazzi', '3.1.23', '839', 'production',
                   false, false, now() - i * interval '1 millisecond',
                   now() - i * interval '1 millisecond', now() - i * interval '1 millisecond'
            FROM generate_series(1, %(count)s) AS i""", {"user": user_id, "count": count})
        connection.execute("ANALYZE devices")  # plan the page for the table as it now is


def sample_page(base_url, session_id, expect_items=None, times=3):
    """Bytes of one page, so the servers' documents can be compared, and the median
    milliseconds of ``times`` pages fetched one after another on an idle server: what one
    page costs, even when wrk's 16 connections queue past its timeout."""
    elapsed = []
    for _ in range(times):
        response = _call("GET", base_url + LIST_PATH, session_id)
        elapsed.append(response.elapsed.total_seconds() * 1000)
    items = len(response.json()["data"])
    if expect_items is not None and items != expect_items:
        raise BenchError(f"{LIST_PATH} returned {items} items, not {expect_items}")
    return len(response.content), statistics.median(elapsed)


# -- queries per request -------------------------------------------------------------------
def _sends_commit(connection):
    """Whether this commit is a round trip: none when the statements ran in autocommit
    (app/database/engine.py, ``_begin_lazily``)."""
    from psycopg.pq import TransactionStatus

    status = connection.connection.dbapi_connection.info.transaction_status
    return int(status != TransactionStatus.IDLE)


def count_queries(patch_session=None, list_sessions=()):
    """SQL statements (and commits) one request runs, counted in-process: for the PATCH
    (three new tokens, then one again) and for each list session (twice)."""
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
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen["statements"].append(
                     " ".join(statement.split())))
    event.listen(engine, "commit", lambda connection: seen.__setitem__(
        "commits", seen["commits"] + _sends_commit(connection)))
    client = app.test_client()

    def one(method, path, session_id, document=None):
        seen["statements"].clear()
        seen["commits"] = 0
        headers = {**CLIENT_HEADERS, "Authorization": f"Bearer {session_id}"}
        response = client.open(path, method=method, headers=headers,
                               data=json.dumps(document) if document else None)
        if response.status_code != 200:
            raise BenchError(f"{method} {path} answered {response.status_code} in-process")
        return {"statements": len(seen["statements"]), "commits": seen["commits"],
                "longest": max(map(len, seen["statements"]), default=0),
                "sql": list(seen["statements"])}

    def summary(runs):
        return {**runs[0], "per_request": [run["statements"] for run in runs]}

    counts = {}
    if patch_session:
        tokens = [secrets.token_hex(32) for _ in range(3)]
        counts["patch"] = summary([one("PATCH", f"{TOKENS_PATH}/{token}", patch_session,
                                       token_document(token))
                                   for token in [*tokens, tokens[0]]])
    for key, session_id in dict(list_sessions).items():
        counts[key] = summary([one("GET", LIST_PATH, session_id) for _ in range(2)])
    with app.app_context():
        db.engine.dispose()
    return counts
