"""The delivery ledger: claiming due deliveries in chunks, recording their outcomes in bulk.

A worker claims a chunk by setting its rows to ``sending`` with a lease; a row whose lease
ran out (its worker died) is due again and is claimed with its same apns-id. Outcomes are
written back with one statement for the sent rows and one executemany for the rest, so a
chunk of hundreds costs a handful of round trips.

Every function takes a SQLAlchemy ``Connection`` inside a transaction that its caller
commits. On PostgreSQL concurrent claims skip each other's rows (``FOR UPDATE SKIP
LOCKED``); SQLite's write lock serialises them.

A delivery of a canceled notification (``app/resources/cancellation.py``) never goes back
to pending: a retry or a hand-back is written ``canceled`` instead. On PostgreSQL both read
the notifications' ``canceled_at`` holding ``cancel_lock`` shared, which a cancel holds
exclusively until it commits: either the cancel commits first and is seen here, or this
commits first and the cancel's UPDATE finds the row pending. (An advisory lock, not the
notification's row lock: a row lock would make an audience's expansion step, which skips a
locked notification, pass this one by.) Each transaction takes it before it writes any
delivery, so it never holds a row the cancel waits for while it waits for the cancel.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, any_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from app.database.engine import OWN_TRANSACTION
from app.database.locks import advisory_locks
from app.models.notification import (
    CANCELED_DETAIL,
    CANCELED_REASON,
    Delivery,
    DeliveryState,
    Notification,
)

deliveries = Delivery.__table__
notifications = Notification.__table__
CANCEL_LOCK = "notification-cancel:"  # its advisory lock's key, with the notification's id
CANCELED_WHY = {"last_reason": CANCELED_REASON, "detail": CANCELED_DETAIL}  # column values


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    notification_id: uuid.UUID
    device_id: uuid.UUID | None
    apns_id: uuid.UUID
    attempts: int  # including the one just claimed
    live_activity_id: uuid.UUID | None = None  # an update or end to a running activity
    live_activity_channel_id: uuid.UUID | None = None  # a broadcast on a channel


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt of one delivery came to: the row's new state and why."""

    delivery_id: int
    state: DeliveryState
    status: int | None = None
    reason: str | None = None
    detail: str | None = None
    next_attempt_at: datetime | None = None  # when state is PENDING


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 5.0  # seconds before the second attempt
    maximum: float = 3600.0
    max_attempts: int = 10

    def delay(self, attempts: int) -> float:
        """Exponential backoff with jitter: between half and all of base·2^(attempts-1)."""
        ceiling = min(self.maximum, self.base * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    def retry(self, claimed: Claimed, deadline: datetime | None, now: datetime, *,
              status=None, reason=None, detail=None, at_least: float = 0) -> Result:
        """Back to pending after a backoff (``at_least`` seconds: a server's Retry-After),
        or given up: expired past the notification's expiry, failed after
        ``max_attempts``."""
        at = now + timedelta(seconds=max(at_least, self.delay(claimed.attempts)))
        if deadline is not None and at > deadline:
            return Result(claimed.id, DeliveryState.EXPIRED, status, reason, detail)
        if claimed.attempts >= self.max_attempts:
            return Result(claimed.id, DeliveryState.FAILED, status, reason or "TooManyAttempts",
                          detail or f"gave up after {claimed.attempts} attempts")
        return Result(claimed.id, DeliveryState.PENDING, status, reason, detail, at)


def among(connection, column, values):
    """``column IN values``; on PostgreSQL one array parameter (``= ANY``): a chunk's
    thousand placeholders cost the driver more to rewrite than the statement to run."""
    values = list(values)
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def claim(connection, *, limit: int, lease: float, now: datetime) -> list[Claimed]:
    """Take up to ``limit`` due deliveries: leases that ran out first, then pending rows
    longest due first. Each comes back with its attempt counted, in id order."""
    stale = _take(connection, and_(deliveries.c.state == DeliveryState.SENDING,
                                   deliveries.c.lease_until < now), limit, lease, now)
    if len(stale) >= limit:
        return stale
    fresh = _take(connection, and_(deliveries.c.state == DeliveryState.PENDING,
                                   deliveries.c.next_attempt_at <= now),
                  limit - len(stale), lease, now)
    return stale + fresh


def claim_ids(connection, ids: list[int], *, lease: float, now: datetime) -> list[Claimed]:
    """``claim`` among ``ids`` only: those of them that are due, by the same rules (a queue
    job names its deliveries; a duplicated or retried job finds them taken or sent)."""
    due = or_(and_(deliveries.c.state == DeliveryState.SENDING, deliveries.c.lease_until < now),
              and_(deliveries.c.state == DeliveryState.PENDING,
                   deliveries.c.next_attempt_at <= now))
    return _take(connection, and_(deliveries.c.id.in_(ids), due), len(ids), lease, now)


def next_due(connection, expanding_at: datetime) -> datetime | None:
    """When a worker next has something to do: the earliest pending delivery's next
    attempt or sending delivery's lease end (each an index range of ``ix_deliveries_due``,
    the first row of the one, the rows in flight of the other), and ``expanding_at`` when
    a notification's audience is still expanding; None when nothing waits."""
    pending = select(func.min(deliveries.c.next_attempt_at)).where(
        deliveries.c.state == DeliveryState.PENDING).scalar_subquery()
    leased = select(func.min(deliveries.c.lease_until)).where(
        deliveries.c.state == DeliveryState.SENDING).scalar_subquery()
    expanding = exists().where(notifications.c.expanding)
    # a read of its own (no BEGIN, no ROLLBACK on PostgreSQL): an idle worker's only query
    row = connection.execute(select(pending, leased, expanding).execution_options(
        **{OWN_TRANSACTION: True})).one()
    moments = [moment for moment in (row[0], row[1], row[2] and expanding_at) if moment]
    return min(moments, default=None)


def waiting(connection, ids: list[int], now: datetime) -> dict[int, datetime]:
    """Those of ``ids`` not due yet, with the moment each will be: pending after a backoff
    (its next attempt), or held under another worker's lease (when the lease runs out)."""
    later = case((deliveries.c.state == DeliveryState.PENDING, deliveries.c.next_attempt_at),
                 else_=deliveries.c.lease_until)
    rows = connection.execute(select(deliveries.c.id, later).where(
        deliveries.c.id.in_(ids),
        or_(and_(deliveries.c.state == DeliveryState.PENDING,
                 deliveries.c.next_attempt_at > now),
            and_(deliveries.c.state == DeliveryState.SENDING,
                 deliveries.c.lease_until >= now))))
    return dict(rows.all())


def overdue(connection, since: datetime, limit: int) -> list[int]:
    """Deliveries due since before ``since`` (pending, or a lease that ran out): what no
    worker took although it could have."""
    return list(connection.scalars(select(deliveries.c.id).where(
        or_(and_(deliveries.c.state == DeliveryState.PENDING,
                 deliveries.c.next_attempt_at < since),
            and_(deliveries.c.state == DeliveryState.SENDING,
                 deliveries.c.lease_until < since))).order_by(deliveries.c.id).limit(limit)))


def _take(connection, condition, limit, lease, now) -> list[Claimed]:
    # Ordered by the due index alone: a tie-breaker column would make PostgreSQL sort every
    # due row under the row locks, on every claim: the claim would grow with the backlog.
    due = (select(deliveries.c.id).where(condition)
           .order_by(deliveries.c.next_attempt_at).limit(limit))
    if connection.dialect.name == "postgresql":
        # A CTE, materialized: run once. Under ``IN (…)`` PostgreSQL may rescan the locking
        # subquery for each outer row, and each rescan can lock other rows than the last.
        taken = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        chosen = deliveries.c.id == taken.c.id
    else:
        chosen = deliveries.c.id.in_(due.scalar_subquery())
    statement = (
        update(deliveries).where(chosen)
        .values(state=DeliveryState.SENDING, lease_until=now + timedelta(seconds=lease),
                attempts=deliveries.c.attempts + 1, updated_at=now)
        .returning(deliveries.c.id, deliveries.c.notification_id, deliveries.c.device_id,
                   deliveries.c.apns_id, deliveries.c.attempts,
                   deliveries.c.live_activity_id, deliveries.c.live_activity_channel_id))
    rows = connection.execute(statement).all()
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


def record(connection, results: list[Result], now: datetime,
           claimed: dict[int, Claimed]) -> list[Result]:
    """Write a chunk's outcomes: the sent rows in one UPDATE, the others in one
    executemany. Every row leaves ``sending`` and drops its lease. The results as written:
    a retry of a canceled notification's delivery is written canceled.

    ``claimed``: each row as it was claimed (id → ``Claimed``). A failure or retry is not
    written over a row claimed again since (its lease ran out while this attempt was slow):
    that later attempt owns the row. A 200 is written whatever happened since."""
    results = _canceled_retries(connection, results, claimed)
    sent = [result.delivery_id for result in results if result.state is DeliveryState.SENT]
    if sent:
        connection.execute(
            update(deliveries).where(among(connection, deliveries.c.id, sent))
            .values(state=DeliveryState.SENT, sent_at=now, last_status=200, last_reason=None,
                    detail=None, lease_until=None, updated_at=now))
    others = [_row(result, now, claimed[result.delivery_id].attempts)
              for result in results if result.state is not DeliveryState.SENT]
    if others:
        connection.execute(_OUTCOME, others)
    return results


def _canceled_retries(connection, results, claimed) -> list[Result]:
    def notification_of(result):
        return claimed[result.delivery_id].notification_id

    retried = {notification_of(result) for result in results
               if result.state is DeliveryState.PENDING}
    canceled = canceled_among(connection, retried)
    if not canceled:
        return results
    return [canceled_result(result.delivery_id)
            if result.state is DeliveryState.PENDING and notification_of(result) in canceled
            else result for result in results]


def canceled_result(delivery_id: int) -> Result:
    return Result(delivery_id, DeliveryState.CANCELED, reason=CANCELED_REASON,
                  detail=CANCELED_DETAIL)


def canceled_among(connection, notification_ids) -> set[uuid.UUID]:
    """Those of ``notification_ids`` canceled, read holding ``cancel_lock`` shared."""
    if not notification_ids:
        return set()
    cancel_lock(connection, notification_ids)
    return set(connection.scalars(select(notifications.c.id).where(
        among(connection, notifications.c.id, notification_ids),
        notifications.c.canceled_at.is_not(None))))


def cancel_lock(connection, notification_ids, *, exclusive=False) -> None:
    """The advisory lock on each notification's cancel: shared by the writers that could
    put a delivery back to pending, exclusive for a cancel."""
    advisory_locks(connection, (f"{CANCEL_LOCK}{notification_id}"
                                for notification_id in notification_ids),
                   shared=not exclusive)


_OUTCOME = (
    update(deliveries).where(deliveries.c.id == bindparam("delivery_id"),
                             deliveries.c.attempts == bindparam("attempt"))
    .values(state=bindparam("new_state"), last_status=bindparam("status"),
            last_reason=bindparam("reason"), detail=bindparam("new_detail"),
            next_attempt_at=bindparam("next_at"), lease_until=None,
            updated_at=bindparam("now")))


def _row(result: Result, now: datetime, attempt: int) -> dict:
    return {"delivery_id": result.delivery_id, "attempt": attempt,
            "new_state": result.state.value,
            "status": result.status, "reason": result.reason,
            "new_detail": result.detail and result.detail[:1000],
            "next_at": result.next_attempt_at or now, "now": now}


def release(connection, claimed: list[Claimed], now: datetime,
            at: datetime | None = None) -> list[int]:
    """Hand claimed deliveries back unsent (shutdown, a paused topic): pending again from
    ``at`` (default now), the attempt not counted; those of a canceled notification are
    canceled instead (their ids are returned)."""
    canceled = canceled_among(connection, {item.notification_id for item in claimed})
    back = [item.id for item in claimed if item.notification_id not in canceled]
    stopped = [item.id for item in claimed if item.notification_id in canceled]
    for ids, state in ((back, DeliveryState.PENDING), (stopped, DeliveryState.CANCELED)):
        if ids:
            connection.execute(
                update(deliveries).where(among(connection, deliveries.c.id, ids),
                                         deliveries.c.state == DeliveryState.SENDING)
                .values(state=state, lease_until=None, attempts=deliveries.c.attempts - 1,
                        next_attempt_at=at or now, updated_at=now,
                        **(CANCELED_WHY if state is DeliveryState.CANCELED else {})))
    return stopped
