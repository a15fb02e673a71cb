"""Expanding an audience into deliveries: the workers' job, a chunk at a time, so accepting
a notification costs the same for ten devices or a million.

A step takes one notification still ``expanding`` (on PostgreSQL locked with ``FOR NO KEY
UPDATE SKIP LOCKED``: two workers never expand one notification at once; on SQLite the write lock
serialises them), reads the next ``chunk_size`` devices after ``expanded_through`` that
the audience and the push can reach, in device-id order (a keyset: each step reads one
index range, however far along it is; the first step reads at most ``FIRST_STEP``, so the
first pushes leave while the rest is written), and in the same transaction:

- writes their deliveries, each at its moment (``app/resources/delivery_rows.py``: a
  local time, a throttle), ``ON CONFLICT DO NOTHING`` on the unique (notification,
  device) index, so a chunk written twice adds nothing;
- moves ``expanded_through`` to the last device read, adds the deliveries written to
  ``targeted`` (the rows the INSERT returned: exact; a throttle's position), keeps the
  earliest moment written in ``first_due_at``, and clears ``expanding`` once a step reads
  fewer devices than a chunk.

A worker killed mid-step loses that step's transaction, nothing else: the next step, by
any worker, starts after the last committed position. A device is included when it
matches as the step reaches it: one registered (or subscribed) before the expansion passes
its id is included, one deleted, unsubscribed or invalidated before then is not.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, literal, select, update

from app.errors import ServiceError
from app.models import Device, Notification
from app.models.types import UTCDateTime
from app.push import ledger
from app.resources import audiences, delivery_rows
from app.resources.delivery_rows import NOTHING, Written
from app.resources.notification_schedule import Schedule

log = logging.getLogger(__name__)
FIRST_STEP = 100  # devices the first step of an expansion reads, at most

notifications_table = Notification.__table__


@dataclass(frozen=True)
class Expanded:
    """What one step did: the deliveries it wrote (their ids) and whether it was the last."""

    notification_id: uuid.UUID
    delivery_ids: list[int]
    done: bool


def step(connection, chunk_size: int, now: datetime,
         notification_id: uuid.UUID | None = None, *,
         default_zone: str = "UTC") -> Expanded | None:
    """Expand one chunk of a notification still expanding (``notification_id``'s, or the
    oldest one no other worker holds); None when there is none. ``default_zone``: a local
    time's zone for devices whose users have none."""
    row = _next_expanding(connection, notification_id)
    if row is None:
        return None
    try:
        audience = audiences.parse(row.audience)
    except ServiceError as exc:  # a rule tightened since it was accepted: nobody matches
        log.error("notification %s: its audience no longer parses (%s): not expanded",
                  row.id, exc.detail)
        return _advance(connection, row, NOTHING, None, True, now)
    # the first step is small, so the first pushes leave while the next chunks are written
    limit = chunk_size if row.expanded_through is not None else min(chunk_size, FIRST_STEP)
    candidates = connection.execute(
        select(Device.id, Device.app_version)
        .where(*audience.conditions(), *delivery_rows.reachable(row.push_type), *(
            () if row.expanded_through is None else (Device.id > row.expanded_through,)))
        .order_by(Device.id).limit(limit)).all()
    chosen = [device_id for device_id, version in candidates if audience.admits(version)]
    written = write_deliveries(connection, row, chosen, now, default_zone)
    last = candidates[-1].id if candidates else row.expanded_through
    return _advance(connection, row, written, last, len(candidates) < limit, now)


def write_deliveries(connection, row, device_ids, now, default_zone="UTC") -> Written:
    """One pending delivery per device that has none of this notification yet, each at
    its moment (``row``: the notification's id, schedule and ``targeted``)."""
    if not device_ids:
        return NOTHING
    return delivery_rows.write(
        connection, row.id, Schedule.of(row), [ledger.among(connection, Device.id, device_ids)],
        position=row.targeted, now=now, default_zone=default_zone, skip_duplicates=True)


def _next_expanding(connection, notification_id):
    table = notifications_table
    statement = select(table.c.id, table.c.push_type, table.c.audience,
                       table.c.expanded_through, table.c.targeted, table.c.send_at,
                       table.c.local_time, table.c.throttle).where(table.c.expanding)
    if notification_id is not None:
        statement = statement.where(table.c.id == notification_id)
    else:
        statement = statement.order_by(table.c.created_at).limit(1)
    if connection.dialect.name == "postgresql":
        # NO KEY UPDATE: the deliveries' writers hold KEY SHARE on it (their counts'
        # foreign key), which must not make it look taken
        statement = statement.with_for_update(skip_locked=True, key_share=True)
    return connection.execute(statement).first()


def _advance(connection, row, written: Written, last, done, now) -> Expanded:
    table = notifications_table
    values = {"expanded_through": last, "expanding": not done,
              "targeted": table.c.targeted + len(written.ids), "updated_at": now}
    if written.first_due_at is not None:
        earliest = literal(written.first_due_at, UTCDateTime())
        values["first_due_at"] = case((table.c.first_due_at < earliest, table.c.first_due_at),
                                      else_=earliest)
    connection.execute(update(table).where(table.c.id == row.id).values(**values))
    return Expanded(row.id, written.ids, done)
