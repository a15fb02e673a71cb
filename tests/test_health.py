"""``/healthz`` and ``/readyz``: what a load balancer asks, on both databases."""

import contextlib
import socket
import time
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from app import create_app
from app.config import TestConfig as AppConfig  # not "Test*": pytest would collect it
from app.extensions import db
from app.models import WorkerHeartbeat
from app.models.types import utcnow
from app.push.heartbeat import Heartbeat
from app.version import __version__

pytestmark = pytest.mark.committed  # /readyz reads on a connection of its own

PUSH_CONFIGURED = {"APNS_KEY": "/keys/AuthKey.p8", "APNS_KEY_ID": "ABC123DEFG",
                   "APNS_TEAM_ID": "DEF123GHIJ", "APNS_BUNDLE_ID": "com.example.app"}


def app_on(database_url, **settings):
    config = AppConfig(database_url)
    for name, value in settings.items():
        setattr(config, name, value)
    return create_app(config)


@pytest.fixture
def unreachable_database_url(request, tmp_path):
    if request.config.getoption("--db") == "sqlite":
        return f"sqlite:///{tmp_path}"  # a directory: SQLite cannot open it
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/pushreg"


@pytest.fixture
def push_configured(monkeypatch):
    for name, value in PUSH_CONFIGURED.items():
        monkeypatch.setenv(name, value)


def ready(app):
    response = app.test_client().get("/readyz")
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, response.get_json()


def test_a_migrated_reachable_database_is_ready(app):
    status, body = ready(app)
    assert status == 200
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["migrations"]["status"] == "ok"
    assert body["checks"]["migrations"]["current"] == body["checks"]["migrations"]["head"]
    assert body["checks"]["push_workers"]["status"] == "not checked"  # no APNS_* here


def test_an_unreachable_database_is_not_ready_but_the_process_is_alive(
        unreachable_database_url):
    app = app_on(unreachable_database_url)
    status, body = ready(app)
    assert status == 503
    assert body["checks"]["database"]["status"] == "failing"
    assert body["checks"]["migrations"] == {"status": "not checked"}
    assert "127.0.0.1" not in body["checks"]["database"]["detail"]

    live = app.test_client().get("/healthz")
    assert live.status_code == 200
    assert live.get_json() == {"status": "ok", "version": __version__,
                               "checks": {"process": {"status": "ok"}}}


@contextlib.contextmanager
def silent_server():
    """A port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_database_that_does_not_answer_is_not_ready_within_the_readiness_timeout():
    with silent_server() as port:
        app = app_on(f"postgresql://postgres@127.0.0.1:{port}/pushreg",
                     READINESS_TIMEOUT=1.0, DATABASE_CONNECT_TIMEOUT=25)
        started = time.monotonic()
        status, body = ready(app)
    assert status == 503
    assert body["checks"]["database"]["status"] == "failing"
    # libpq waits at least 2 s; the requests' own connect timeout (25 s) is not the one used
    assert time.monotonic() - started < 15


@contextlib.contextmanager
def schema_at(app, revision):
    """The database says it is at ``revision`` (as if the code were deployed before the
    migration ran), then back."""
    with app.app_context(), db.engine.begin() as connection:
        versions = sa.table("alembic_version", sa.column("version_num"))
        head = connection.execute(sa.select(versions.c.version_num)).scalar_one()
        connection.execute(sa.update(versions).values(version_num=revision))
    try:
        yield
    finally:
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(sa.update(versions).values(version_num=head))


def test_a_database_behind_the_migrations_is_not_ready(app):
    with schema_at(app, "0004"):
        status, body = ready(app)
    assert status == 503
    migrations = body["checks"]["migrations"]
    assert migrations["status"] == "failing"
    assert migrations["current"] == ["0004"]
    assert "flask db upgrade" in migrations["detail"]
    assert ready(app)[0] == 200


def beat(app, age=0.0, worker_id="web-1:100"):
    with app.app_context():
        Heartbeat(db.engine, 5, worker_id).beat({"sent": 3})
        if age:
            with db.engine.begin() as connection:
                connection.execute(sa.update(WorkerHeartbeat).values(
                    beat_at=utcnow() - timedelta(seconds=age)))


def test_with_push_configured_a_fresh_worker_heartbeat_is_needed(
        database_url, push_configured):
    app = app_on(database_url, PUSH_HEARTBEAT_MAX_AGE=30.0)

    status, body = ready(app)
    assert status == 503
    assert "no push worker" in body["checks"]["push_workers"]["detail"]

    beat(app, age=31)
    status, body = ready(app)
    assert status == 503
    assert body["checks"]["push_workers"]["newest_heartbeat_age"] >= 31

    beat(app, worker_id="web-2:200")  # a second worker, beating now
    status, body = ready(app)
    assert status == 200, body
    assert body["checks"]["push_workers"]["status"] == "ok"
    assert body["checks"]["push_workers"]["newest_heartbeat_age"] < 30


def test_probes_need_no_credential_and_meet_no_rate_limit(app):
    client = app.test_client()
    for _ in range(30):
        assert client.get("/healthz", headers={"Accept": None}).status_code == 200
        assert client.get("/readyz", headers={"Accept": None}).status_code == 200


def _access_log(live_server):
    return (live_server.stdout_path.parent / "access.log").read_text()


def test_succeeding_probes_stay_out_of_the_access_log(live):
    with requests.Session() as http:
        http.trust_env = False
        for _ in range(3):
            assert http.get(f"{live.url}/healthz", timeout=10).status_code == 200
            assert http.get(f"{live.url}/readyz", timeout=10).status_code == 200
        assert http.post(f"{live.url}/healthz", timeout=10).status_code == 405
        marker = "/api/configs/9.9.9"
        http.get(f"{live.url}{marker}", timeout=10)
    deadline = time.monotonic() + 10
    while marker not in _access_log(live):  # written once the response has gone
        assert time.monotonic() < deadline
        time.sleep(0.1)
    log = _access_log(live)
    assert '"POST /healthz' in log  # a failing probe is logged
    assert '"GET /healthz' not in log and '"GET /readyz' not in log
