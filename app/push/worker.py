"""The push worker: it sends the chunks its queue (``queue.py``) hands it through the
dispatcher. With the embedded queue (the ledger itself) it runs its own lanes:

An asyncio loop with ``concurrency`` lanes; each expands a chunk of an audience when one
is expanding (``expansion.py``), claims a chunk of due deliveries, has the dispatcher send
it, records, and repeats. Lanes with nothing to do share one wait (``wakeup.Alarm``),
which ends when the ledger's next delivery is due or when new work is heard of (a
``NOTIFY`` on PostgreSQL, another lane's expansion step or full chunk); ``burst``: they
return instead. The database work runs in threads so the HTTP/2 streams of
the other lanes keep flowing meanwhile. SIGTERM (or SIGINT) stops the claiming; the chunks
in flight finish within ``shutdown_grace`` seconds or are handed back (their leases
released, their apns-ids kept for the next attempt). A worker that dies without handing
back leaves leases that run out after ``lease`` seconds, and another worker takes the rows.

Beside the lanes (whatever the queue) runs the receipts sender (``receipts.py``): the API
keys' delivery receipts leave from the same process, through the webhook transport.
"""

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from app.database.engine import write_transaction
from app.models.device import Channel
from app.models.types import utcnow
from app.push import expansion, ledger, wakeup
from app.push.dispatcher import Dispatcher, DispatchSettings
from app.push.heartbeat import Heartbeat
from app.push.queue import NO_QUEUE, Queue, queue_for
from app.push.receipts import ReceiptSender, ReceiptSettings
from app.push.settings import PushSettings
from app.push.transports import open_transports
from app.push.webhook import WebhookTransport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    chunk_size: int = 1000
    concurrency: int = 2
    lease: float = 120.0
    poll_interval: float = 1.0
    shutdown_grace: float = 15.0
    burst: bool = False
    default_time_zone: str = "UTC"  # a local-time notification's, for devices without

    @classmethod
    def from_config(cls, config, **overrides) -> "WorkerOptions":
        values = {"chunk_size": config["PUSH_CHUNK_SIZE"],
                  "concurrency": config["PUSH_CONCURRENCY"], "lease": config["PUSH_LEASE"],
                  "poll_interval": config["PUSH_POLL_INTERVAL"],
                  "shutdown_grace": config["PUSH_SHUTDOWN_GRACE"],
                  "default_time_zone": config["DEFAULT_TIME_ZONE"]}
        return cls(**values | {key: value for key, value in overrides.items()
                               if value is not None})


