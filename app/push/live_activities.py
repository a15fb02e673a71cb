"""Deliveries to running Live Activities, as the dispatcher sends them.

An update or end goes to the activity's own push token: its delivery is addressed as the
activity's device with that token where the APNs token rule takes Live Activity pushes
from (``apns.address``). Before sending, a delivery whose activity has ended (an ``end``
sent, its token refused, deleted, too old) fails as ``ActivityEnded``, and an update
made obsolete by a later push to the same activity, accepted before this one was sent,
is not sent (collapse by activity: it expires as ``Superseded``; an ``end`` never does).
"""

import dataclasses
import types
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.models import Delivery, DeliveryState, LiveActivity
from app.push import ledger, message
from app.push.message import PushType
from app.resources.live_activities import ENDED_BY_END

ENDED = ENDED_BY_END
UPDATE, END = "update", "end"
_activities = LiveActivity.__table__
_deliveries = Delivery.__table__
_STILL_TO_SEND = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.SENT)


@dataclasses.dataclass(frozen=True, slots=True)
class NotSent:
    """Why a delivery to an activity is not sent, and the state it ends in."""

    state: DeliveryState
    reason: str
    detail: str


def load(connection, chunk) -> dict[uuid.UUID, tuple]:
    """The activities a chunk goes to: id → (row, the newest delivery to it still to be
    sent or sent), in two queries."""
    ids = {claimed.live_activity_id for claimed in chunk if claimed.live_activity_id}
    if not ids:
        return {}
    latest = dict(connection.execute(
        select(_deliveries.c.live_activity_id, func.max(_deliveries.c.id))
        .where(ledger.among(connection, _deliveries.c.live_activity_id, ids),
               _deliveries.c.state.in_(_STILL_TO_SEND))
        .group_by(_deliveries.c.live_activity_id)).all())
    rows = connection.execute(
        select(_activities.c.id, _activities.c.token, _activities.c.ended_at,
               _activities.c.created_at, _activities.c.updated_at)
        .where(ledger.among(connection, _activities.c.id, ids)))
    return {row.id: (row, latest.get(row.id)) for row in rows}


def addressed(claimed, notification, devices, running, now: datetime, max_age: timedelta):
    """The device row a delivery goes to (None: the device is gone), or ``NotSent``."""
    device = devices.get(claimed.device_id)
    if not _to_activity(notification):
        return device
    if claimed.live_activity_id not in running:
        return NotSent(DeliveryState.FAILED, "ActivityGone", "the live activity was deleted")
    activity, latest = running[claimed.live_activity_id]
    if activity.ended_at is not None or activity.created_at <= now - max_age:
        return NotSent(DeliveryState.FAILED, "ActivityEnded",
                       "the activity ended before this push was sent")
    if notification.event == UPDATE and latest is not None and latest > claimed.id:
        return NotSent(DeliveryState.EXPIRED, "Superseded",
                       "a later push to this activity was accepted before this one was sent")
    if device is None:
        return None
    # the activity's token where Live Activity pushes are taken from; a 410 is judged
    # against when that token was registered, and the device's own token does not matter
    return types.SimpleNamespace(**{
        **device._mapping, "live_activity_token": activity.token,
        "last_seen_at": activity.updated_at, "is_invalidated": False})


def _to_activity(notification) -> bool:
    return isinstance(notification, message.Notification) and \
        notification.push_type is PushType.LIVEACTIVITY and notification.event in (UPDATE, END)


def ends(target) -> bool:
    """Did sending this delivery end its activity?"""
    return target.live_activity_id is not None and target.address.notification.event == END
