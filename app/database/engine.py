"""Engine set-up that differs per database.

Every wait on the database is bounded by configuration, so a held lock or an unreachable
server ends a request in a 503 instead of tying up the worker until gunicorn kills it:
PostgreSQL gets a connect timeout and its ``statement_timeout`` and ``lock_timeout`` as
start-up options (no extra round trip), SQLite a busy timeout.

SQLite is tuned so several gunicorn workers can share one file: WAL lets readers run
beside the writer, the busy timeout makes a writer wait instead of failing, and write
requests open their transaction with ``BEGIN IMMEDIATE`` so two of them never both hold
a read snapshot and then collide on upgrade to a write lock ("database is locked"). Once a
request's write is committed, what it still reads (to render its answer) begins deferred,
so the write lock is not held while the response is rendered.
"""

import contextlib
import enum
import logging
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.extensions import db

log = logging.getLogger(__name__)
_write_transactions = ContextVar("write_transactions", default=False)


def begin_writes_immediately(enabled):
    """Make the transactions of the current request take SQLite's write lock up front,
    until its write is committed."""
    _write_transactions.set(enabled)


@contextlib.contextmanager
def write_transaction(engine):
    """``engine.begin()`` for a transaction that writes, outside a request (the push
    worker's threads): on SQLite it takes the write lock as it begins. Begun deferred, one
    that reads first fails at once with "database is locked" when another connection has
    written since that read (WAL's stale snapshot: the busy timeout does not wait for it)."""
    with engine.connect() as connection:
        token = _write_transactions.set(True)
        try:
            transaction = connection.begin()  # SQLite's BEGIN is sent here (on_begin)
        finally:
            _write_transactions.reset(token)
        with transaction:
            yield connection


def engine_options(config):
    """``SQLALCHEMY_ENGINE_OPTIONS`` with the timeouts the configured database takes."""
    options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "postgresql":
        options["connect_args"] = {
            **options.get("connect_args", {}),
            "connect_timeout": config["DATABASE_CONNECT_TIMEOUT"],
            "options": _postgresql_options(url.query.get("options"), config),
        }
    return options


def _postgresql_options(given, config):
    """libpq's start-up ``options``: the timeouts after any the URL already sets."""
    timeouts = (f"-c statement_timeout={_milliseconds(config['DATABASE_STATEMENT_TIMEOUT'])} "
                f"-c lock_timeout={_milliseconds(config['DATABASE_LOCK_TIMEOUT'])}")
    return f"{given} {timeouts}" if given else timeouts


def _milliseconds(seconds):
    return max(1, round(seconds * 1000))


# Execution option of a statement that may run outside a transaction (see _begin_lazily).
OWN_TRANSACTION = "own_transaction"


def configure_engine(engine, config):
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, _milliseconds(config["DATABASE_LOCK_TIMEOUT"]))
    elif engine.dialect.name == "postgresql":
        _begin_lazily(engine)


def _begin_lazily(engine):
    """psycopg opens a transaction with a BEGIN round trip of its own. A connection is
    handed out in autocommit, and the first statement not marked ``OWN_TRANSACTION``
    turns it off (psycopg then sends BEGIN before that statement), so everything from there
    to the commit is one transaction, as before. Marked statements run as their own
    transaction while none is open: the credential lookup every request starts with (a
    single read), and the token upsert its caller commits at once. The hottest request
    is then two round trips instead of four (BEGIN, lookup, upsert, COMMIT)."""
    from psycopg.pq import TransactionStatus  # only PostgreSQL needs the postgres extra

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection, _record, _proxy):
        if dbapi_connection.info.transaction_status == TransactionStatus.IDLE:
            dbapi_connection.autocommit = True

    @event.listens_for(engine, "before_cursor_execute")
    def on_execute(connection, _cursor, _statement, _parameters, context, _executemany):
        options = context.execution_options
        if options.get(OWN_TRANSACTION) or "isolation_level" in options:
            return
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection.autocommit:
            dbapi_connection.autocommit = False


def _configure_sqlite(engine, busy_timeout_ms):
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # SQLite's lock wait: a writer waits this long for the write lock.
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        mode = "BEGIN IMMEDIATE" if _write_transactions.get() else "BEGIN"
        connection.exec_driver_sql(mode)

    @event.listens_for(engine, "commit")
    def on_commit(_connection):
        begin_writes_immediately(False)


class EarlyCommit(enum.Enum):
    """Every commit made before the view, command or job that called a service has
    finished: each names what would go wrong if the commit waited. A new early commit is
    a new member here, for review beside the others."""

    CREDENTIAL_IN_USE = ("a read-only request must still record that the credential is in "
                         "use, or an active one would reach its idle timeout")
    CODE_BEFORE_GATEWAY = ("the code and the rate-limit hits are kept before the gateway is "
                           "called, so no lock is held while it answers")
    UNSENT_CODE_VOID = "a code that was never texted must not stay valid"
    WRONG_TRY_COUNTS = "a wrong try counts although the request fails"
    BEFORE_CHANNEL_MANAGEMENT = ("no lock is held while APNs's channel management API "
                                 "answers, and the provider token it may renew is stored on "
                                 "a connection of its own, which the lock would block")


def commit_early(why):
    """Commit before the view, command or job that called the service has finished.

    The rule is that only that caller commits; the exceptions are ``EarlyCommit``'s
    members, and ``why`` must be one. Each is logged at DEBUG, so a trace of a request
    shows where its work was committed.
    """
    if not isinstance(why, EarlyCommit):
        raise TypeError(f"commit_early takes an EarlyCommit, not {why!r}")
    log.debug("early commit: %s", why.name)
    writes = _write_transactions.get()
    db.session.commit()
    begin_writes_immediately(writes)  # the request goes on writing
