"""The push worker: the embedded queue is the ledger itself.

An asyncio loop with ``concurrency`` lanes; each claims a chunk of due deliveries, has the
dispatcher send it, records, and repeats, sleeping ``poll_interval`` when nothing is due
(``burst``: returning instead). The database work runs in threads so the HTTP/2 streams of
the other lanes keep flowing meanwhile. SIGTERM (or SIGINT) stops the claiming; the chunks
in flight finish within ``shutdown_grace`` seconds or are handed back (their leases
released, their apns-ids kept for the next attempt). A worker that dies without handing
back leaves leases that run out after ``lease`` seconds, and another worker takes the rows.
"""

import asyncio
import contextlib
import logging
import os
import signal
from collections import Counter
from dataclasses import dataclass

from app.models.device import Channel
from app.models.types import utcnow
from app.push import ledger
from app.push.apns import ApnsClient, ApnsSettings
from app.push.dispatcher import Dispatcher, DispatchSettings
from app.push.fcm import FcmClient, FcmSettings
from app.push.fcm_auth import ACCESS_TOKEN_MAX_AGE, AccessTokenMinter, ServiceAccount
from app.push.heartbeat import Heartbeat
from app.push.provider_token import ProviderTokenCache, ProviderTokenSigner, SharedTokenCache
from app.push.token_store import DatabaseTokenStore

log = logging.getLogger(__name__)

REQUIRED_APNS_SETTINGS = ("APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID")


@dataclass(frozen=True)
class WorkerOptions:
    chunk_size: int = 1000
    concurrency: int = 2
    lease: float = 120.0
    poll_interval: float = 1.0
    shutdown_grace: float = 15.0
    burst: bool = False

    @classmethod
    def from_config(cls, config, **overrides) -> "WorkerOptions":
        values = {"chunk_size": config["PUSH_CHUNK_SIZE"],
                  "concurrency": config["PUSH_CONCURRENCY"], "lease": config["PUSH_LEASE"],
                  "poll_interval": config["PUSH_POLL_INTERVAL"],
                  "shutdown_grace": config["PUSH_SHUTDOWN_GRACE"]}
        return cls(**values | {key: value for key, value in overrides.items()
                               if value is not None})


