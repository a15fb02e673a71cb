"""Engine set-up that differs per database.

SQLite is tuned so several gunicorn workers can share one file: WAL lets readers run
beside the writer, the busy timeout makes a writer wait instead of failing, and write
requests open their transaction with ``BEGIN IMMEDIATE`` so two of them never both hold
a read snapshot and then collide on upgrade to a write lock ("database is locked").
"""

from contextvars import ContextVar

from sqlalchemy import event

from app.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000

_write_transactions = ContextVar("write_transactions", default=False)


def begin_writes_immediately(enabled):
    """Make the transactions of the current request take SQLite's write lock up front."""
    _write_transactions.set(enabled)


def configure_engine(engine):
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)


def _configure_sqlite(engine):
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        mode = "BEGIN IMMEDIATE" if _write_transactions.get() else "BEGIN"
        connection.exec_driver_sql(mode)


def commit_early(why):
    """Commit before the function a view, command or job called has finished.

    The rule is that only that function commits; these are the exceptions, each naming
    (in ``why``) what would go wrong if the commit waited.
    """
    del why  # the reason is for the reader of the call site
    db.session.commit()
