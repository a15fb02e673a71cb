from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime


class WorkerHeartbeat(Model):
    """A running push worker's sign of life, written every few seconds
    (``PUSH_HEARTBEAT_INTERVAL``) and removed when the worker stops: ``/readyz`` and
    ``flask push status`` read how old the newest is."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # host:pid
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    counts: Mapped[dict] = mapped_column(JSON)  # deliveries by outcome since it started
