from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime


class SendSlot(Model):
    """The next moment something may be sent within a scope (Telegram's whole channel, one
    chat): every worker reserves its slot here, so a rate limit holds across processes
    (``app/push/slots.py``)."""

    __tablename__ = "send_slots"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime)
