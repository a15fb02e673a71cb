"""The scale-out queue (``PUSH_QUEUE=procrastinate``): procrastinate jobs on PostgreSQL, each
naming a chunk of deliveries; workers on any number of machines run them.

The ledger stays the source of truth. A job carries delivery ids, never a push: its worker
claims those of them that are due through ``ledger.claim_ids`` (same states, same leases
as the embedded queue), so a duplicated, retried or late job finds its rows taken or sent
and sends nothing twice. Jobs are written in the transaction that writes what they name:

- accepting a notification enqueues its deliveries in chunks, each job scheduled for its
  deliveries' moment (``next_attempt_at``: now, a ``send_at``, a local time; ``enqueue``);
- accepting one for an audience enqueues its expansion (``enqueue_expansion``): an
  ``EXPAND`` job expands one chunk (``expansion.step``), enqueues that chunk's deliveries
  (at their moments) and its own follow-up in the same transaction, so a job that dies
  is run again (a stalled job) from the position the last committed step left;
- a delivery put back to pending (a retry after its backoff, a paused topic, a chunk handed
  back on shutdown) is enqueued again for when it is due (``ProcrastinateQueue.requeue``,
  which the dispatcher calls);
- a job whose rows are not due yet (a backoff, another worker's lease) defers the rest of
  itself to when they are.

A sweep (at start and every ``SWEEP_CRON``) puts the jobs of workers that stopped beating
back to ``todo`` (procrastinate's stalled jobs) and, when no job is waiting, enqueues
deliveries due for longer than a lease that no job names (written by an older release or
under the embedded queue).

procrastinate's tables and functions live in their own PostgreSQL schema (``SCHEMA``, made
by migration 0006): its connections put it on their ``search_path``, and deferring on the
application's connection puts it there for the statement.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

import procrastinate
from sqlalchemy import select, text

from app.database.engine import write_transaction
from app.models import Notification
from app.models.types import utcnow
from app.push import ledger

log = logging.getLogger(__name__)
notifications_table = Notification.__table__

SCHEMA = "procrastinate"
QUEUE = "push"
DELIVER = "push.deliver"
EXPAND = "push.expand"
SWEEP = "push.sweep"
SWEEP_CRON = "* * * * * */10"  # every ten seconds (the sixth field is seconds)
SWEEP_PRIORITY = 10  # ahead of a backlog of deliveries: it finds what is stuck
FOLLOW_UP_GAP = 0.1  # seconds at least between a job and its follow-up
JOB_SPAN = timedelta(seconds=0.25)  # the most a delivery waits for the rest of its job
# A job scheduled for later is fetched by polling (its insert's NOTIFY came too early):
# how often an idle worker asks (or PUSH_POLL_INTERVAL, if shorter). With JOB_SPAN, a
# delivery is sent at most 0.75 s (and a claim) after its moment.
SCHEDULED_JOB_POLL = 0.5
STRAYS_PER_SWEEP = 100_000
_EARLIEST = datetime.min.replace(tzinfo=UTC)  # sorts before any moment

# procrastinate logs each job at INFO, naming its hundreds of delivery ids: its warnings
# and errors stay, the rest shows with LOG_LEVEL=DEBUG.
if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
    logging.getLogger("procrastinate").setLevel(logging.WARNING)

# Deferring on a caller's connection needs no pool: this app is never opened.
_deferring = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())


# -- enqueueing, in the caller's transaction ----------------------------------------------


def enqueue(connection, due: dict[int, datetime | None], chunk_size: int) -> int:
    """Jobs for deliveries (id → when due; None or past: now), on ``connection``
    (SQLAlchemy), in its transaction: the number of jobs.

    A job names at most ``chunk_size`` deliveries whose moments lie within ``JOB_SPAN`` of
    each other, and is scheduled at the latest of them: when it runs every one of them is
    due (none waits for a follow-up), and none waited more than ``JOB_SPAN`` for it. A
    notification's jobs are its deliveries ÷ ``chunk_size``, plus at most one for every
    ``JOB_SPAN`` its moments spread over (local times fall on a few moments, one a time
    zone; a throttle's moments on at most four jobs a second)."""
    now = utcnow()
    moments = {id_: at if at is not None and at > now else None for id_, at in due.items()}
    by_time: dict[datetime | None, list[dict]] = {}
    for at, ids in _jobs(moments, chunk_size):
        by_time.setdefault(at, []).append({"ids": ids})
    driver = connection.connection.driver_connection
    with _on_search_path(driver):
        for at, jobs in by_time.items():
            _deferring.configure_task(DELIVER, queue=QUEUE, connection=driver,
                                      schedule_at=at).batch_defer(*jobs)
    return sum(len(jobs) for jobs in by_time.values())


def _jobs(moments: dict[int, datetime | None], chunk_size: int):
    """(when, ids) of each job: the ids in moment order, cut at ``chunk_size`` and where a
    moment is more than ``JOB_SPAN`` after the job's first."""
    ordered = sorted(moments, key=lambda id_: (moments[id_] or _EARLIEST, id_))
    ids: list[int] = []
    for id_ in ordered:
        if ids and (len(ids) == chunk_size or not _within_span(moments[ids[0]], moments[id_])):
            yield moments[ids[-1]], ids
            ids = []
        ids.append(id_)
    if ids:
        yield moments[ids[-1]], ids


def _within_span(first: datetime | None, at: datetime | None) -> bool:
    if first is None or at is None:
        return first is at
    return at - first <= JOB_SPAN


def enqueue_notification(connection, notification_id, chunk_size: int) -> int:
    """Jobs for every delivery of a notification just accepted, each at its moment."""
    return _enqueue_where(connection, ledger.deliveries.c.notification_id == notification_id,
                          chunk_size)


def enqueue_deliveries(connection, ids: list[int], chunk_size: int) -> int:
    """Jobs for deliveries just written (a step of an expansion), each at its moment."""
    if not ids:
        return 0
    return _enqueue_where(connection, ledger.among(connection, ledger.deliveries.c.id, ids),
                          chunk_size)


def _enqueue_where(connection, condition, chunk_size: int) -> int:
    table = ledger.deliveries
    due = dict(connection.execute(
        select(table.c.id, table.c.next_attempt_at).where(condition)).all())
    return enqueue(connection, due, chunk_size)


def enqueue_expansion(connection, notification_id) -> None:
    """A job expanding the next chunk of a notification's audience."""
    driver = connection.connection.driver_connection
    with _on_search_path(driver):
        _deferring.configure_task(EXPAND, queue=QUEUE, connection=driver).defer(
            notification_id=str(notification_id))


@contextlib.contextmanager
def _on_search_path(driver):
    """procrastinate's schema first on the search path, for this transaction's statements
    until the block ends (its SQL names its objects unqualified). On an error the
    transaction is rolled back, and the setting with it."""
    before = driver.execute("SELECT current_setting('search_path')").fetchone()[0]
    driver.execute("SELECT set_config('search_path', %s, true)", (f"{SCHEMA}, {before}",))
    yield
    driver.execute("SELECT set_config('search_path', %s, true)", (before,))


def _runnable_jobs(connection, tasks=(DELIVER,)) -> bool:
    """Whether a job of ``tasks`` waits for a worker now (a delivery job: the workers are
    behind)."""
    return connection.execute(text(
        f"SELECT EXISTS (SELECT FROM {SCHEMA}.procrastinate_jobs WHERE queue_name = :queue"
        " AND task_name = ANY(:tasks) AND status = 'todo'"
        " AND (scheduled_at IS NULL OR scheduled_at <= now()))"),
        {"queue": QUEUE, "tasks": list(tasks)}).scalar()


def _more_to_do(engine) -> bool:
    with engine.connect() as connection:
        return _runnable_jobs(connection, (DELIVER, EXPAND))


# -- the worker ---------------------------------------------------------------------------


def worker_app(engine) -> procrastinate.App:
    """An app whose pool connects where ``engine`` does, with procrastinate's schema on
    the search path."""
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=conninfo, kwargs={"options": f"-c search_path={SCHEMA}"},
        min_size=1, max_size=4))


