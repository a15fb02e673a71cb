"""Tokens a push provider said are gone: the dispatcher reports them here, and the devices
stop being pushed to (marked invalidated, or deleted) unless they were registered again.

The dispatcher runs outside any request, on a connection of its own, and writes a whole
batch in its transaction: each statement here runs once per batch with one set of
parameters per token (an executemany), never a statement per device.
"""

import dataclasses
import uuid
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, update

from app.models import Device

MARK = "mark"  # the token's device stays, marked invalidated (PUSH_INVALIDATION_POLICY)
DELETE = "delete"  # the token's device goes

_devices = Device.__table__


@dataclasses.dataclass(frozen=True, slots=True)
class Invalidation:
    """A token a provider refused for good, at a moment."""

    device_id: uuid.UUID
    stored_token: str  # the column value the token came from (sealed for Live Activities)
    reason: str
    registered_before: datetime  # a registration after this keeps the token
    live_activity: bool


def invalidate(connection, invalidations, now, policy=MARK):
    """Apply a batch's invalidations on ``connection``, in its transaction: a push token's
    device is marked invalidated (``MARK``) or deleted (``DELETE``); a Live Activity token
    is forgotten and its device stays."""
    tokens = [_arguments(item, now) for item in invalidations if not item.live_activity]
    live_activities = [_arguments(item, now) for item in invalidations if item.live_activity]
    if tokens:
        connection.execute(_DELETE_TOKEN if policy == DELETE else _MARK_TOKEN, tokens)
    if live_activities:
        connection.execute(_FORGET_LIVE_ACTIVITY_TOKEN, live_activities)


def _arguments(item, now):
    return {"device_id": item.device_id, "stored_token": item.stored_token,
            "cutoff": item.registered_before, "reason": item.reason, "now": now}


# A device registered again after the answer's moment, or moved to another token, is kept.
_STILL_THE_SAME_TOKEN = and_(_devices.c.id == bindparam("device_id"),
                             _devices.c.token == bindparam("stored_token"),
                             _devices.c.last_seen_at <= bindparam("cutoff"))
_MARK_TOKEN = update(_devices).where(_STILL_THE_SAME_TOKEN).values(
    is_invalidated=True, invalidated_reason=bindparam("reason"),
    invalidated_at=bindparam("now"), updated_at=bindparam("now"))
_DELETE_TOKEN = delete(_devices).where(_STILL_THE_SAME_TOKEN)
_FORGET_LIVE_ACTIVITY_TOKEN = update(_devices).where(
    _devices.c.id == bindparam("device_id"),
    _devices.c.live_activity_token == bindparam("stored_token"),
    _devices.c.last_seen_at <= bindparam("cutoff"),
).values(live_activity_token=None, updated_at=bindparam("now"))
