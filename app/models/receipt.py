import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class ReceiptBatch(Model):
    """The receipts on their way to one API key's callback: at most one batch a key (the
    unique ``credential_id``), so a key's events leave in order. Its ``id`` is the
    ``webhook-id`` of every attempt (``app/push/receipts.py``)."""

    __tablename__ = "receipt_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                      index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReceiptEvent(Model):
    """One final outcome of a delivery whose notification an API key with a callback sent;
    written in the transaction that records the outcome, deleted once its batch is
    acknowledged."""

    __tablename__ = "receipt_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("receipt_batches.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[uuid.UUID]  # the delivery's public id (its apns-id)
    notification_id: Mapped[uuid.UUID]
    device_id: Mapped[uuid.UUID | None]
    channel: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
