"""The push worker's threads write through ``write_transaction``: on SQLite it takes the
write lock as it begins, so a transaction that reads and then writes waits for another
writer instead of failing with "database is locked" (two lanes handing their chunks back
at once on shutdown lost one hand-back that way)."""

import threading

import pytest
import sqlalchemy as sa

from app.database.engine import configure_engine, write_transaction


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    configure_engine(engine, {"DATABASE_LOCK_TIMEOUT": 5})
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
    yield engine
    engine.dispose()


def _add_one(connection):
    n = connection.exec_driver_sql("SELECT n FROM counter").scalar_one()
    connection.exec_driver_sql(f"UPDATE counter SET n = {n + 1}")


def test_a_read_then_write_waits_for_another_writer_and_neither_fails(engine):
    other_done = threading.Event()
    failures = []

    def other_writer():
        try:
            with write_transaction(engine) as connection:
                _add_one(connection)
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)
        other_done.set()

    with write_transaction(engine) as connection:
        _add_one(connection)  # read, then write, while the other one tries to begin
        other = threading.Thread(target=other_writer)
        other.start()
        assert not other_done.wait(0.3), "the other writer did not wait for this one"
    other.join(10)

    assert failures == []
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar_one() == 2


def test_a_deferred_read_then_write_fails_where_write_transaction_waits(engine):
    """What ``write_transaction`` prevents: a plain ``begin()`` reads from a snapshot that
    a writer then makes stale, and its own write is refused at once."""
    with (pytest.raises(sa.exc.OperationalError, match="database is locked"),
          engine.begin() as connection):
        connection.exec_driver_sql("SELECT n FROM counter").scalar_one()
        with write_transaction(engine) as other:
            _add_one(other)
        connection.exec_driver_sql("UPDATE counter SET n = 10")


def test_reads_after_a_write_transaction_begin_deferred(engine):
    with write_transaction(engine) as connection:
        _add_one(connection)
    with engine.connect() as reader:
        reader.exec_driver_sql("SELECT n FROM counter").scalar_one()
        # a deferred reader leaves the write lock free for a writer
        with write_transaction(engine) as writer:
            _add_one(writer)
