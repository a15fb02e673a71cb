"""The development stand-in (``PUSH_STANDIN=outbox``): a transport that sends nothing.

Each delivery is written to ``dev_push_outbox`` with the payload its provider would have
received, logged as one INFO line, and counts as sent, so a newcomer running ``make run``
without APNs or FCM credentials sees a push go through; ``flask push outbox`` prints them.
Only the token's last 8 characters are kept or logged. The configuration refuses it in
production (``app/config.py``).
"""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from app.database.engine import write_transaction
from app.models.dev_push import DevPushMessage
from app.models.device import Channel
from app.models.types import utcnow
from app.push import apns, fcm
from app.push.message import (
    Action,
    Address,
    Notification,
    NotificationError,
    Outcome,
    Refusal,
)

log = logging.getLogger(__name__)

TOKEN_TAIL = 8
_table = DevPushMessage.__table__


@dataclass(frozen=True, slots=True)
class OutboxDevice:
    device_id: uuid.UUID
    token_tail: str


class OutboxTransport:
    """Stands in for ``channel``'s provider: the payload is rendered as that provider's."""

    def __init__(self, engine, channel: str):
        self._engine = engine
        self._channel = channel

    def address(self, device, notification: Notification) -> Address | Refusal:
        """The token rule: the device's push token, whatever the push type."""
        if not device.token:
            return Refusal("NoToken", "the device has no push token")
        return Address(OutboxDevice(device.id, device.token[-TOKEN_TAIL:]), notification,
                       self._channel, device.token)

    async def send_many(self, items: Sequence[tuple[OutboxDevice, Notification, str]]
                        ) -> list[Outcome]:
        payloads = {}  # one rendering per notification, as the real transports do
        rows, outcomes = [], []
        for device, notification, apns_id in items:
            if id(notification) not in payloads:
                payloads[id(notification)] = self._render(notification)
            payload = payloads[id(notification)]
            if isinstance(payload, NotificationError):
                outcomes.append(Outcome(apns_id, Action.CONFIG_ERROR, reason=payload.reason,
                                        detail=str(payload)))
                continue
            rows.append({"apns_id": apns_id, "device_id": str(device.device_id),
                         "channel": self._channel, "token_tail": device.token_tail,
                         "payload": payload, "created_at": utcnow()})
            outcomes.append(Outcome(apns_id, Action.SENT, 200))
        if rows:
            await asyncio.to_thread(self._record, rows)
        return outcomes

    def _render(self, notification: Notification) -> dict | NotificationError:
        try:
            if self._channel == Channel.FCM:
                return {"message": fcm.build_message(notification, time.time())}
            return json.loads(apns.build_payload(notification))
        except NotificationError as exc:
            return exc

    def _record(self, rows: list[dict]):
        with write_transaction(self._engine) as connection:
            connection.execute(_table.insert(), rows)
        for row in rows:
            log.info("development stand-in: nothing left this machine: push %s to %s device "
                     "%s (token …%s) recorded in dev_push_outbox", row["apns_id"],
                     row["channel"], row["device_id"], row["token_tail"])

    async def close(self):
        pass
