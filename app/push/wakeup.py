"""Waking an idle push worker on time (the embedded queue; ``worker.py``'s lanes).

A worker's idle lanes share one wait, the ``Alarm``: one clock reads when the ledger's
next delivery is due (``ledger.next_due``: pending rows' earliest ``next_attempt_at``,
sending rows' earliest lease end, one index read) and rings the lanes at that moment, or
at once when told that something changed:

- on PostgreSQL, by ``NOTIFY push_due`` (``notify_due``), which every transaction that
  makes work for the workers issues — accepting a notification, accepting an audience,
  a step of its expansion, a delivery put back to pending — and which PostgreSQL delivers
  at commit to the ``DueListener`` of every worker (one connection per worker process):
  the idle lanes look at once (an audience to expand is not a due delivery), and the
  clock reads the ledger again (the work may be due later);
- in the worker's own process, by its lanes: one that becomes idle makes the clock read
  the ledger again (what it just recorded may be due sooner).

Without a listener (SQLite, or while the listener's connection is down) nothing is heard
from other processes, so the clock reads the ledger every ``UNHEARD_POLL`` seconds at
most; with one, every ``PUSH_POLL_INTERVAL`` seconds at most (rows written by an operator's
SQL, or by a release that does not notify, are found then).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import text

from app.models.types import utcnow

log = logging.getLogger(__name__)

CHANNEL = "push_due"
UNHEARD_POLL = 0.25  # seconds between reads of the ledger when no NOTIFY can be heard
RING_GAP = 0.05  # seconds between rings while something due cannot be claimed (locked)
LISTEN_CHECK = 30.0  # seconds of silence after which the listener checks its connection
RECONNECT_DELAY = 1.0
LISTENER_NAME = "pushreg-push-listener"  # its application_name in pg_stat_activity


def notify_due(connection) -> None:
    """Tell the listening workers that work was written, in ``connection``'s transaction
    (PostgreSQL delivers it at commit, once however often it is sent); nothing on SQLite."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


async def _first_of(*awaitables) -> set:
    """Wait until the first of ``awaitables`` finishes (the others are cancelled): the
    finished tasks."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    return done


class Alarm:
    """The one wait of a worker's idle lanes, and the clock that ends it.

    A lane takes the ``bell`` before it looks for work and, finding none, waits on it
    (``idle``): a ring in between (new work heard of) ends the wait at once."""

    def __init__(self, next_due: Callable[[], datetime | None], poll_interval: float,
                 stopping: asyncio.Event):
        """``next_due``: when the next delivery is due (None: nothing is waiting), read in
        a thread."""
        self._next_due = next_due
        self._poll_interval = poll_interval
        self._stopping = stopping
        self._bell = asyncio.Event()
        self._look_again = asyncio.Event()
        self._waiting = 0  # lanes waiting on the current bell
        self._someone_idle = asyncio.Event()
        self.listener: DueListener | None = None

    @property
    def bell(self) -> asyncio.Event:
        return self._bell

    @property
    def interval(self) -> float:
        """The longest the clock goes without reading the ledger."""
        if self.listener is not None and self.listener.listening:
            return self._poll_interval
        return min(self._poll_interval, UNHEARD_POLL)

    async def idle(self, bell: asyncio.Event) -> None:
        """Wait until ``bell`` rings (something may be due) or the worker stops."""
        if bell.is_set():  # rung while the lane was looking: look again
            return
        self._waiting += 1
        self._someone_idle.set()
        self.look_again()
        await _first_of(bell.wait(), self._stopping.wait())

    def ring(self) -> None:
        """Wake every idle lane now."""
        bell, self._bell = self._bell, asyncio.Event()
        self._waiting = 0
        self._someone_idle.clear()
        bell.set()

    def heard(self) -> None:
        """Work was written (a notification, an audience to expand, a retry): the idle
        lanes look now, and the clock reads the ledger again."""
        self.ring()
        self.look_again()

    def look_again(self) -> None:
        """Something may be due sooner than the clock thinks: read the ledger again."""
        self._look_again.set()

    async def run(self) -> None:
        """The clock, until the worker stops; it reads the ledger only while a lane is
        idle."""
        rang_for_due = False
        while not self._stopping.is_set():
            await _first_of(self._someone_idle.wait(), self._stopping.wait())
            if self._stopping.is_set():
                return
            self._look_again.clear()
            due_in = await self._due_in()
            if due_in is not None and due_in <= 0:
                if rang_for_due:  # the lanes found it taken (another worker's claim)
                    await _first_of(asyncio.sleep(RING_GAP), self._stopping.wait())
                self.ring()
                rang_for_due = True
                continue
            rang_for_due = False
            wait = self.interval if due_in is None else min(due_in, self.interval)
            await _first_of(self._look_again.wait(), asyncio.sleep(wait),
                            self._stopping.wait())
            if due_in is not None and due_in <= wait and not self._look_again.is_set():
                self.ring()

    async def _due_in(self) -> float | None:
        """Seconds until the next delivery is due (None: nothing waits, or the ledger
        cannot be read now)."""
        try:
            due = await asyncio.to_thread(self._next_due)
        except Exception:
            log.warning("push worker: the next due delivery could not be read",
                        exc_info=True)
            return None
        return None if due is None else (due - utcnow()).total_seconds()


class DueListener:
    """``LISTEN push_due`` on a connection of its own; each notification makes the alarm
    read the ledger again. A lost connection is opened again every ``RECONNECT_DELAY``
    seconds; meanwhile the alarm polls (``Alarm.interval``), and the loss is logged once."""

    def __init__(self, conninfo: str, alarm: Alarm):
        self._conninfo = conninfo
        self._alarm = alarm
        self.listening = False

    async def run(self) -> None:
        import psycopg  # only PostgreSQL listens: psycopg is one of the postgres extras

        lost = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True, connect_timeout=10,
                        application_name=LISTENER_NAME) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._heard(True, lost)
                    lost = False
                    await self._listen(connection)
            except (psycopg.Error, OSError) as exc:
                if not lost:
                    log.warning("push worker: not listening for %s (%s): reading the "
                                "ledger every %g s until it is back", CHANNEL,
                                type(exc).__name__, UNHEARD_POLL)
                lost = True
                self._heard(False, lost)
            await asyncio.sleep(RECONNECT_DELAY)

    async def _listen(self, connection) -> None:
        while True:
            async for _ in connection.notifies(timeout=LISTEN_CHECK):
                self._alarm.heard()
            await connection.execute("SELECT 1")  # a dead connection raises here

    def _heard(self, listening: bool, was_lost: bool) -> None:
        if listening and was_lost:
            log.warning("push worker: listening for %s again", CHANNEL)
        self.listening = listening
        # what was notified while not listening is read now; the poll changes with it
        self._alarm.look_again()


@contextlib.asynccontextmanager
async def running(alarm: Alarm, engine):
    """The alarm's clock, and on PostgreSQL its listener, while the block runs."""
    tasks = [asyncio.create_task(alarm.run())]
    if engine.dialect.name == "postgresql":
        conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        alarm.listener = DueListener(conninfo, alarm)
        tasks.append(asyncio.create_task(alarm.listener.run()))
    try:
        yield alarm
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