class ProcrastinateQueue:
    """The ``queue.Queue`` on procrastinate: its worker on the push queue, each job sent by
    the ``worker.Worker`` like an embedded lane's chunk. SIGTERM (procrastinate's handler)
    stops the fetching; jobs still running after ``shutdown_grace`` are cancelled and hand
    their deliveries back, enqueued again. ``burst``: return once no job is due."""

    def __init__(self, chunk_size: int):
        self._chunk_size = chunk_size

    def enqueue_notification(self, connection, notification_id):
        enqueue_notification(connection, notification_id, self._chunk_size)

    def enqueue_expansion(self, connection, notification_id):
        enqueue_expansion(connection, notification_id)

    def enqueue_deliveries(self, connection, ids):
        enqueue_deliveries(connection, ids, self._chunk_size)

    def requeue(self, connection, due):
        enqueue(connection, due, self._chunk_size)

    async def run(self, worker):
        options, engine = worker.options, worker.engine
        app = worker_app(engine)
        # A job that failed runs again once the leases it took ran out; one cancelled on
        # shutdown does not: it enqueued what it handed back.
        retry = procrastinate.RetryStrategy(max_attempts=10, wait=int(options.lease) + 1,
                                            retry_exceptions=[Exception])

        async def deliver(ids: list[int]):
            await _deliver(worker, ids)

        async def expand(notification_id: str):
            await asyncio.to_thread(_expand, worker, uuid.UUID(notification_id))

        async def sweep(timestamp: int):
            await _sweep(app, worker)

        app.task(name=DELIVER, queue=QUEUE, retry=retry)(deliver)
        app.task(name=EXPAND, queue=QUEUE, retry=retry)(expand)
        app.periodic(cron=SWEEP_CRON)(
            app.task(name=SWEEP, queue=QUEUE, priority=SWEEP_PRIORITY)(sweep))
        log.info("push worker (procrastinate) started: %d jobs at once, lease %g s%s",
                 options.concurrency, options.lease,
                 ", until nothing is due" if options.burst else "")
        async with worker.beating(), app.open_async():
            await _sweep(app, worker)
            # procrastinate's burst stops at the first fetch that finds nothing, while a
            # running job (an expansion step) may still enqueue more: rounds until none
            while True:
                await app.run_worker_async(
                    queues=[QUEUE], name=f"push@{socket.gethostname()}:{os.getpid()}",
                    concurrency=options.concurrency, wait=not options.burst,
                    fetch_job_polling_interval=min(options.poll_interval,
                                                   SCHEDULED_JOB_POLL),
                    shutdown_graceful_timeout=options.shutdown_grace,
                    delete_jobs="successful",
                    # a worker silent for a lease is stalled: its jobs are run again
                    update_heartbeat_interval=min(10.0, options.lease / 4),
                    stalled_worker_timeout=options.lease)
                if not options.burst or not await asyncio.to_thread(_more_to_do, engine):
                    break


