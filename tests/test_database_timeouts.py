"""Waits on the database are bounded: a held lock, a slow statement or a silent server end
a request in a JSON:API 503 with Retry-After, long before gunicorn's worker timeout, and
requests that need no database keep being answered meanwhile."""

import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from app.config import normalise_database_url
from tests.conftest import free_port
from tests.live_server import LiveServer, PoparazziClient, contract

pytestmark = pytest.mark.slow

WORKERS, THREADS = 2, 2
# Well beyond every timeout the servers below are given, well below the lock's hold: a
# request still waiting when the client gives up was not bounded.
CLIENT_TIMEOUT = 10.0

BOUNDS = {
    "lock": {"DATABASE_LOCK_TIMEOUT": "0.5", "DATABASE_STATEMENT_TIMEOUT": "20"},
    "statement": {"DATABASE_LOCK_TIMEOUT": "20", "DATABASE_STATEMENT_TIMEOUT": "0.5"},
}


def _is_sqlite(database_url):
    return database_url.startswith("sqlite")


@contextmanager
def _server(env, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("gunicorn")
    env = {**env, "GUNICORN_THREADS": str(THREADS),
           "GUNICORN_ACCESS_LOG": str(log_dir / "access.log")}
    server = LiveServer(free_port(), env, log_dir, workers=WORKERS)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert not [line for line in server.logs(limit=10**7).splitlines()
                if "Traceback" in line or "WORKER TIMEOUT" in line], server.logs()


@pytest.fixture(scope="module", params=sorted(BOUNDS))
def bounded_server(request, service_env, database_url, tmp_path_factory):
    if request.param == "statement" and _is_sqlite(database_url):
        pytest.skip("SQLite has no statement timeout; its busy timeout is the lock bound")
    with _server({**service_env, **BOUNDS[request.param]}, tmp_path_factory) as server:
        yield server


@contextmanager
def _write_lock_held(database_url):
    """Another connection holding what a new session needs, until the block ends."""
    if _is_sqlite(database_url):
        connection = sqlite3.connect(sa.engine.make_url(database_url).database,
                                     isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
    else:
        engine = sa.create_engine(normalise_database_url(database_url),
                                  poolclass=sa.pool.NullPool)
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("BEGIN")
        connection.exec_driver_sql("LOCK TABLE credentials IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        if not _is_sqlite(database_url):
            connection.exec_driver_sql("ROLLBACK")
        connection.close()


def _poparazzi(server):
    return PoparazziClient(server.url, timeout=CLIENT_TIMEOUT)


def _create_session(server):
    client = _poparazzi(server)
    try:
        return client.request("POST", "/api/sessions", contract("sessions.post.request.json"))
    finally:
        client.close()


def _assert_retry_later(response):
    assert response.status_code == 503, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "1"


def _assert_configs_answered(server):
    client = _poparazzi(server)
    try:
        assert client.request("GET", "/api/configs/3.1.23").status_code == 200
    finally:
        client.close()


def test_a_held_lock_is_503_for_every_waiting_request(bounded_server, database_url):
    requests_at_once = WORKERS * THREADS + 1  # more than the server can serve at a time
    with _write_lock_held(database_url), ThreadPoolExecutor(requests_at_once) as pool:
        responses = list(pool.map(lambda _: _create_session(bounded_server),
                                  range(requests_at_once)))
        for response in responses:
            _assert_retry_later(response)
        _assert_configs_answered(bounded_server)
    assert _create_session(bounded_server).status_code == 201


def test_reads_wait_for_a_table_lock_no_longer_than_writes(bounded_server, database_url):
    if _is_sqlite(database_url):
        pytest.skip("SQLite readers never wait for the writer (WAL)")
    session_id = _create_session(bounded_server).json()["data"]["id"]
    client = _poparazzi(bounded_server)
    client.session_id = session_id
    try:
        with _write_lock_held(database_url):
            _assert_retry_later(client.request("GET", f"/api/sessions/{session_id}"))
        assert client.request("GET", f"/api/sessions/{session_id}").status_code == 200
    finally:
        client.close()


@contextmanager
def _silent_database():
    """A port that accepts connections and never says a word, like a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/pushreg"


def test_an_unanswering_database_is_503_and_configs_still_answer(service_env,
                                                                 tmp_path_factory):
    with _silent_database() as url:
        env = {**service_env, "DATABASE_URL": url, "DATABASE_CONNECT_TIMEOUT": "1"}
        with _server(env, tmp_path_factory) as server:
            _assert_retry_later(_create_session(server))
            _assert_configs_answered(server)
