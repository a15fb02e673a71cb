import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class NotificationStatus(enum.StrEnum):
    """Read from its deliveries' states, never stored: nothing to keep in step."""

    EXPANDING = "expanding"  # an audience's deliveries are still being written
    SCHEDULED = "scheduled"  # none of its deliveries is due yet
    QUEUED = "queued"
    SENDING = "sending"
    DONE = "done"
    CANCELED = "canceled"  # its sender canceled it and nothing is left in flight


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    INVALIDATED = "invalidated"
    EXPIRED = "expired"
    CANCELED = "canceled"  # its notification was canceled before it was handed to a provider


FINAL_STATES = frozenset({DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.INVALIDATED,
                          DeliveryState.EXPIRED, DeliveryState.CANCELED})
CANCELED_REASON = "Canceled"  # a canceled delivery's ``last_reason``
CANCELED_DETAIL = "its notification was canceled before it was handed to a provider"


class Notification(Model):
    """One notification a backend service asked to send, to users and devices or to an
    audience; its content is kept as given, to build every delivery's request from.

    An audience is expanded by the workers (``app/push/expansion.py``): ``expanding``
    until every matching device has its delivery, ``expanded_through`` the last device id
    written (the keyset position a resumed expansion starts after), ``targeted`` the
    deliveries written so far, added to in the transaction that writes them.

    Its schedule (``app/resources/notification_schedule.py``): ``send_at`` (not before),
    ``local_time`` (each device at that wall-clock time in its own zone), ``throttle`` (at
    most that many deliveries a minute); ``first_due_at`` the earliest moment a delivery of
    it was written with, so its status tells "scheduled" without reading its deliveries.
    ``canceled_at``: when its sender canceled it (``app/resources/cancellation.py``)."""

    __tablename__ = "notifications"
    # The notifications still expanding, for the workers to find without a scan.
    __table_args__ = (UniqueConstraint("sender_id", "idempotency_key"),
                      Index("ix_notifications_expanding", "created_at",
                            postgresql_where=text("expanding"), sqlite_where=text("expanding")))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sender_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    push_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict] = mapped_column(JSON)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    audience: Mapped[dict | None] = mapped_column(JSON)
    expanding: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    expanded_through: Mapped[uuid.UUID | None] = mapped_column()
    targeted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    local_time: Mapped[str | None] = mapped_column(String(8))  # HH:MM:SS
    throttle: Mapped[int | None] = mapped_column(Integer)  # deliveries a minute
    first_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    deliveries: Mapped[list["Delivery"]] = relationship(
        back_populates="notification", passive_deletes=True, lazy="raise")


ONE_PER_DEVICE = text("live_activity_id IS NULL")
OPEN = text("state IN ('pending', 'sending')")  # what a claim can take
NAMES_ACTIVITY = text("live_activity_id IS NOT NULL")
NAMES_CHANNEL = text("live_activity_channel_id IS NOT NULL")


class Delivery(Model):
    """One notification to one device: the ledger row that makes "sent once" hold.

    ``apns_id`` is minted with the row and sent on every attempt. A worker takes the row by
    setting ``state`` to ``sending`` with a ``lease_until``; when the lease runs out (the
    worker died) the row is due again. ``next_attempt_at`` says when it may be tried;
    ``scheduled_at`` when it could first be (its notification's schedule), never moved.
    """

    __tablename__ = "deliveries"
    # One delivery per (notification, device), decided by the database: an audience chunk
    # expanded twice adds nothing. (Deliveries of deleted devices keep a null device_id; a
    # Live Activity update goes once to each running activity, several on one device.)
    # Most deliveries are written three times (pending, sending, sent), each write a new
    # entry in every index whose rows it is in (a state change is never a HOT update):
    # the due index holds only what a claim can take, the Live Activity ones only rows
    # naming one (migration 0022).
    # A notification's deliveries are paged (and shown as its linkage) in the order of
    # their own index, however many (migration 0023).
    __table_args__ = (Index("ix_deliveries_due", "state", "next_attempt_at",
                            postgresql_where=OPEN, sqlite_where=OPEN),
                      Index("ix_deliveries_notification_id_created_at", "notification_id",
                            "created_at", "id"),
                      Index("uq_deliveries_notification_id_device_id", "notification_id",
                            "device_id", unique=True, postgresql_where=ONE_PER_DEVICE,
                            sqlite_where=ONE_PER_DEVICE),
                      Index("ix_deliveries_live_activity_id", "live_activity_id",
                            postgresql_where=NAMES_ACTIVITY, sqlite_where=NAMES_ACTIVITY),
                      Index("ix_deliveries_live_activity_channel_id",
                            "live_activity_channel_id", postgresql_where=NAMES_CHANNEL,
                            sqlite_where=NAMES_CHANNEL))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(  # indexed first in the page index
        ForeignKey("notifications.id", ondelete="CASCADE"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    # a Live Activity update or end: the activity it goes to (its token, not the device's)
    live_activity_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("live_activities.id", ondelete="SET NULL"))
    # a broadcast: the one request to a channel, whatever its audience
    live_activity_channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("live_activity_channels.id", ondelete="SET NULL"))
    apns_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # never null (nullable: see migration 0017)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    notification: Mapped[Notification] = relationship(back_populates="deliveries")

    @property
    def canceled_unwritten(self) -> bool:
        """Still pending though its notification was canceled: canceled, as the notification's
        counts say; a worker writes it so when it comes due (``resources/cancellation.py``:
        a cancel writes only the first of many itself)."""
        return self.state == DeliveryState.PENDING and \
            self.notification.canceled_at is not None

    @property
    def shown_state(self) -> str:
        return DeliveryState.CANCELED if self.canceled_unwritten else self.state

    @property
    def shown_reason(self) -> str | None:
        return CANCELED_REASON if self.canceled_unwritten else self.last_reason


class ThrottleMoment(Model):
    """How many deliveries of a throttled local-time notification were written with one
    moment: read and written back, a chunk at a time, by the transaction that writes them
    (the notification's writers are serialised), so no moment gets more than its
    ``throttle``."""

    __tablename__ = "throttle_moments"

    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True)
    moment: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    deliveries: Mapped[int] = mapped_column(Integer)


class DeliveryCount(Model):
    """A notification's deliveries by channel, state and whether they were attempted, kept
    by database triggers on ``deliveries`` (migration 0014) in the transaction of every
    statement that inserts, updates or deletes deliveries: exact, and read without counting
    the deliveries. PostgreSQL appends one row per statement and key (summed on read: a
    few rows per chunk, never a row per delivery, and no row shared by concurrent
    writers); SQLite keeps one row per key (its writers are serialised anyway)."""

    __tablename__ = "delivery_counts"
    __table_args__ = (Index("ix_delivery_counts_notification_id", "notification_id",
                            "channel", "state"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    attempted: Mapped[bool] = mapped_column(Boolean)
    count: Mapped[int] = mapped_column(BigInteger)


class ProviderToken(Model):
    """The APNs provider JWT shared by every worker on every machine: minted by whichever
    needs it first, replaced only by compare-and-set on ``issued_at``."""

    __tablename__ = "provider_tokens"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # team id : key id
    value: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[int] = mapped_column(BigInteger)
