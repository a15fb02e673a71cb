"""Expanding an audience into deliveries: the workers' job, a chunk at a time, so accepting
a notification costs the same for ten devices or a million.

A step takes one notification still ``expanding`` (on PostgreSQL locked with ``FOR NO KEY
UPDATE SKIP LOCKED``: two workers never expand one notification at once; on SQLite the write lock
serialises them), reads the next ``chunk_size`` devices after ``expanded_through`` that
the audience and the push can reach, in device-id order (a keyset: each step reads one
index range, however far along it is), and in the same transaction:

- writes their deliveries: ``INSERT … SELECT … ON CONFLICT DO NOTHING`` on the unique
  (notification, device) index, so a chunk written twice adds nothing;
- moves ``expanded_through`` to the last device read, adds the deliveries written to
  ``targeted`` (the rows the INSERT returned: exact), and clears ``expanding`` once a
  step reads fewer devices than a chunk.

A worker killed mid-step loses that step's transaction, nothing else: the next step, by
any worker, starts after the last committed position. A device is included when it
matches as the step reaches it: one registered (or subscribed) before the expansion passes
its id is included, one deleted, unsubscribed or invalidated before then is not.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from app.database.upsert import insert_for
from app.errors import ServiceError
from app.models import Delivery, Device, Notification
from app.models.notification import ONE_PER_DEVICE
from app.push import ledger
from app.resources import audiences, notifications

log = logging.getLogger(__name__)

notifications_table = Notification.__table__


@dataclass(frozen=True)
class Expanded:
    """What one step did: the deliveries it wrote (their ids) and whether it was the last."""

    notification_id: uuid.UUID
    delivery_ids: list[int]
    done: bool


def step(connection, chunk_size: int, now: datetime,
         notification_id: uuid.UUID | None = None) -> Expanded | None:
    """Expand one chunk of a notification still expanding (``notification_id``'s, or the
    oldest one no other worker holds); None when there is none."""
    row = _next_expanding(connection, notification_id)
    if row is None:
        return None
    try:
        audience = audiences.parse(row.audience)
    except ServiceError as exc:  # a rule tightened since it was accepted: nobody matches
        log.error("notification %s: its audience no longer parses (%s): not expanded",
                  row.id, exc.detail)
        return _advance(connection, row, [], None, True, now)
    candidates = connection.execute(
        select(Device.id, Device.app_version)
        .where(*audience.conditions(), *notifications.reachable(row.push_type), *(
            () if row.expanded_through is None else (Device.id > row.expanded_through,)))
        .order_by(Device.id).limit(chunk_size)).all()
    chosen = [device_id for device_id, version in candidates if audience.admits(version)]
    written = write_deliveries(connection, row.id, chosen, now)
    last = candidates[-1].id if candidates else row.expanded_through
    return _advance(connection, row, written, last, len(candidates) < chunk_size, now)


def write_deliveries(connection, notification_id, device_ids, now) -> list[int]:
    """One pending delivery per device that has none of this notification yet: the ids
    written. Each is due ``now``; a per-row moment (a device's local time, a throttle)
    would be the ``due`` expression of ``notifications.delivery_values``."""
    if not device_ids:
        return []
    values = notifications.delivery_values(notification_id, now, connection.dialect.name)
    rows = select(*values.values()).where(ledger.among(connection, Device.id, device_ids))
    statement = (insert_for(connection, Delivery).from_select(list(values), rows)
                 .on_conflict_do_nothing(index_elements=["notification_id", "device_id"],
                                         index_where=ONE_PER_DEVICE)
                 .returning(Delivery.id))
    return list(connection.scalars(statement))


def _next_expanding(connection, notification_id):
    table = notifications_table
    statement = select(table.c.id, table.c.push_type, table.c.audience,
                       table.c.expanded_through).where(table.c.expanding)
    if notification_id is not None:
        statement = statement.where(table.c.id == notification_id)
    else:
        statement = statement.order_by(table.c.created_at).limit(1)
    if connection.dialect.name == "postgresql":
        # NO KEY UPDATE: the deliveries' writers hold KEY SHARE on it (their counts'
        # foreign key), which must not make it look taken
        statement = statement.with_for_update(skip_locked=True, key_share=True)
    return connection.execute(statement).first()


def _advance(connection, row, written, last, done, now) -> Expanded:
    connection.execute(
        update(notifications_table).where(notifications_table.c.id == row.id)
        .values(expanded_through=last, expanding=not done,
                targeted=notifications_table.c.targeted + len(written), updated_at=now))
    return Expanded(row.id, written, done)
