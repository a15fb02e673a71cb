"""Fixtures: one app per test run, its database built by the migrations; each test inside a
transaction rolled back at teardown (or, for tests that need real commits, the tables
emptied after it); a JSON:API client that validates every JSON:API response it receives."""

import os
import socket

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.config import GENEROUS_TEST_RATE, TestConfig
from app.extensions import db
from app.push.provider_token import ProviderTokenSigner
from tests.fake_apns import make_key
from tests.jsonapi_schema import JSONAPI, assert_valid_jsonapi
from tests.live_server import LiveServer, service_environment

CLIENT_HEADERS = {"Accept": f"{JSONAPI}, application/json", "Content-Type": JSONAPI}
# Every app the tests make (and the servers and commands they start, through service_env)
# signs with this key, not a development key generated in the repository's instance/.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "0123456789" * 4)


def pytest_addoption(parser):
    parser.addoption("--db", choices=("sqlite", "postgresql"), default="sqlite",
                     help="the database the suite runs on (postgresql: TEST_DATABASE_URL)")


def pytest_report_header(config):
    return f"database: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory):
    if request.config.getoption("--db") == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    url = os.environ.get("TEST_DATABASE_URL")
    problem = None if url else "TEST_DATABASE_URL is not set"
    if url and not _reachable(url):
        problem = f"PostgreSQL at {sa.engine.make_url(url).render_as_string()} is unreachable"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.exit(f"CI=true and the PostgreSQL run is mandatory: {problem}", returncode=1)
        pytest.skip(f"PostgreSQL run skipped: {problem}")
    return url


def _reachable(url):
    from app.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app(TestConfig(database_url))
    app.test_client_class = JsonApiClient
    with app.app_context():
        _drop_everything(db.engine)
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def _drop_everything(engine):
    """Start from an empty database whatever an earlier run left in it."""
    leftovers = sa.MetaData()
    leftovers.reflect(bind=engine)
    leftovers.drop_all(bind=engine)


# Fixtures whose tests read the database from other connections, threads or processes:
# those tests commit for real and the tables are emptied after them.
COMMITTING_FIXTURES = frozenset({"live", "live_server", "service_env", "second_app",
                                 "proxied_client"})


@pytest.fixture(autouse=True)
def _isolated(request):
    """Each in-process test runs inside one transaction on one connection, rolled back at
    teardown; what the code under test commits is a SAVEPOINT released inside it."""
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    if request.node.get_closest_marker("committed") or \
            COMMITTING_FIXTURES & set(request.fixturenames):
        yield
        _empty_tables(app)
        return
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
    connection = engine.connect()
    transaction = connection.begin()
    engines[None] = connection  # every session of the app now runs on this connection
    try:
        yield
    finally:
        engines[None] = engine
        with app.app_context():
            db.session.remove()
            del db.session.session_factory.kw["join_transaction_mode"]
        transaction.rollback()
        connection.close()


def _empty_tables(app):
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield
        db.session.remove()


class JsonApiClient(FlaskClient):
    """Sends Poparazzi's headers by default and checks every JSON:API answer's shape."""

    def open(self, *args, **kwargs):
        headers = {**CLIENT_HEADERS, **(kwargs.pop("headers", None) or {})}
        kwargs["headers"] = {k: v for k, v in headers.items() if v is not None}
        response = super().open(*args, **kwargs)
        if response.mimetype == JSONAPI and response.status_code != 204 \
                and response.request.method != "HEAD":  # HEAD: the GET's headers, no body
            assert_valid_jsonapi(response.get_json())
        return response


@pytest.fixture(scope="session")
def service_env(app, database_url):
    """What a live server and the CLI run with: the migrated test database, the test app's
    secret, texts kept in the outbox."""
    return service_environment(
        DATABASE_URL=database_url,
        SECRET_KEY=app.config["SECRET_KEY"],
        SMS_SENDER="outbox",
        # Every test client is 127.0.0.1; the per-phone limit stays the default.
        SMS_RATE_LIMIT_PER_ADDRESS="1000/hour",
        SESSION_CREATE_RATE_LIMIT=GENEROUS_TEST_RATE,
        ANONYMOUS_WRITE_RATE_LIMIT=GENEROUS_TEST_RATE,
    )


@pytest.fixture(scope="module")
def live_server(service_env, tmp_path_factory):
    """wsgi.py under gunicorn (3 workers, 2 threads each) on a free port, for one module."""
    log_dir = tmp_path_factory.mktemp("gunicorn")
    env = {**service_env, "GUNICORN_THREADS": "2",
           "GUNICORN_ACCESS_LOG": str(log_dir / "access.log")}
    server = LiveServer(free_port(), env, log_dir, workers=3)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live(live_server):
    """The server, and after the test: nothing it logged was an error."""
    since = live_server.log_size()
    yield live_server
    errors = live_server.server_errors(since)
    assert not errors, "gunicorn logged errors:\n" + "\n".join(errors[:40])


@pytest.fixture(scope="session")
def key_file(tmp_path_factory):
    """An APNs provider key (.p8) for the fake APNs and the clients that talk to it."""
    path = tmp_path_factory.mktemp("apns") / "AuthKey_TEST.p8"
    make_key(path)
    return path


@pytest.fixture(scope="session")
def public_key(key_file):
    return ProviderTokenSigner.from_key(str(key_file), "k", "t").key.public_key()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
