"""Transaction-scoped advisory locks on PostgreSQL, named by text keys."""

from sqlalchemy import func, select


def advisory_locks(connection, keys, *, shared=False) -> None:
    """Take PostgreSQL's transaction-scoped advisory lock on each key (text), exclusive or
    ``shared``, in one statement and in sorted order (PostgreSQL evaluates the select list
    in order: two takers of the same keys cannot deadlock). Nothing elsewhere: SQLite's
    write lock already runs one writer at a time."""
    keys = sorted(keys)
    if connection.dialect.name != "postgresql" or not keys:
        return
    lock = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
    connection.execute(select(*(lock(func.hashtextextended(key, 0)) for key in keys)))
