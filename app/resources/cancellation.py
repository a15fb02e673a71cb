"""Canceling a notification: its sender's "stop — that one was wrong".

A cancel, in one transaction:

0. takes the notification's ``ledger.cancel_lock`` exclusively: it waits for a worker
   writing a retry or a hand-back of its deliveries, and they wait for it (see
   ``app/push/ledger.py``);
1. sets the notification's ``canceled_at`` and clears ``expanding``, by an UPDATE that
   takes its row lock: an audience expansion step holds that lock (``FOR NO KEY UPDATE``)
   while it writes a chunk, so the cancel waits for a step in progress to commit, and no
   step starts after it (the notification is no longer ``expanding``);
2. turns the deliveries still ``pending`` (due now, or waiting on a backoff or their
   moment) into ``canceled``: up to ``EAGER_LIMIT`` of them, in one UPDATE (a statement of
   its own, so it sees the deliveries the step it waited for wrote). A notification with
   more (a million, say) keeps the rest pending rows for the workers: one UPDATE of them
   all would outlast the statement timeout (bench/push_cancel.py: about 80 µs a row).
   They are canceled all the same: the counts show them so from the commit (``counts``),
   and a worker that claims one writes it ``canceled`` without sending it
   (``app/push/dispatcher.py``), each when it comes due;
3. writes a receipt event for each delivery it canceled, when the sender's receipts are
   on (the workers write theirs for the rest).

A delivery being sent (``sending``: leased, in flight) finishes and is counted as what
happened to it; if it comes back as a retry, or is handed back on shutdown, the ledger
writes it ``canceled`` (``app/push/ledger.py``).

Cancelling again changes nothing: the first UPDATE finds ``canceled_at`` set (a cancel
racing another waits on the row lock, then finds it so). There is no un-cancel.
"""

from dataclasses import dataclass

from sqlalchemy import func, select, update

from app.database.results import rows_changed
from app.errors import Forbidden
from app.extensions import db
from app.models import Delivery, DeliveryCount, DeliveryState, Notification
from app.models.types import utcnow
from app.push import ledger, receipts
from app.resources import notifications

MEMBER = "canceled"  # the attribute a sender sets
EAGER_LIMIT = 10_000  # pending deliveries a cancel writes canceled itself


@dataclass(frozen=True)
class Canceled:
    """What one cancel did: the deliveries it canceled (those written ``canceled`` now and
    those left to the workers), and whether it was the first."""

    deliveries: int
    first: bool


def cancel_own(principal, notification_id, wanted=True):
    """Cancel one of the caller's notifications (``wanted`` is the attribute as sent):
    (notification, Canceled). Anyone else's is a 404; un-cancelling is refused."""
    notification = notifications.get(principal, notification_id)
    if wanted is not True:
        raise Forbidden("A notification cannot be un-canceled: send \"canceled\": true to "
                        "cancel it.", field=MEMBER, code="CANNOT_UNCANCEL")
    return notification, cancel(notification)


def cancel(notification: Notification) -> Canceled:
    """Cancel ``notification`` (any sender's: the operator's way), in the session's
    transaction; the caller commits."""
    now = utcnow()
    connection = db.session.connection()
    ledger.cancel_lock(connection, [notification.id], exclusive=True)
    first = rows_changed(connection.execute(
        update(Notification).where(Notification.id == notification.id,
                                   Notification.canceled_at.is_(None))
        .values(canceled_at=now, expanding=False, updated_at=now)))
    canceled = 0
    if first:
        canceled = _cancel_pending(connection, notification.id, now)
        receipts.keep_canceled(connection, notification.id, now)
    db.session.refresh(notification)
    return Canceled(canceled + _left_pending(notification.id) if first else 0, bool(first))


def _cancel_pending(connection, notification_id, now) -> int:
    pending = (Delivery.notification_id == notification_id,
               Delivery.state == DeliveryState.PENDING)
    # rows a worker is claiming right now are skipped: they are in flight. (Chosen by a
    # statement of their own: as an IN subquery PostgreSQL may run the LIMIT once per row.)
    chosen = select(Delivery.id).where(*pending).limit(EAGER_LIMIT)
    if connection.dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    ids = list(connection.scalars(chosen))
    if not ids:
        return 0
    return rows_changed(connection.execute(
        update(Delivery).where(ledger.among(connection, Delivery.id, ids), *pending)
        .values(state=DeliveryState.CANCELED, lease_until=None, updated_at=now,
                **ledger.CANCELED_WHY), execution_options={"synchronize_session": False}))


def _left_pending(notification_id) -> int:
    """The deliveries still pending rows, left to the workers (canceled all the same)."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(DeliveryCount.count), 0))
        .where(DeliveryCount.notification_id == notification_id,
               DeliveryCount.state == DeliveryState.PENDING)) or 0)
