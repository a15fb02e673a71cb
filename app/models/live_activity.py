import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

MAX_ACTIVITY_ID_LENGTH = 128


class LiveActivity(Model):
    """One running Live Activity on one device: the push token ActivityKit gave it (updates
    and ends it; sealed at rest, never shown), or the broadcast channel it listens on.

    ``activity_id`` is the app's own name for it, unique per device: registering it again
    rotates its token. ``ended_at`` is set when it stops being a target (an ``end`` sent,
    APNs refused its token, its owner deleted it); one older than ``LIVE_ACTIVITY_MAX_AGE``
    is no target either, ended or not.
    """

    __tablename__ = "live_activities"
    __table_args__ = (UniqueConstraint("device_id", "activity_id"),
                      Index("ix_live_activities_audience", "attributes_type", "activity_id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True)
    activity_id: Mapped[str] = mapped_column(String(MAX_ACTIVITY_ID_LENGTH))
    attributes_type: Mapped[str] = mapped_column(String(255))
    token: Mapped[str | None] = mapped_column(Text)  # sealed (``app.security.crypto.seal``)
    channel_id: Mapped[str | None] = mapped_column(String(255))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def state(self) -> str:
        """running, or ended (explicitly, or by age past ``LIVE_ACTIVITY_MAX_AGE``)."""
        age = timedelta(seconds=current_app.config["LIVE_ACTIVITY_MAX_AGE"])
        return "running" if self.ended_at is None and self.created_at > utcnow() - age \
            else "ended"


class LiveActivityChannel(Model):
    """An iOS 18 broadcast channel, made at APNs's channel management API for one app and
    environment: the ``channel_id`` APNs gave it is what the app subscribes its activities
    to. Owned by the API key that made it (``owner_id``); ``ended_at`` is set when it was
    found gone at APNs (a broadcast answered ``ChannelNotRegistered``)."""

    __tablename__ = "live_activity_channels"
    __table_args__ = (UniqueConstraint("environment", "channel_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"), index=True)
    channel_id: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(16))
    message_storage_policy: Mapped[int] = mapped_column(Integer)  # APNs's 0 or 1
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def state(self) -> str:
        return "open" if self.ended_at is None else "ended"
