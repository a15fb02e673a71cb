"""The Telegram channel: each delivery is one Bot API ``sendMessage`` to the device's chat.

The text is the alert's title (bold) and body, HTML-escaped (``parse_mode: HTML``); a
``passive`` interruption level sends it silently (``disable_notification``); data keys are
not sent. The bot token (``TELEGRAM_BOT_TOKEN``) is in the URL's path: no URL is ever
logged, and any error text has the token redacted.

Telegram's limits hold across every worker (``slots.py``): at most
``TELEGRAM_MESSAGES_PER_SECOND`` messages a second in all and one every
``TELEGRAM_CHAT_INTERVAL`` seconds to one chat, as Telegram receives them: each message
takes its permits from the database as it leaves and frees them only that long after its
answer came back. One chat's messages go one after another, in order.

The answer table (``outcome_of``): ``ok: true`` sent; 403 and 400 "chat not found"
invalidate the device with Telegram's description as the reason; 429 holds the whole
channel for ``parameters.retry_after`` seconds (every worker) and retries; 400 with
``migrate_to_chat_id`` moves the device to the new chat id and sends again; other 400s
fail; 5xx and network errors retry.
"""

import asyncio
import html
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.database.engine import write_transaction
from app.models.device import Device as DeviceModel
from app.models.types import utcnow
from app.push import slots
from app.push.fanout import in_order
from app.push.http_pool import PooledHttp
from app.push.message import Action, Address, Notification, Outcome, PushType, Refusal

log = logging.getLogger(__name__)

TOPIC = "telegram"  # the dispatcher's pause scope
CHANNEL_SCOPE = "telegram"
MAX_TEXT = 4096
MAX_WAIT = 5.0  # a send whose permits are not free by then is retried later
POLL = 0.25  # seconds between looks at a permit that is in use
LEASE_MARGIN = 10.0
MAX_ANSWER_BYTES = 64 * 1024
REASON_LENGTH = 64
REDACTED = "<bot token>"
_devices = DeviceModel.__table__


@dataclass(frozen=True)
class TelegramSettings:
    bot_token: str
    api_url: str = "https://api.telegram.org"
    timeout: float = 10.0
    messages_per_second: float = 30.0
    chat_interval: float = 1.0
    connections: int = 30

    @classmethod
    def from_config(cls, config) -> "TelegramSettings | None":
        """None when no bot token is configured: the channel is off."""
        if not config["TELEGRAM_BOT_TOKEN"]:
            return None
        return cls(config["TELEGRAM_BOT_TOKEN"], config["TELEGRAM_API_URL"].rstrip("/"),
                   config["TELEGRAM_TIMEOUT"], config["TELEGRAM_MESSAGES_PER_SECOND"],
                   config["TELEGRAM_CHAT_INTERVAL"])


@dataclass(frozen=True, slots=True)
class Chat:
    device_id: object
    chat_id: str  # an integer's text, or @username


def message_text(notification: Notification) -> str | None:
    """The alert as Telegram HTML: the title bold, then the body; None when it has none."""
    alert = notification.alert
    if isinstance(alert, str):
        return html.escape(alert, quote=False) or None
    if not alert:
        return None
    lines = []
    if alert.get("title"):
        lines.append(f"<b>{html.escape(str(alert['title']), quote=False)}</b>")
    if alert.get("body"):
        lines.append(html.escape(str(alert["body"]), quote=False))
    return "\n".join(lines) or None


def request_body(chat_id: str, text: str, notification: Notification) -> dict:
    body = {"chat_id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
            "text": text, "parse_mode": "HTML"}
    if notification.interruption_level == "passive":
        body["disable_notification"] = True
    return body


def outcome_of(delivery_id: str, status: int, answer: dict) -> Outcome:
    """The action for one Bot API answer (the table above); a migration is handled by the
    caller (``migrate_to_chat_id``)."""
    if status == 200 and answer.get("ok") is True:
        return Outcome(delivery_id, Action.SENT, 200)
    description = str(answer.get("description") or f"HTTP {status}")
    reason = description[:REASON_LENGTH]
    if status == 403 or (status == 400 and "chat not found" in description.lower()):
        return Outcome(delivery_id, Action.INVALIDATE, status, reason)
    if status == 429:
        return Outcome(delivery_id, Action.RETRY, status, "TooManyRequests",
                       retry_after=_retry_after(answer))
    if status >= 500:
        return Outcome(delivery_id, Action.RETRY, status, reason)
    return Outcome(delivery_id, Action.FAIL, status, reason)


def migrated_to(answer: dict) -> str | None:
    parameters = answer.get("parameters")
    if isinstance(parameters, dict) and isinstance(parameters.get("migrate_to_chat_id"), int):
        return str(parameters["migrate_to_chat_id"])
    return None


def _retry_after(answer: dict) -> float:
    parameters = answer.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return float(value) if isinstance(value, int | float) and value >= 0 else 1.0