class Worker:
    def __init__(self, dispatcher: Dispatcher, engine, options: WorkerOptions,
                 heartbeat: Heartbeat | None = None, queue: Queue = NO_QUEUE):
        self.dispatcher = dispatcher
        self.engine = engine
        self.options = options
        self._heartbeat = heartbeat
        self._queue = queue
        self._stopping = asyncio.Event()
        self._lanes: list[asyncio.Task] = []
        self._alarm = wakeup.Alarm(self._next_due, options.poll_interval, self._stopping)
        self.totals: Counter[str] = Counter()

    async def run(self) -> Counter:
        """Send what the queue hands over until stopped; what was done, counted."""
        await self._queue.run(self)
        return self.totals

    async def run_lanes(self):
        """The embedded queue's loop: lanes claiming due rows from the ledger."""
        log.info("push worker started: %d lanes of %d deliveries, lease %g s%s",
                 self.options.concurrency, self.options.chunk_size, self.options.lease,
                 ", until nothing is due" if self.options.burst else "")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            async with self.beating(), wakeup.running(self._alarm, self.engine):
                self._lanes = [asyncio.create_task(self._lane())
                               for _ in range(self.options.concurrency)]
                for outcome in await asyncio.gather(*self._lanes, return_exceptions=True):
                    if isinstance(outcome, Exception):
                        log.error("push worker: a lane stopped", exc_info=outcome)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    @contextlib.asynccontextmanager
    async def beating(self):
        """The heartbeat written while the block runs (none without a ``Heartbeat``)."""
        beating = self._heartbeat and asyncio.create_task(
            self._heartbeat.keep_beating(self.totals))
        try:
            yield
        finally:
            if beating:
                beating.cancel()
                await asyncio.gather(beating, return_exceptions=True)

    def stop(self):
        """Take no more work; what is in flight finishes or is handed back."""
        if self._stopping.is_set():
            return
        log.info("push worker stopping: finishing the chunks in flight (at most %g s)",
                 self.options.shutdown_grace)
        self._stopping.set()
        asyncio.get_running_loop().call_later(self.options.shutdown_grace, self._cancel)

    def _cancel(self):
        for lane in self._lanes:
            lane.cancel()

    async def _lane(self):
        while not self._stopping.is_set():
            paused = self.dispatcher.pauses.remaining()
            if paused:
                if self.options.burst:
                    return
                await self._sleep(paused)
                continue
            bell = self._alarm.bell  # a ring from here on ends the wait below at once
            try:
                expanded = await asyncio.shield(asyncio.to_thread(self._expand))
                chunk = await self._claim_chunk()
            except Exception:
                log.exception("push worker: expanding or claiming deliveries failed")
                await self._sleep(self.options.poll_interval)
                continue
            if expanded or len(chunk) == self.options.chunk_size:
                self._alarm.ring()  # more is due: the idle lanes help
            if not chunk:
                if expanded:  # a chunk of devices none of which matched: more to expand
                    continue
                if self.options.burst:
                    return
                await self._alarm.idle(bell)
                continue
            await self.dispatch(chunk)

    async def dispatch(self, chunk):
        """Send one claimed chunk; handed back when cancelled (on shutdown)."""
        try:
            self.totals.update(await self.dispatcher.dispatch(chunk))
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self.dispatcher.release, chunk))
            log.info("push worker: handed back %d deliveries", len(chunk))
            raise
        except Exception:
            # The leases run out and the rows are claimed again, with the same apns-ids.
            log.exception("push worker: a chunk of %d deliveries failed", len(chunk))
            await self._sleep(self.options.poll_interval)

    async def _claim_chunk(self):
        claiming = asyncio.ensure_future(asyncio.to_thread(self._claim))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:  # shutting down: what the claim took goes back
            self.dispatcher.release(await claiming)
            raise

    def _expand(self) -> bool:
        """One expansion step, if an audience is expanding: whether there was one."""
        with write_transaction(self.engine) as connection:
            expanded = self.expand(connection, utcnow())
            if expanded is not None:
                self._queue.enqueue_deliveries(connection, expanded.delivery_ids)
            return expanded is not None

    def expand(self, connection, now, notification_id=None):
        """One step of an audience's expansion (``expansion.step``), in ``connection``'s
        transaction: the queues run it through the worker, which knows the services."""
        return expansion.step(connection, self.options.chunk_size, now, notification_id,
                              default_zone=self.options.default_time_zone)

    def _next_due(self):
        with self.engine.connect() as connection:
            now = utcnow()
            return ledger.next_due(connection, now + timedelta(seconds=self._alarm.interval))

    def _claim(self):
        with write_transaction(self.engine) as connection:
            return ledger.claim(connection, limit=self.options.chunk_size,
                                lease=self.options.lease, now=utcnow())

    async def _sleep(self, seconds):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


async def run_worker(config, engine, **overrides) -> Counter:
    """Open each channel's transport (``transports.py``), build the dispatcher on the
    configured queue, and run; ``overrides``: ``WorkerOptions`` fields."""
    options = WorkerOptions.from_config(config, **overrides)
    queue = queue_for(config)
    async with contextlib.AsyncExitStack() as stack:
        transports = await open_transports(PushSettings.from_config(config), config, engine,
                                           stack)
        dispatcher = Dispatcher(transports, engine, DispatchSettings.from_config(config),
                                queue=queue)
        heartbeat = Heartbeat(engine, config["PUSH_HEARTBEAT_INTERVAL"])
        webhooks = transports[Channel.WEBHOOK]
        assert isinstance(webhooks, WebhookTransport)  # the registry always serves webhooks
        sender = ReceiptSender(webhooks, engine,
                               ReceiptSettings.from_config(config))
        async with sender.running(burst=options.burst):
            totals = await Worker(dispatcher, engine, options, heartbeat, queue).run()
        totals.update(sender.totals)
        return totals
