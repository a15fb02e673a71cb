"""Send permits kept in the database (``send_slots``): rate limits every worker process
keeps together, because each takes its permits from the same rows.

A limit of ``count`` sends in any ``window`` seconds is ``count`` rows (``Limit``), each
holding the moment its permit is free again. A send takes one free permit of each of its
limits (``take``: Telegram's channel, then its chat), all or none, right before its request
leaves; once the answer is back, ``give_back`` frees each permit ``window`` seconds after
that answer. Freed after the answer, one permit never serves two requests that reach the
receiver less than ``window`` apart, however long either spent on the way, so at most
``count`` arrive in any ``window`` at the other end. (Slots booked ahead pace only when
requests leave: a delayed request and a punctual one can arrive together.)

Taking writes a lease (the send's timeout and more) into the rows: a worker that dies
mid-send leaves its permits to free themselves then. A scope's hold row (``hold``: a 429's
``retry_after``) stops all taking until it passes; its lock also makes the takers of one
channel take in turn (SQLite's BEGIN IMMEDIATE does the same), so no permit is taken twice.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.database.engine import write_transaction
from app.database.upsert import insert_for
from app.models.send_slot import SendSlot

_slots = SendSlot.__table__


@dataclass(frozen=True)
class Limit:
    """At most ``len(scopes)`` sends in any ``window`` seconds: one permit row a scope."""
    scopes: tuple[str, ...]
    window: float

    @classmethod
    def per_second(cls, name: str, rate: float) -> "Limit":
        """``rate`` sends a second as whole permits: ``floor(rate)`` (at least one) in a
        window of ``permits / rate`` seconds (one second for a whole ``rate``)."""
        permits = max(1, int(rate))
        return cls(tuple(f"{name}#{index}" for index in range(permits)), permits / rate)


@dataclass(frozen=True)
class Taken:
    """The permits one send holds (each with its limit's window) and its lease's end."""
    permits: tuple[tuple[str, float], ...]
    leased_until: datetime


@dataclass(frozen=True)
class Busy:
    """Nothing taken: try again at ``until`` (a permit in use may be given back sooner);
    ``held``: the whole scope is held until then."""
    until: datetime
    held: bool


def take(engine, hold_scope: str, limits: Sequence[Limit], now: datetime, lease: float
         ) -> Taken | Busy:
    """A free permit of each limit, taken until ``now + lease``; or, when ``hold_scope`` is
    held or some limit has none free, when to try again (nothing taken)."""
    with write_transaction(engine) as connection:
        held_until = _locked(connection, hold_scope, now)
        if held_until > now:
            return Busy(held_until, held=True)
        chosen = []
        for limit in limits:
            scope, free_at = _first_free(connection, limit.scopes, now)
            if free_at > now:
                return Busy(free_at, held=False)
            chosen.append((scope, limit.window))
        until = now + timedelta(seconds=lease)
        connection.execute(update(_slots).where(_slots.c.scope.in_([s for s, _ in chosen]))
                           .values(next_at=until))
    return Taken(tuple(chosen), until)


def give_back(engine, taken: Taken, answered_at: datetime) -> None:
    """Each permit is free ``window`` seconds after the answer came back: unless its lease
    ran out meanwhile and another send holds it now (its lease is another moment)."""
    with write_transaction(engine) as connection:
        for scope, window in taken.permits:
            connection.execute(
                update(_slots).where(_slots.c.scope == scope,
                                     _slots.c.next_at == taken.leased_until)
                .values(next_at=answered_at + timedelta(seconds=window)))


def hold(engine, scope: str, until: datetime, now: datetime) -> None:
    """Nothing in ``scope`` goes before ``until``."""
    with write_transaction(engine) as connection:
        if _locked(connection, scope, now) < until:
            connection.execute(update(_slots).where(_slots.c.scope == scope)
                               .values(next_at=until))


def _locked(connection, scope, now) -> datetime:
    """The scope's next free moment, its row locked until the transaction ends (made
    when missing)."""
    connection.execute(insert_for(connection, _slots).values(scope=scope, next_at=now)
                       .on_conflict_do_nothing(index_elements=["scope"]))
    current = select(_slots.c.next_at).where(_slots.c.scope == scope)
    if connection.dialect.name == "postgresql":
        current = current.with_for_update()
    return _aware(connection.scalar(current), now)


def _first_free(connection, scopes: tuple[str, ...], now) -> tuple[str, datetime]:
    """The permit of ``scopes`` free soonest, and when; a permit with no row yet is free
    now (its row is made)."""
    rows = dict(connection.execute(select(_slots.c.scope, _slots.c.next_at)
                                   .where(_slots.c.scope.in_(scopes))).all())
    missing = [scope for scope in scopes if scope not in rows]
    if missing:
        connection.execute(insert_for(connection, _slots).values(
            [{"scope": scope, "next_at": now} for scope in missing])
            .on_conflict_do_nothing(index_elements=["scope"]))
        return missing[0], now
    scope = min(rows, key=rows.__getitem__)
    return scope, _aware(rows[scope], now)


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment.replace(tzinfo=now.tzinfo) if moment.tzinfo is None else moment
