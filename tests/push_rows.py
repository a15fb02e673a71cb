"""Ledger rows made directly (Core inserts, fast enough for 100,000): devices, a
notification, its deliveries. Each function takes a SQLAlchemy ``Connection``."""

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func, insert, select

from app.models import Device
from app.models.notification import Delivery, Notification
from app.models.types import utcnow

BUNDLE_ID = "com.example.app"


def make_devices(connection, count=1, *, tokens=None, **attributes) -> list[dict]:
    """Registered iOS devices (registered a minute ago); their rows as dicts."""
    registered = utcnow() - timedelta(minutes=1)
    rows = [{"id": uuid.uuid4(), "channel": "ios_push",
             "token": tokens[index] if tokens else secrets.token_hex(32),
             "environment": "production", "bundle_id": BUNDLE_ID, "is_voip": False,
             "is_invalidated": False, "last_seen_at": registered, "created_at": registered,
             "updated_at": registered, **attributes} for index in range(count)]
    connection.execute(insert(Device.__table__), rows)
    return rows


def make_fcm_devices(connection, count=1, **attributes) -> list[dict]:
    """Registered Android devices: FCM registration tokens, no APNs environment."""
    tokens = [f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"
              for _ in range(count)]
    return make_devices(connection, count, tokens=tokens, channel="fcm", environment=None,
                        bundle_id=None, **attributes)


def make_notification(connection, push_type="alert", expires_at=None, **content) -> uuid.UUID:
    notification_id = uuid.uuid4()
    connection.execute(insert(Notification.__table__).values(
        id=notification_id, push_type=push_type, expires_at=expires_at,
        content={"push_type": push_type, "alert": "Hello", **content}))
    return notification_id


def make_deliveries(connection, notification_id, devices) -> list[dict]:
    """One pending delivery a device, in the devices' order; their rows as dicts."""
    now = utcnow()
    rows = [{"notification_id": notification_id, "device_id": device["id"],
             "channel": device["channel"], "apns_id": uuid.uuid4(), "state": "pending",
             "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now}
            for device in devices]
    connection.execute(insert(Delivery.__table__), rows)
    return rows


def deliveries_by_apns_id(connection) -> dict[str, object]:
    return {str(row.apns_id): row for row in connection.execute(select(Delivery.__table__))}


def device_row(connection, device_id):
    return connection.execute(
        select(Device.__table__).where(Device.__table__.c.id == device_id)).first()


def count_by_state(connection) -> dict[str, int]:
    table = Delivery.__table__
    return dict(connection.execute(
        select(table.c.state, func.count()).group_by(table.c.state)).all())