async def _deliver(worker, ids: list[int]):
    claiming = asyncio.ensure_future(asyncio.to_thread(_claim_ids, worker, ids))
    try:
        chunk = await asyncio.shield(claiming)
    except asyncio.CancelledError:  # shutting down: what the claim took goes back
        await asyncio.to_thread(worker.dispatcher.release, await claiming)
        raise
    if chunk:
        await worker.dispatch(chunk)


def _claim_ids(worker, ids):
    now = utcnow()
    earliest = now + timedelta(seconds=FOLLOW_UP_GAP)
    with write_transaction(worker.engine) as connection:
        later = ledger.waiting(connection, ids, now)
        chunk = ledger.claim_ids(connection, ids, lease=worker.options.lease, now=now)
        enqueue(connection, {id_: max(at, earliest) for id_, at in later.items()}, len(ids))
    return chunk


def _expand(worker, notification_id):
    """One step of the expansion, its deliveries' jobs and the next step's job, committed
    together. A notification another job is expanding (locked) is left to it."""
    with write_transaction(worker.engine) as connection:
        expanded = worker.expand(connection, utcnow(), notification_id)
        if expanded is None:
            return
        enqueue_deliveries(connection, expanded.delivery_ids, worker.options.chunk_size)
        if not expanded.done:
            enqueue_expansion(connection, notification_id)


async def _sweep(app, worker):
    stalled = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=worker.options.lease)
    for job in stalled:
        await app.job_manager.retry_job(job)
    if stalled:
        log.warning("push worker: %d jobs of stopped workers run again", len(stalled))
    orphans = await asyncio.to_thread(_enqueue_orphan_expansions, worker)
    if orphans:
        log.warning("push worker: %d expansions with no job were enqueued", orphans)
    strays = await asyncio.to_thread(_enqueue_strays, worker)
    if strays:
        log.warning("push worker: %d deliveries due with no job were enqueued", strays)


def _enqueue_orphan_expansions(worker) -> int:
    """Notifications expanding with no job to do it (accepted under the embedded queue)."""
    with write_transaction(worker.engine) as connection:
        orphans = connection.scalars(select(notifications_table.c.id).where(
            notifications_table.c.expanding, text(
                f"NOT EXISTS (SELECT FROM {SCHEMA}.procrastinate_jobs j WHERE j.queue_name = "
                ":queue AND j.task_name = :expand AND j.status IN ('todo', 'doing') AND "
                "j.args->>'notification_id' = notifications.id::text)").bindparams(
                queue=QUEUE, expand=EXPAND))).all()
        for notification_id in orphans:
            enqueue_expansion(connection, notification_id)
    return len(orphans)


def _enqueue_strays(worker) -> int:
    since = utcnow() - timedelta(seconds=worker.options.lease)
    with write_transaction(worker.engine) as connection:
        if _runnable_jobs(connection):
            return 0
        strays = ledger.overdue(connection, since, STRAYS_PER_SWEEP)
        enqueue(connection, dict.fromkeys(strays), worker.options.chunk_size)
    return len(strays)
