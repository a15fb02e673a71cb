"""Delivery receipts: every final outcome of an API key's deliveries, POSTed to the key's
callback URL in signed batches.

``keep`` writes an event for each final outcome of a delivery whose notification a key
with a callback sent, in the transaction that records the outcome (the dispatcher's), so
none is lost to a worker's death. ``ReceiptSender`` runs beside the push worker's lanes:
it gathers each key's oldest waiting events (at most ``MAX_EVENTS``) into that key's one
batch, whose id is the ``webhook-id`` of every attempt, and POSTs it through the webhook
channel's transport (its signing, keep-alive pool and address checks).

A key has at most one batch at a time (``receipt_batches.credential_id`` is unique) and a
batch holds the same events on every attempt: a key's events leave in the order they were
written, and a receiver sees an event twice only under the same ``webhook-id``. A batch
is leased while it is sent; a worker that dies leaves a lease that runs out, and another
worker sends the batch again. 2xx: the batch is done. 410: receipts are off for the key
until ``flask keys set-callback`` turns them on again. Anything else (a receiver that is
down, refuses or times out): retried with backoff for ``RECEIPTS_RETRY_FOR`` seconds
(24 hours) from the batch's first attempt, then dropped with an ERROR in the log.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import itemgetter

from sqlalchemy import (
    DateTime,
    String,
    and_,
    cast,
    delete,
    exists,
    insert,
    or_,
    select,
    type_coerce,
    update,
)

from app.database.engine import write_transaction
from app.database.upsert import insert_for
from app.models.credential import Credential
from app.models.notification import FINAL_STATES, Delivery, DeliveryState, Notification
from app.models.receipt import ReceiptBatch, ReceiptEvent
from app.models.types import utcnow
from app.push.ledger import RetryPolicy, among
from app.push.message import Action, Outcome
from app.push.webhook import WebhookTransport

log = logging.getLogger(__name__)

MAX_EVENTS = 500  # a batch's events at most
BATCH_TYPE = "delivery.receipts"
BATCHES_AT_ONCE = 50  # batches (keys) one round sends concurrently

_events = ReceiptEvent.__table__
_batches = ReceiptBatch.__table__
_credentials = Credential.__table__
_deliveries = Delivery.__table__
_notifications = Notification.__table__


def receiving(credentials=_credentials):
    """The keys whose receipts are on: a callback URL, not turned off by a 410."""
    return and_(credentials.c.callback_url.is_not(None),
                credentials.c.callback_off_since.is_(None))


def keep(connection, delivery_ids: list[int], now) -> None:
    """An event for each of ``delivery_ids`` this transaction just made final (its
    ``updated_at`` is ``now``: a row a later attempt owns is not this write's) and whose
    sender's receipts are on; in the deliveries' order."""
    if delivery_ids:
        _keep(connection, among(connection, _deliveries.c.id, delivery_ids), now)


def keep_canceled(connection, notification_id, now) -> None:
    """An event for each delivery of ``notification_id`` this transaction just canceled
    (in one statement: there may be a million), when its sender's receipts are on."""
    _keep(connection, and_(_deliveries.c.notification_id == notification_id,
                           _deliveries.c.state == DeliveryState.CANCELED), now)


def _keep(connection, chosen_deliveries, now) -> None:
    d, n = _deliveries.c, _notifications.c
    chosen = (
        select(_credentials.c.id, d.apns_id, d.notification_id, d.device_id, d.channel,
               d.state, d.last_reason, d.updated_at)
        .select_from(_deliveries.join(_notifications, n.id == d.notification_id)
                     .join(_credentials, _credentials.c.id == n.sender_id))
        .where(chosen_deliveries, d.updated_at == now,
               d.state.in_([state.value for state in FINAL_STATES]), receiving())
        .order_by(d.id))
    connection.execute(insert(_events).from_select(
        ["credential_id", "delivery_id", "notification_id", "device_id", "channel", "state",
         "reason", "occurred_at"], chosen))


@dataclass(frozen=True)
class ReceiptSettings:
    poll_interval: float = 0.5
    retry_for: float = 24 * 3600.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(1.0, 600.0, 2**31))
    lease: float = 60.0

    @classmethod
    def from_config(cls, config) -> "ReceiptSettings":
        return cls(config["RECEIPTS_POLL_INTERVAL"], config["RECEIPTS_RETRY_FOR"],
                   RetryPolicy(config["RECEIPTS_RETRY_BASE"], config["RECEIPTS_RETRY_MAX"],
                               2**31),
                   max(60.0, 3 * config["WEBHOOK_TIMEOUT"]))


