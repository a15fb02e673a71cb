import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class NotificationStatus(enum.StrEnum):
    """Read from its deliveries' states, never stored: nothing to keep in step."""

    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    INVALIDATED = "invalidated"
    EXPIRED = "expired"


FINAL_STATES = frozenset({DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.INVALIDATED,
                          DeliveryState.EXPIRED})


class Notification(Model):
    """One notification a backend service asked to send, to users and devices; its
    content is kept as given, to build every delivery's request from."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("sender_id", "idempotency_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sender_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    push_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict] = mapped_column(JSON)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    deliveries: Mapped[list["Delivery"]] = relationship(
        back_populates="notification", passive_deletes=True, lazy="raise")


class Delivery(Model):
    """One notification to one device: the ledger row that makes "sent once" hold.

    ``apns_id`` is minted with the row and sent on every attempt. A worker takes the row by
    setting ``state`` to ``sending`` with a ``lease_until``; when the lease runs out (the
    worker died) the row is due again. ``next_attempt_at`` says when it may be tried.
    """

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    # a Live Activity update or end: the activity it goes to (its token, not the device's)
    live_activity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("live_activities.id", ondelete="SET NULL"), index=True)
    # a broadcast: the one request to a channel, whatever its audience
    live_activity_channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("live_activity_channels.id", ondelete="SET NULL"), index=True)
    apns_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    notification: Mapped[Notification] = relationship(back_populates="deliveries")


class ProviderToken(Model):
    """The APNs provider JWT shared by every worker on every machine: minted by whichever
    needs it first, replaced only by compare-and-set on ``issued_at``."""

    __tablename__ = "provider_tokens"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # team id : key id
    value: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[int] = mapped_column(BigInteger)