class Worker:
    def __init__(self, dispatcher: Dispatcher, engine, options: WorkerOptions,
                 heartbeat: Heartbeat | None = None):
        self._dispatcher = dispatcher
        self._heartbeat = heartbeat
        self._engine = engine
        self._options = options
        self._stopping = asyncio.Event()
        self._lanes: list[asyncio.Task] = []
        self.totals = Counter()

    async def run(self) -> Counter:
        log.info("push worker started: %d lanes of %d deliveries, lease %g s%s",
                 self._options.concurrency, self._options.chunk_size, self._options.lease,
                 ", until nothing is due" if self._options.burst else "")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        beating = self._heartbeat and asyncio.create_task(
            self._heartbeat.keep_beating(self.totals))
        try:
            self._lanes = [asyncio.create_task(self._lane())
                           for _ in range(self._options.concurrency)]
            for outcome in await asyncio.gather(*self._lanes, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("push worker: a lane stopped", exc_info=outcome)
        finally:
            if beating:
                beating.cancel()
                await asyncio.gather(beating, return_exceptions=True)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        return self.totals

    def stop(self):
        """Take no more work; what is in flight finishes or is handed back."""
        if self._stopping.is_set():
            return
        log.info("push worker stopping: finishing the chunks in flight (at most %g s)",
                 self._options.shutdown_grace)
        self._stopping.set()
        asyncio.get_running_loop().call_later(self._options.shutdown_grace, self._cancel)

    def _cancel(self):
        for lane in self._lanes:
            lane.cancel()

    async def _lane(self):
        while not self._stopping.is_set():
            paused = self._dispatcher.pauses.remaining()
            if paused:
                if self._options.burst:
                    return
                await self._sleep(paused)
                continue
            try:
                chunk = await self._claim_chunk()
            except Exception:
                log.exception("push worker: claiming deliveries failed")
                await self._sleep(self._options.poll_interval)
                continue
            if not chunk:
                if self._options.burst:
                    return
                await self._sleep(self._options.poll_interval)
                continue
            await self._dispatch(chunk)

    async def _dispatch(self, chunk):
        try:
            self.totals.update(await self._dispatcher.dispatch(chunk))
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self._dispatcher.release, chunk))
            log.info("push worker: handed back %d deliveries", len(chunk))
            raise
        except Exception:
            # The leases run out and the rows are claimed again, with the same apns-ids.
            log.exception("push worker: a chunk of %d deliveries failed", len(chunk))
            await self._sleep(self._options.poll_interval)

    async def _claim_chunk(self):
        claiming = asyncio.ensure_future(asyncio.to_thread(self._claim))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:  # shutting down: what the claim took goes back
            self._dispatcher.release(await claiming)
            raise

    def _claim(self):
        with self._engine.begin() as connection:
            return ledger.claim(connection, limit=self._options.chunk_size,
                                lease=self._options.lease, now=utcnow())

    async def _sleep(self, seconds):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def apns_environment(environ=os.environ) -> dict[str, str] | None:
    """The APNS_* variables, with ``APNS_TOPIC`` standing in for ``APNS_BUNDLE_ID``; None
    when push is not configured."""
    environ = {name: value for name, value in environ.items() if name.startswith("APNS_")}
    environ.setdefault("APNS_BUNDLE_ID", environ.get("APNS_TOPIC", ""))
    missing = [name for name in (*REQUIRED_APNS_SETTINGS, "APNS_BUNDLE_ID")
               if not environ.get(name)]
    return None if missing else environ


async def run_worker(config, engine, environ, **overrides) -> Counter:
    """Build a client per configured channel (APNs when ``environ`` holds its settings,
    FCM when ``FCM_CREDENTIALS_FILE`` is set), the dispatcher, and run."""
    options = WorkerOptions.from_config(config, **overrides)
    async with contextlib.AsyncExitStack() as clients:
        by_channel, default_topic = {}, None
        if environ is not None:
            settings = ApnsSettings.from_environ(environ)
            by_channel[Channel.IOS_PUSH] = await clients.enter_async_context(
                _apns_client(settings, engine))
            default_topic = environ.get("APNS_TOPIC") or settings.bundle_id
        if fcm_configured(config):
            by_channel[Channel.FCM] = await clients.enter_async_context(
                fcm_client(config, engine))
        dispatcher = Dispatcher(by_channel, engine, DispatchSettings.from_config(
            config, default_topic=default_topic))
        heartbeat = Heartbeat(engine, config["PUSH_HEARTBEAT_INTERVAL"])
        return await Worker(dispatcher, engine, options, heartbeat).run()


def _apns_client(settings: ApnsSettings, engine) -> ApnsClient:
    signer = ProviderTokenSigner.from_key(settings.key, settings.key_id, settings.team_id)
    tokens = ProviderTokenCache(signer, DatabaseTokenStore(engine, settings.team_id,
                                                           settings.key_id),
                                max_age=settings.token_max_age)
    return ApnsClient(settings, tokens)


def fcm_configured(config) -> bool:
    return bool(config.get("FCM_CREDENTIALS_FILE"))


def fcm_client(config, engine) -> FcmClient:
    """The FCM client, its access token shared by every worker through the database."""
    account = ServiceAccount.from_file(config["FCM_CREDENTIALS_FILE"])
    tokens = SharedTokenCache(AccessTokenMinter(account, config["FCM_CA_FILE"]),
                              DatabaseTokenStore(engine, *account.store_key),
                              max_age=ACCESS_TOKEN_MAX_AGE)
    return FcmClient(FcmSettings.from_config(config, account), tokens)
