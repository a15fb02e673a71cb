"""Push workers' heartbeats: each running ``flask push worker`` keeps a row saying it is
alive (written every ``interval`` seconds, removed when it stops), so ``/readyz`` can tell
that something is sending and ``flask push status`` can list who."""

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from app.database.engine import write_transaction
from app.models import WorkerHeartbeat
from app.models.types import utcnow

log = logging.getLogger(__name__)


def this_worker():
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Heartbeat:
    engine: Engine
    interval: float
    worker_id: str = ""

    def __post_init__(self):
        self.worker_id = self.worker_id or this_worker()
        self.started_at = utcnow()

    async def keep_beating(self, counts):
        """Beat every ``interval`` seconds until cancelled, then remove the row."""
        try:
            while True:
                try:
                    await asyncio.to_thread(self.beat, dict(counts))
                except Exception:  # the database is away: /readyz will see the beat age
                    log.warning("push worker: heartbeat not written", exc_info=True)
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.to_thread(self.remove))

    def beat(self, counts):
        values = {"beat_at": utcnow(), "counts": counts}
        with write_transaction(self.engine) as connection:
            mine = WorkerHeartbeat.worker_id == self.worker_id
            updated = connection.execute(update(WorkerHeartbeat).where(mine).values(values))
            if not updated.rowcount:
                connection.execute(insert(WorkerHeartbeat).values(
                    worker_id=self.worker_id, started_at=self.started_at, **values))

    def remove(self):
        with write_transaction(self.engine) as connection:
            connection.execute(delete(WorkerHeartbeat)
                               .where(WorkerHeartbeat.worker_id == self.worker_id))


def newest_beat(connection) -> datetime | None:
    return connection.execute(select(WorkerHeartbeat.beat_at)
                              .order_by(WorkerHeartbeat.beat_at.desc()).limit(1)).scalar()


def workers(connection):
    """Every heartbeat, newest first."""
    return connection.execute(select(WorkerHeartbeat)
                              .order_by(WorkerHeartbeat.beat_at.desc())).all()
