"""The queue seam: what tells workers a delivery is due, behind one small interface.

The ledger is always the source of truth (``ledger.py``). The embedded queue is the ledger
itself: workers claim due rows, so there is nothing to enqueue; on PostgreSQL it tells
the idle workers, with a ``NOTIFY`` delivered at commit, to look again
(``wakeup.py``). procrastinate
(``procrastinate_queue.py``, ``PUSH_QUEUE=procrastinate``) writes jobs naming deliveries,
in the transaction that writes the deliveries. The notifications service calls
``enqueue_notification`` (``enqueue_expansion`` for an audience, which the workers expand:
``expansion.py``, calling ``enqueue_deliveries`` for each chunk written), the dispatcher
``requeue``, the worker ``run``. Every delivery is due at its own ``next_attempt_at``.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from app.push.wakeup import notify_due


class Queue(Protocol):
    def enqueue_notification(self, connection, notification_id) -> None:
        """A notification's deliveries were just written on ``connection``."""

    def enqueue_expansion(self, connection, notification_id) -> None:
        """A notification for an audience was just written on ``connection``."""

    def enqueue_deliveries(self, connection, ids: list[int]) -> None:
        """Deliveries (a step of an expansion) were just written on ``connection``."""

    def requeue(self, connection, due: Mapping[int, datetime | None]) -> None:
        """Deliveries (id → when due; None: now) went back to pending on ``connection``."""

    async def run(self, worker) -> None:
        """Feed ``worker`` (``worker.Worker``) chunks until it stops."""


class EmbeddedQueue:
    """Workers claim due rows from the ledger, and expand the notifications still
    ``expanding``: nothing to enqueue, only idle workers to wake."""

    def enqueue_notification(self, connection, notification_id) -> None:
        notify_due(connection)

    def enqueue_expansion(self, connection, notification_id) -> None:
        notify_due(connection)

    def enqueue_deliveries(self, connection, ids) -> None:
        if ids:
            notify_due(connection)

    def requeue(self, connection, due) -> None:
        if due:
            notify_due(connection)

    async def run(self, worker) -> None:
        await worker.run_lanes()


NO_QUEUE = EmbeddedQueue()


def queue_for(config) -> Queue:
    """The queue ``PUSH_QUEUE`` names."""
    if config["PUSH_QUEUE"] == "procrastinate":
        # imported here: procrastinate is one of the postgres extras
        from app.push.procrastinate_queue import ProcrastinateQueue

        return ProcrastinateQueue(config["PUSH_CHUNK_SIZE"])
    return NO_QUEUE
