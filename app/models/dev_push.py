from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class DevPushMessage(Model):
    """The development stand-in's outbox: pushes that would have been sent
    (``PUSH_STANDIN=outbox``); ``flask push outbox`` prints them. The token's last 8
    characters only."""

    __tablename__ = "dev_push_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    apns_id: Mapped[str] = mapped_column(String(36))  # the delivery's apns-id
    device_id: Mapped[str] = mapped_column(String(36), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    token_tail: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict] = mapped_column(JSON)  # as the provider would have received it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