@dataclass(frozen=True, slots=True)
class Batch:
    id: uuid.UUID
    credential_id: int
    attempts: int
    created_at: datetime
    url: str | None
    sealed_secret: str | None
    events: list[dict]


class ReceiptSender:
    """Sends the due batches, round after round, through ``transport``."""

    def __init__(self, transport: WebhookTransport, engine, settings: ReceiptSettings):
        self._transport = transport
        self._engine = engine
        self._settings = settings
        self.totals: Counter[str] = Counter()

    async def run(self, stopping: asyncio.Event) -> None:
        """Rounds until ``stopping`` is set, pausing ``poll_interval`` when idle."""
        while not stopping.is_set():
            try:
                busy = await self.send_due()
            except Exception:
                log.exception("receipts: a round failed")
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self._settings.poll_interval)

    async def drain(self) -> Counter:
        """Rounds until nothing is due now (a burst worker's last step)."""
        while await self.send_due():
            pass
        return self.totals

    @contextlib.asynccontextmanager
    async def running(self, burst: bool = False):
        """The sender's loop while the block runs; after a burst, one drain."""
        stopping = asyncio.Event()
        loop = asyncio.create_task(self.run(stopping))
        try:
            yield self
        finally:
            stopping.set()
            await asyncio.gather(loop, return_exceptions=True)
            if burst:
                await self.drain()

    async def send_due(self) -> int:
        """One round: gather waiting events into batches, send the due ones, record each
        answer. How many batches it sent."""
        batches = await asyncio.to_thread(self._take)
        if not batches:
            return 0
        outcomes = await asyncio.gather(*(self._send(batch) for batch in batches))
        await asyncio.to_thread(self._record, batches, outcomes)
        return len(batches)

    async def _send(self, batch: Batch) -> Outcome:
        if not batch.url or not batch.sealed_secret:
            return Outcome(str(batch.id), Action.FAIL, reason="NoCallback")
        if refused := self._transport.refusal(batch.url):
            return Outcome(str(batch.id), Action.RETRY, reason=refused.reason,
                           detail=refused.detail)
        body = {"type": BATCH_TYPE, "events": batch.events}
        return await self._transport.signed_post(batch.url, batch.sealed_secret,
                                                 str(batch.id), body)

    # -- the tables ------------------------------------------------------------------------

    def _take(self) -> list[Batch]:
        now = utcnow()
        with self._engine.connect() as connection:  # idle: no write, no lock (SQLite)
            if not connection.scalar(select(or_(_unbatched(), _due(now)))):
                return []
        with write_transaction(self._engine) as connection:
            _gather(connection, now)
            return _claim(connection, now, self._settings.lease)

    def _record(self, batches: list[Batch], outcomes: list[Outcome]) -> None:
        now = utcnow()
        with write_transaction(self._engine) as connection:
            for batch, outcome in zip(batches, outcomes, strict=True):
                self._record_one(connection, batch, outcome, now)

    def _record_one(self, connection, batch: Batch, outcome: Outcome, now) -> None:
        if outcome.action is Action.SENT:
            self.totals["receipts_sent"] += len(batch.events)
            _finish(connection, batch.id)
        elif outcome.action is Action.INVALIDATE:
            log.warning("receipts: the callback of API key %d answered 410: its receipts "
                        "are off until `flask keys set-callback` turns them on",
                        batch.credential_id)
            connection.execute(update(_credentials)
                               .where(_credentials.c.id == batch.credential_id)
                               .values(callback_off_since=now))
            _forget(connection, batch.credential_id)
        elif outcome.reason == "NoCallback":
            _forget(connection, batch.credential_id)
        elif now - _aware(batch.created_at) >= timedelta(seconds=self._settings.retry_for):
            log.error("receipts: API key %d's callback has failed for %g hours (last: %s): "
                      "%d receipts dropped", batch.credential_id,
                      self._settings.retry_for / 3600, outcome.reason, len(batch.events))
            self.totals["receipts_dropped"] += len(batch.events)
            _finish(connection, batch.id)
        else:
            self.totals["receipt_batches_retried"] += 1
            wait = max(outcome.retry_after or 0, self._settings.retry.delay(batch.attempts))
            connection.execute(update(_batches).where(_batches.c.id == batch.id).values(
                lease_until=None, next_attempt_at=now + timedelta(seconds=wait)))


