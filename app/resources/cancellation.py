"""Canceling a notification: its sender's "stop — that one was wrong".

A cancel, in one transaction:

1. sets the notification's ``canceled_at`` and clears ``expanding``, by an UPDATE that
   takes its row lock: an audience expansion step holds that lock (``FOR NO KEY UPDATE``)
   while it writes a chunk, so the cancel waits for a step in progress to commit, and no
   step starts after it (the notification is no longer ``expanding``);
2. turns every delivery still ``pending`` (due now, or waiting on a backoff or its moment)
   into ``canceled``, in one UPDATE (a statement of its own, so it sees the deliveries the
   step it waited for wrote). A delivery being sent (``sending``: leased, in flight)
   finishes and is counted as what happened to it; if it comes back as a retry, or is
   handed back on shutdown, the ledger writes it ``canceled`` (``app/push/ledger.py``),
   and a worker that claims one never sends it (``app/push/dispatcher.py``);
3. writes a receipt event for each delivery it canceled, when the sender's receipts are
   on.

Cancelling again changes nothing: the first UPDATE finds ``canceled_at`` set (a cancel
racing another waits on the row lock, then finds it so). There is no un-cancel.
"""

from dataclasses import dataclass

from sqlalchemy import update

from app.database.results import rows_changed
from app.errors import Forbidden
from app.extensions import db
from app.models import Delivery, DeliveryState, Notification
from app.models.types import utcnow
from app.push import ledger, receipts
from app.resources import notifications

MEMBER = "canceled"  # the attribute a sender sets


@dataclass(frozen=True)
class Canceled:
    """What one cancel did: the deliveries it canceled, and whether it was the first."""

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
    first = rows_changed(connection.execute(
        update(Notification).where(Notification.id == notification.id,
                                   Notification.canceled_at.is_(None))
        .values(canceled_at=now, expanding=False, updated_at=now)))
    canceled = 0
    if first:
        canceled = rows_changed(connection.execute(
            update(Delivery).where(Delivery.notification_id == notification.id,
                                   Delivery.state == DeliveryState.PENDING)
            .values(state=DeliveryState.CANCELED, lease_until=None, updated_at=now,
                    **ledger.CANCELED_WHY)))
        receipts.keep_canceled(connection, notification.id, now)
    db.session.refresh(notification)
    return Canceled(canceled, bool(first))
