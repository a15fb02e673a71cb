"""Deliveries to running Live Activities, as the dispatcher sends them.

An update or end goes to the activity's own push token: its delivery is addressed as the
activity's device with that token where the APNs token rule takes Live Activity pushes
from (``apns.address``). Before sending, a delivery whose activity has ended (an ``end``
sent, its token refused, deleted, too old) fails as ``ActivityEnded``, as does an update
accepted after an ``end`` to its activity that is being sent (in the same chunk or by
another lane or worker: the two would leave together, in no set order); and an update
made obsolete by a later push to the same activity, accepted before this one was sent, is
not sent (collapse by activity: it expires as ``Superseded``; an ``end`` never does).
"""

import dataclasses
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Row, exists, false, func, select

from app.models import Delivery, DeliveryState, Device, LiveActivity, Notification
from app.push import ledger, message
from app.push.message import PushType
from app.resources.live_activities import ENDED_BY_END

ENDED = ENDED_BY_END
UPDATE, END = "update", "end"
_activities = LiveActivity.__table__
_deliveries = Delivery.__table__
_notifications = Notification.__table__
_devices = Device.__table__
_STILL_TO_SEND = (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.SENT)


@dataclasses.dataclass(frozen=True, slots=True)
class NotSent:
    """Why a delivery to an activity is not sent, and the state it ends in."""

    state: DeliveryState
    reason: str
    detail: str


def load(connection, chunk) -> dict[uuid.UUID, Row]:
    """The activities a chunk goes to, each joined with its device, in one query: id → a
    row that is also the device row the push goes to (``addressed``): the activity's token
    where Live Activity pushes are taken from; ``latest_delivery``, the newest delivery
    to the activity still to be sent or sent (the collapse); ``ending_delivery``, the
    first ``end`` to it being sent now (this chunk's own, claimed, among them)."""
    ids = {claimed.live_activity_id for claimed in chunk if claimed.live_activity_id}
    if not ids:
        return {}
    # grouped over the chunk's activities, not a subquery per activity: its plan stays
    # one index scan even before the planner has statistics of a fresh ledger
    latest = _per_activity(connection, ids, func.max, _deliveries.c.state.in_(_STILL_TO_SEND))
    ending = _per_activity(connection, ids, func.min,
                           _deliveries.c.state == DeliveryState.SENDING,
                           exists().where(_notifications.c.id == _deliveries.c.notification_id,
                                          _notifications.c.content["event"].as_string() == END))
    return {row.live_activity_id: row for row in connection.execute(
        _running(latest.c.id.label("latest_delivery"), ending.c.id.label("ending_delivery"))
        .outerjoin(latest, latest.c.live_activity_id == _activities.c.id)
        .outerjoin(ending, ending.c.live_activity_id == _activities.c.id)
        .where(ledger.among(connection, _activities.c.id, ids)))}


def _per_activity(connection, ids, which, *conditions):
    """Per activity of ``ids``, ``which`` (min or max) delivery id meeting ``conditions``."""
    return (select(_deliveries.c.live_activity_id, which(_deliveries.c.id).label("id"))
            .where(ledger.among(connection, _deliveries.c.live_activity_id, ids), *conditions)
            .group_by(_deliveries.c.live_activity_id).subquery())


def _running(latest_delivery, ending_delivery):
    # a 410 is judged against when the activity's token was registered (``last_seen_at``),
    # and the device's own token, valid or not, does not matter (``is_invalidated``)
    return select(
        _activities.c.id.label("live_activity_id"), _activities.c.ended_at,
        _activities.c.created_at, latest_delivery, ending_delivery,
        _devices.c.id, _devices.c.channel, _devices.c.token, _devices.c.environment,
        _devices.c.bundle_id, _devices.c.is_voip,
        _activities.c.token.label("live_activity_token"),
        _activities.c.updated_at.label("last_seen_at"), false().label("is_invalidated"),
    ).join_from(_activities, _devices, _devices.c.id == _activities.c.device_id)


def addressed(claimed, notification, devices, running, now: datetime, max_age: timedelta):
    """The device row a delivery goes to (None: the device is gone), or ``NotSent``."""
    if not _to_activity(notification):
        return devices.get(claimed.device_id)
    activity = running.get(claimed.live_activity_id)
    if activity is None:  # deleted, or its device was (the activity went with it)
        return NotSent(DeliveryState.FAILED, "ActivityGone", "the live activity was deleted")
    if activity.ended_at is not None or activity.created_at <= now - max_age:
        return NotSent(DeliveryState.FAILED, "ActivityEnded",
                       "the activity ended before this push was sent")
    if notification.event == UPDATE and (activity.ending_delivery or claimed.id) < claimed.id:
        return NotSent(DeliveryState.FAILED, "ActivityEnded",
                       "an end to this activity was accepted before this push")
    if notification.event == UPDATE and (activity.latest_delivery or 0) > claimed.id:
        return NotSent(DeliveryState.EXPIRED, "Superseded",
                       "a later push to this activity was accepted before this one was sent")
    return activity


def _to_activity(notification) -> bool:
    return isinstance(notification, message.Notification) and \
        notification.push_type is PushType.LIVEACTIVITY and notification.event in (UPDATE, END)


def ends(target) -> bool:
    """Did sending this delivery end its activity?"""
    return target.live_activity_id is not None and target.address.notification.event == END
