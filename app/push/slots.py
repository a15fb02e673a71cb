"""Send slots kept in the database (``send_slots``): a rate limit every worker process
keeps together, because each reserves its sends from the same row.

A scope's row holds the next free moment. Reserving sends ``interval`` apart schedules
them from ``max(next free, now)`` under the row's lock and moves the row past the last,
so two workers never get the same slot, on PostgreSQL and SQLite alike. Two limits
(Telegram's channel rate, then each chat's) compose by reserving the second with the
first's moments as the earliest. ``hold`` pushes a scope's next free moment to a later time (a 429's
``retry_after``).
"""

from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.database.engine import begin_writes_immediately
from app.database.upsert import insert_for
from app.models.send_slot import SendSlot

_slots = SendSlot.__table__


def reserve(engine, scope: str, earliest: list[datetime], interval: float,
            now: datetime) -> list[datetime]:
    """One moment for each send, in order, that is this caller's alone: none before its
    ``earliest``, none before the scope's next free moment, each ``interval`` seconds or
    more after the one before."""
    step = timedelta(seconds=interval)
    with _writing(engine) as connection:
        free = max(_locked(connection, scope, now), now)
        moments = []
        for moment in earliest:
            moments.append(max(moment, free))
            free = moments[-1] + step
        connection.execute(update(_slots).where(_slots.c.scope == scope)
                           .values(next_at=free))
    return moments


def hold(engine, scope: str, until: datetime, now: datetime) -> None:
    """Nothing in ``scope`` goes before ``until``."""
    with _writing(engine) as connection:
        if _locked(connection, scope, now) < until:
            connection.execute(update(_slots).where(_slots.c.scope == scope)
                               .values(next_at=until))


def _writing(engine):
    """A transaction that takes SQLite's write lock as it begins (a read first would let
    two workers read the same next free moment)."""
    begin_writes_immediately(True)
    return engine.begin()


def _locked(connection, scope, now) -> datetime:
    """The scope's next free moment, its row locked until the transaction ends (made
    when missing)."""
    connection.execute(insert_for(connection, _slots).values(scope=scope, next_at=now)
                       .on_conflict_do_nothing(index_elements=["scope"]))
    current = select(_slots.c.next_at).where(_slots.c.scope == scope)
    if connection.dialect.name == "postgresql":
        current = current.with_for_update()
    moment = connection.scalar(current)
    return moment.replace(tzinfo=now.tzinfo) if moment.tzinfo is None else moment
