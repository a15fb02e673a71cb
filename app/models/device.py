import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.credential import Credential
    from app.models.user import User


class Channel(enum.StrEnum):
    """How a device is reached: a new channel is one value here, one token rule
    (``app.resources.devices.TOKEN_RULES``) and one transport."""

    IOS_PUSH = "ios_push"
    FCM = "fcm"  # Android (and any app) through Firebase Cloud Messaging HTTP v1
    WEBHOOK = "webhook"  # an absolute https URL that takes signed POSTs (app/push/webhook.py)
    TELEGRAM = "telegram"  # a Telegram chat id or @channel, through a bot (app/push/telegram.py)


# Channels where the APNs-only attributes (environment, VoIP, Live Activity token) apply.
APNS_CHANNELS = frozenset({Channel.IOS_PUSH})


class Environment(enum.StrEnum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class Device(Model):
    """One app installation, with an optional push endpoint (``channel`` + ``token``).

    A push endpoint is unique per channel, and a client-chosen ``fingerprint`` unique per
    user: registering a token that is another device's moves it, so one endpoint never
    belongs to two devices or two users. Every wire format that shows devices (Poparazzi's
    ``apple_device_tokens``, ``devices``, the seed APIs) is a view of this row.
    """

    __tablename__ = "devices"
    # A user's devices in the orders their pages walk (the tokens by creation; the
    # devices and a user's `devices` relationship latest seen first, indexed below the
    # class): a page reads its rows from an index, however many the user owns.
    __table_args__ = (UniqueConstraint("channel", "token"),
                      UniqueConstraint("user_id", "fingerprint"),
                      Index("ix_devices_user_id_created_at", "user_id", "created_at", "id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID | None] = mapped_column(  # indexed first in both below
        ForeignKey("users.id", ondelete="CASCADE")
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL", use_alter=True), index=True
    )
    fingerprint: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(32))
    token: Mapped[str | None] = mapped_column(String(2048))  # a webhook URL: 2,048
    environment: Mapped[str | None] = mapped_column(String(16))
    bundle_id: Mapped[str | None] = mapped_column(String(255))
    app_version: Mapped[str | None] = mapped_column(String(32))
    build_number: Mapped[str | None] = mapped_column(String(32))
    device_model: Mapped[str | None] = mapped_column(String(64))
    os_version: Mapped[str | None] = mapped_column(String(64))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    is_voip: Mapped[bool] = mapped_column(Boolean, default=False)
    # Encrypted at rest (``app.security.crypto.seal``); written by clients, never shown.
    live_activity_token: Mapped[str | None] = mapped_column(Text)
    # A webhook endpoint's signing secret (``whsec_…``), sealed; shown once, when issued.
    signing_secret: Mapped[str | None] = mapped_column(Text)
    # Since when every attempt to this endpoint failed (null after a success): webhooks.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_invalidated: Mapped[bool] = mapped_column(Boolean, default=False)
    invalidated_reason: Mapped[str | None] = mapped_column(String(64))
    invalidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped["User | None"] = relationship(back_populates="devices")
    session: Mapped["Credential | None"] = relationship(
        foreign_keys=[session_id])


class DeviceTopic(Model):
    """A device's subscription to a topic (FCM's names). Read by topic in device order when
    an audience is expanded (the index), by device when its owner lists them (the key)."""

    __tablename__ = "device_topics"
    __table_args__ = (Index("ix_device_topics_topic_device_id", "topic", "device_id"),)

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(256), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# (a descending column needs the mapped class)
Index("ix_devices_user_id_last_seen_at", Device.user_id, Device.last_seen_at.desc(), Device.id)