class TelegramTransport(PooledHttp):
    def __init__(self, settings: TelegramSettings, engine, clock=time.time):
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._url = f"{settings.api_url}/bot{settings.bot_token}/sendMessage"
        self._channel_limit = slots.Limit.per_second(CHANNEL_SCOPE,
                                                     settings.messages_per_second)
        # how long a permit stays taken by a worker that died mid-send
        self._lease = settings.timeout + LEASE_MARGIN

    def address(self, device, notification: Notification) -> Address | Refusal:
        if notification.push_type is not PushType.ALERT:
            return Refusal("NotForTelegram", f"{notification.push_type.value} pushes are not "
                                             "shown in a chat")
        if not device.token:
            return Refusal("NoToken", "the device has no chat id")
        return Address(Chat(device.id, device.token), notification, TOPIC, device.token)

    async def send_many(self, items: Sequence[tuple[Chat, Notification, str]]
                        ) -> list[Outcome]:
        """Each chat's messages one after another, in their order; chats side by side."""
        by_chat: dict[str, list[int]] = {}
        for index, (chat, _, _) in enumerate(items):
            by_chat.setdefault(chat.chat_id, []).append(index)
        outcomes: dict[int, Outcome] = {}

        async def one_chat(indexes: list[int]):
            for index in indexes:
                outcomes[index] = await self._send_checked(*items[index])

        await in_order(one_chat, [(indexes,) for indexes in by_chat.values()],
                       self._settings.connections)
        return [outcomes[index] for index in range(len(items))]

    async def _send_checked(self, chat: Chat, notification: Notification, delivery_id: str
                            ) -> Outcome:
        text = message_text(notification)
        if text is None:
            return Outcome(delivery_id, Action.FAIL, reason="NothingToShow",
                           detail="the notification has no alert title or body")
        if len(text) > MAX_TEXT:
            return Outcome(delivery_id, Action.FAIL, reason="PayloadTooLarge",
                           detail=f"the text has {len(text)} characters; Telegram takes "
                                  f"{MAX_TEXT}")
        return await self._send(chat, notification, text, delivery_id)

    async def _send(self, chat: Chat, notification, text, delivery_id, migrated=False
                    ) -> Outcome:
        taken = await self._permits(chat, delivery_id)
        if isinstance(taken, Outcome):
            return taken
        try:
            status, answer = await self._post(request_body(chat.chat_id, text, notification))
            if status == 429:  # held before the permit is free again: nothing slips past
                await asyncio.to_thread(
                    slots.hold, self._engine, CHANNEL_SCOPE,
                    utcnow() + timedelta(seconds=_retry_after(answer)), utcnow())
        finally:
            await asyncio.to_thread(slots.give_back, self._engine, taken, utcnow())
        if status is None:
            return Outcome(delivery_id, Action.RETRY, reason="TransportError",
                           outcome_unknown=True, detail=answer["description"])
        new_chat = migrated_to(answer) if status == 400 and not migrated else None
        if new_chat is not None:
            await asyncio.to_thread(self._move, chat, new_chat)
            return await self._send(Chat(chat.device_id, new_chat), notification, text,
                                    delivery_id, migrated=True)
        return outcome_of(delivery_id, status, answer)

    async def _permits(self, chat: Chat, delivery_id: str) -> slots.Taken | Outcome:
        """Telegram's limits for one message, taken as it leaves (``slots.py``): waited for
        up to ``MAX_WAIT`` seconds, else the delivery is retried when they may be free."""
        limits = (self._channel_limit, slots.Limit((f"{CHANNEL_SCOPE}:{chat.chat_id}",),
                                                   self._settings.chat_interval))
        give_up_at = self._clock() + MAX_WAIT
        while True:
            taken = await asyncio.to_thread(slots.take, self._engine, CHANNEL_SCOPE, limits,
                                            utcnow(), self._lease)
            if isinstance(taken, slots.Taken):
                return taken
            free_at, now = taken.until.timestamp(), self._clock()
            if free_at > give_up_at and (taken.held or now >= give_up_at):
                return Outcome(delivery_id, Action.RETRY, reason="RateLimited",
                               retry_after=max(free_at - now, POLL),
                               detail="Telegram's rate limits: no free slot for now")
            # a permit in use is given back as its answer comes: look again soon
            await asyncio.sleep(min(max(free_at - now, 0.0), POLL))

    async def _post(self, body: dict) -> tuple[int | None, dict]:
        try:
            async with self._http().post(self._url, json=body,
                                         allow_redirects=False) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES)
                return response.status, _answer(raw)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return None, {"description": self.redacted(f"{type(exc).__name__}: {exc}")}

    def redacted(self, text: str) -> str:
        return text.replace(self._settings.bot_token, REDACTED)

    def _move(self, chat: Chat, new_chat: str):
        """The group became a supergroup: the device follows it to its new chat id."""
        try:
            with write_transaction(self._engine) as connection:
                connection.execute(update(_devices).where(_devices.c.id == chat.device_id)
                                   .values(token=new_chat, updated_at=utcnow()))
        except IntegrityError:  # another device already has the new chat: it stays
            log.info("telegram: device %s's chat migrated to a chat another device has",
                     chat.device_id)

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._settings.connections),
            timeout=aiohttp.ClientTimeout(total=self._settings.timeout))


def _answer(raw: bytes) -> dict:
    try:
        answer = json.loads(raw)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