def _gather(connection, now) -> None:
    """Each key with waiting events and no batch gets one, of its oldest events."""
    waiting = select(_events.c.credential_id).where(
        _events.c.batch_id.is_(None),
        ~exists().where(_batches.c.credential_id == _events.c.credential_id)).distinct()
    for credential_id in connection.scalars(waiting).all():
        batch_id = connection.scalar(
            insert_for(connection, ReceiptBatch).values(
                id=uuid.uuid4(), credential_id=credential_id, attempts=0,
                next_attempt_at=now, created_at=now)
            .on_conflict_do_nothing(index_elements=["credential_id"])
            .returning(_batches.c.id))
        if batch_id is None:  # another worker made it
            continue
        oldest = (select(_events.c.id).where(_events.c.credential_id == credential_id,
                                             _events.c.batch_id.is_(None))
                  .order_by(_events.c.id).limit(MAX_EVENTS))
        connection.execute(update(_events).where(_events.c.id.in_(oldest.scalar_subquery()))
                           .values(batch_id=batch_id))


def _unbatched():
    return exists().where(_events.c.batch_id.is_(None))


def _due(now):
    return exists().where(*_due_batch(now))


def _due_batch(now):
    return (_batches.c.next_attempt_at <= now,
            or_(_batches.c.lease_until.is_(None), _batches.c.lease_until < now))


def _claim(connection, now, lease: float) -> list[Batch]:
    due = (select(_batches.c.id).where(*_due_batch(now))
           .order_by(_batches.c.next_attempt_at).limit(BATCHES_AT_ONCE))
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    taken = connection.execute(
        update(_batches).where(_batches.c.id.in_(due.scalar_subquery()))
        .values(lease_until=now + timedelta(seconds=lease), attempts=_batches.c.attempts + 1)
        .returning(_batches.c.id, _batches.c.credential_id, _batches.c.attempts,
                   _batches.c.created_at)).all()
    if not taken:
        return []
    callbacks = dict((row.id, row) for row in connection.execute(
        select(_credentials.c.id, _credentials.c.callback_url, _credentials.c.callback_secret)
        .where(_credentials.c.id.in_({row.credential_id for row in taken}), receiving())))
    events = _events_of(connection, [row.id for row in taken])
    return [Batch(row.id, row.credential_id, row.attempts, row.created_at,
                  *_callback(callbacks.get(row.credential_id)), events.get(str(row.id), []))
            for row in taken]


def _events_of(connection, batch_ids) -> dict[str, list[dict]]:
    """Each batch's events (by its id as text), in the order they were written."""
    e = _events.c
    rows = connection.execute(
        select(*(cast(column, String) for column in _UUIDS), e.channel, e.state, e.reason,
               type_coerce(e.occurred_at, DateTime(timezone=True)))
        .where(e.batch_id.in_(batch_ids)).order_by(e.batch_id, e.id))
    times: dict[datetime, str] = {}
    events: dict[str, list[dict]] = {}
    for batch_id, batch_rows in groupby(rows, key=itemgetter(0)):
        events[_uuid_text(batch_id)] = batch = []
        for _, delivery_id, notification_id, device_id, channel, state, reason, at in batch_rows:
            if (text := times.get(at)) is None:  # a chunk's outcomes share theirs: once each
                text = times[at] = _timestamp(at)
            batch.append({"delivery_id": _uuid_text(delivery_id),
                          "notification_id": _uuid_text(notification_id),
                          "device_id": device_id and _uuid_text(device_id),
                          "channel": channel, "state": state, "reason": reason, "at": text})
    return events


# An event's ids are read as text: PostgreSQL writes a uuid as the receiver sees it, cheaper
# than making uuid.UUID objects and then strings of them (most of a receipt's cost).
_UUIDS = (_events.c.batch_id, _events.c.delivery_id, _events.c.notification_id, _events.c.device_id)


def _uuid_text(text: str) -> str:
    """A uuid read as text in its usual form: SQLite keeps its 32 hex digits."""
    return text if len(text) == 36 else str(uuid.UUID(text))


def _callback(row) -> tuple[str | None, str | None]:
    return (row.callback_url, row.callback_secret) if row is not None else (None, None)


def _finish(connection, batch_id) -> None:
    connection.execute(delete(_events).where(_events.c.batch_id == batch_id))
    connection.execute(delete(_batches).where(_batches.c.id == batch_id))


def _forget(connection, credential_id) -> None:
    """Receipts are off (or the callback gone) for the key: what waits for it goes."""
    connection.execute(delete(_events).where(_events.c.credential_id == credential_id))
    connection.execute(delete(_batches).where(_batches.c.credential_id == credential_id))


def _timestamp(moment: datetime) -> str:
    moment = _aware(moment).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
