"""Writing a notification's deliveries to devices, each with the moment it may first go
(``scheduled_at``, and ``next_attempt_at`` which retries move): for named recipients
(``notifications.py``) and for an audience, a chunk at a time (``app/push/expansion.py``).

Without ``local_time`` or ``throttle`` every delivery has the same moment and the rows are
written by ``INSERT … SELECT``. With them each device's moment is its own: the chunk's
devices and zones are read, their moments computed (``app/push/moments.py``) and the
rows written from three arrays on PostgreSQL (``INSERT … SELECT … FROM unnest``), by an
executemany of ``ROWS_PER_STATEMENT`` rows a statement on SQLite.

A device's zone is its own ``time_zone``, else the zone of its user's most recently seen
device that has one, else ``DEFAULT_TIME_ZONE``; a stored name no zone has counts as none.

Throttle: without ``local_time`` the k-th delivery written (``position``: the deliveries
written before, ``targeted``) goes ``k // N`` minutes after the start. With it, each
delivery goes at its local moment or at the same second of the first later minute with
fewer than N; the deliveries on each moment are kept in ``throttle_moments``, read and
written back in the transaction that writes the chunk. A notification's deliveries are
written by one transaction at a time (accepting it; an expansion step holds its row
lock), so no moment ever gets more than N, whichever worker writes which chunk.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased
from sqlalchemy.types import Uuid

from app.database.upsert import insert_for
from app.models import Channel, Delivery, DeliveryState, Device, ThrottleMoment
from app.models.notification import ONE_PER_DEVICE
from app.models.types import UTCDateTime
from app.push import moments
from app.push.message import PushType
from app.resources.notification_schedule import Schedule

PUSH_CHANNELS = tuple(Channel)  # every channel a notification reaches
ROWS_PER_STATEMENT = 1000


@dataclass(frozen=True)
class Written:
    """The deliveries one statement or chunk wrote: their ids, and the earliest moment."""

    ids: list[int]
    first_due_at: datetime | None

    def __add__(self, other: "Written") -> "Written":
        earliest = [at for at in (self.first_due_at, other.first_due_at) if at is not None]
        return Written(self.ids + other.ids, min(earliest, default=None))


NOTHING = Written([], None)


def write(connection, notification_id, schedule: Schedule, conditions, *, position: int,
          now: datetime, default_zone: str, skip_duplicates=False) -> Written:
    """One pending delivery of the notification for each device ``conditions`` select,
    the ``position``-th delivery written of it first. ``skip_duplicates``: a device that
    has one already keeps it (``ON CONFLICT DO NOTHING``)."""
    if not schedule.per_device:
        start = schedule.start(now)
        values = delivery_values(notification_id, now, connection.dialect.name,
                                 due=literal(start, UTCDateTime()))
        statement = insert_for(connection, Delivery).from_select(
            list(values), select(*values.values()).where(*conditions))
        ids = _inserted(connection, statement, skip_duplicates)
        return Written(ids, start if ids else None)
    devices = connection.execute(select(Device.id, Device.channel, _zone(schedule))
                                 .where(*conditions).order_by(Device.id)).all()
    if not devices:
        return NOTHING
    due = moments_for(connection, notification_id, schedule, [row[2] for row in devices],
                      position=position, now=now, default_zone=default_zone)
    if connection.dialect.name == "postgresql":
        ids = _inserted(connection, _from_arrays(connection, notification_id, devices, due, now),
                        skip_duplicates)
    else:  # executemany: compiled once, sent as multi-row VALUES of ROWS_PER_STATEMENT rows
        rows = [_row(notification_id, device_id, channel, at, now)
                for (device_id, channel, _), at in zip(devices, due, strict=True)]
        ids = _inserted(connection, insert_for(connection, Delivery), skip_duplicates, rows)
    return Written(ids, min(due) if ids else None)


def _from_arrays(connection, notification_id, devices, due, now):
    """PostgreSQL: ``INSERT … SELECT … FROM unnest(ids, channels, moments)``: three array
    parameters, however many rows (a statement of thousands of parameters costs more to
    build than to run)."""
    given = func.unnest(
        bindparam(None, [row[0] for row in devices], type_=ARRAY(Uuid())),
        bindparam(None, [row[1] for row in devices], type_=ARRAY(String())),
        bindparam(None, due, type_=ARRAY(DateTime(timezone=True))),
    ).table_valued("device_id", "channel", "at").render_derived()
    values = {**delivery_values(notification_id, now, "postgresql"),
              "device_id": given.c.device_id, "channel": given.c.channel,
              "next_attempt_at": given.c.at, "scheduled_at": given.c.at}
    return insert_for(connection, Delivery).from_select(list(values),
                                                        select(*values.values()))


def moments_for(connection, notification_id, schedule: Schedule, zones, *, position: int,
                now: datetime, default_zone: str) -> list[datetime]:
    """When each of the devices in the zones named (None: none) may first be sent to, in
    order, the first of them the ``position``-th delivery of the notification."""
    start = schedule.start(now)
    if schedule.local_time is None:
        assert schedule.throttle is not None
        return [moments.throttled(start, position + index, schedule.throttle)
                for index in range(len(zones))]
    fallback = moments.zone_named(default_zone, ZoneInfo("UTC"))
    local = [moments.local_moment(start, schedule.local_time,
                                  moments.zone_named(zone, fallback)) for zone in zones]
    if schedule.throttle is None:
        return local
    throttle = moments.Throttle(schedule.throttle,
                                lambda first, last: _placed(connection, notification_id,
                                                            first, last))
    spread = throttle.place_all(local)
    _keep_placed(connection, notification_id, throttle.placed, set(spread))
    return spread


def _zone(schedule):
    """The zone each selected device's local time is read in (see the module's doc)."""
    if schedule.local_time is None:
        return literal(None).label("zone")
    sibling = aliased(Device)
    latest = (select(sibling.time_zone)
              .where(sibling.user_id == Device.user_id, sibling.time_zone.is_not(None))
              .order_by(sibling.last_seen_at.desc(), sibling.id).limit(1).scalar_subquery())
    return func.coalesce(Device.time_zone, latest).label("zone")


def _placed(connection, notification_id, first, last) -> dict[datetime, int]:
    table = ThrottleMoment.__table__
    return dict(connection.execute(
        select(table.c.moment, table.c.deliveries)
        .where(table.c.notification_id == notification_id,
               table.c.moment.between(first, last))).all())


def _keep_placed(connection, notification_id, placed, changed):
    rows = [{"notification_id": notification_id, "moment": moment,
             "deliveries": placed[moment]} for moment in sorted(changed)]
    for first in range(0, len(rows), ROWS_PER_STATEMENT):
        statement = insert_for(connection, ThrottleMoment).values(
            rows[first:first + ROWS_PER_STATEMENT])
        connection.execute(statement.on_conflict_do_update(
            index_elements=["notification_id", "moment"],
            set_={"deliveries": statement.excluded.deliveries}))


def _row(notification_id, device_id, channel, at, now):
    return {"notification_id": notification_id, "device_id": device_id, "channel": channel,
            "apns_id": uuid.uuid4(), "state": DeliveryState.PENDING.value, "attempts": 0,
            "next_attempt_at": at, "scheduled_at": at, "created_at": now, "updated_at": now}


def _inserted(connection, statement, skip_duplicates, rows=None) -> list[int]:
    if skip_duplicates:
        statement = statement.on_conflict_do_nothing(
            index_elements=["notification_id", "device_id"], index_where=ONE_PER_DEVICE)
    # (rowcount is not reliable across drivers for INSERT … SELECT: the rows say)
    statement = statement.returning(Delivery.id)
    if rows is None:
        return list(connection.scalars(statement))
    return list(connection.execute(
        statement, rows,
        execution_options={"insertmanyvalues_page_size": ROWS_PER_STATEMENT}).scalars())


def delivery_values(notification_id, now, dialect_name, due=None):
    """Column → SQL of a new pending delivery of the notification to each ``Device`` row
    selected, written ``now`` and due at ``due`` (default now)."""
    written = literal(now, UTCDateTime())
    return {
        "notification_id": literal(notification_id, Uuid()),
        "device_id": Device.id,
        "channel": Device.channel,
        "apns_id": random_uuid(dialect_name),
        "state": literal(DeliveryState.PENDING.value),
        "attempts": literal(0),
        "next_attempt_at": written if due is None else due,
        "scheduled_at": written if due is None else due,
        "created_at": written,
        "updated_at": written,
    }


def reachable(push_type, environment=None):
    """Devices that can take this push: a live endpoint of the right kind (a VoIP token
    for VoIP pushes, a push-to-start token for Live Activities: APNs only; FCM devices
    take alert and background pushes)."""
    push_type = PushType(push_type)
    conditions = [Device.channel.in_(PUSH_CHANNELS), Device.token.is_not(None),
                  Device.is_invalidated.is_(False),
                  Device.is_voip.is_(push_type is PushType.VOIP)]
    if push_type is PushType.LIVEACTIVITY:
        conditions.append(Device.live_activity_token.is_not(None))
    if environment is not None:
        conditions.append(Device.environment == environment)
    return conditions


def random_uuid(dialect_name):
    """A fresh version-4 UUID per row, made by the database."""
    if dialect_name == "postgresql":
        return func.gen_random_uuid()
    # SQLite: 32 hex digits as the Uuid type stores them, with the version and variant bits
    def hex_digits(count):
        return func.substr(func.lower(func.hex(func.randomblob(8))), 1, count)
    variant = func.substr("89ab", 1 + func.abs(func.random()) % 4, 1)
    return (hex_digits(12) + literal("4") + hex_digits(3) + variant + hex_digits(15))
