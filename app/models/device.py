import enum
import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import UTCDateTime, utcnow


class Channel(enum.StrEnum):
    IOS_PUSH = "ios_push"


class Device(db.Model):
    """One push endpoint: for ``ios_push`` an APNs device token.

    The token is unique per channel in the database; registering it again moves the
    row to the new owner instead of adding one.
    """

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("channel", "token"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    channel: Mapped[str] = mapped_column(String(32), default=Channel.IOS_PUSH.value)
    token: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL"), index=True
    )
    bundle_id: Mapped[str | None] = mapped_column(String(255))
    bundle_version: Mapped[str | None] = mapped_column(String(32))
    build_number: Mapped[str | None] = mapped_column(String(32))
    is_production: Mapped[bool] = mapped_column(Boolean, default=True)
    is_voip: Mapped[bool] = mapped_column(Boolean, default=False)
    is_invalidated: Mapped[bool] = mapped_column(Boolean, default=False)
    invalidated_reason: Mapped[str | None] = mapped_column(String(64))
    invalidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped["User | None"] = relationship(back_populates="devices")  # noqa: F821
    session: Mapped["Credential | None"] = relationship()  # noqa: F821
