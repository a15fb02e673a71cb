"""The webhook channel: each delivery is one signed ``POST`` of JSON to the device's URL.

Signed per the Standard Webhooks specification with the ``standardwebhooks`` package:
``webhook-id`` is the delivery's id (its apns-id: the same on every retry, so receivers
de-duplicate on it), ``webhook-timestamp`` the moment of this attempt, ``webhook-signature``
``v1,<base64 HMAC-SHA256>`` under the endpoint's secret (``whsec_…``, issued once when the
endpoint registered, kept sealed).

Connections are reused (HTTP/1.1 keep-alive, ``aiohttp``); each name is resolved through
``CheckedResolver``, which refuses the addresses ``endpoints.EndpointPolicy`` refuses, so
the connection goes to an address that was checked. Redirects are not followed, at most
64 KiB of an answer is read.

The answer table (``outcome_of``): 2xx sent; 410 the device is removed as after APNs's
410; 400, 401, 403, 404, 413, 422 (and redirects, and other 4xx) failed, not retried;
408, 425, 429 (after ``Retry-After``), 5xx, timeouts and connection errors retried with
backoff until the notification expires. An endpoint that has failed without one success
for ``WEBHOOK_FAILING_FOR_MAX`` seconds (72 hours) is invalidated.
"""

import asyncio
import base64
import functools
import json
import logging
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import aiohttp
import standardwebhooks
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy import select, update

from app.database.engine import write_transaction
from app.models.device import Device as DeviceModel
from app.models.notification import Delivery
from app.models.types import utcnow
from app.push import endpoints
from app.push.fanout import in_order
from app.push.fcm import _retry_after as retry_after_seconds
from app.push.http_pool import PooledHttp
from app.push.ledger import among
from app.push.message import Action, Address, Notification, Outcome, Refusal
from app.security import crypto

log = logging.getLogger(__name__)

TOPIC = "webhook"  # the dispatcher's pause scope
MAX_ANSWER_BYTES = 64 * 1024
GONE = "Gone"
FAILING_TOO_LONG = "FailingWithoutSuccess"  # invalidated_reason after 72 hours of failures
REFUSED_ADDRESS = "RefusedAddress"
NOT_RETRIED = frozenset({400, 401, 403, 404, 413, 422})
RETRIED = frozenset({408, 425, 429})
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "pushreg-webhooks/1"

_devices = DeviceModel.__table__
_deliveries = Delivery.__table__


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class WebhookSettings:
    policy: endpoints.EndpointPolicy
    secret_key: str  # the app's SECRET_KEY: what unseals the signing secrets
    connect_timeout: float = 5.0
    timeout: float = 10.0
    connections: int = 100
    failing_for_max: float = 72 * 3600.0

    @classmethod
    def from_config(cls, config) -> "WebhookSettings":
        return cls(endpoints.EndpointPolicy.from_config(config), config["SECRET_KEY"],
                   config["WEBHOOK_CONNECT_TIMEOUT"], config["WEBHOOK_TIMEOUT"],
                   config["WEBHOOK_CONNECTIONS"], config["WEBHOOK_FAILING_FOR_MAX"])


@dataclass(frozen=True, slots=True)
class Endpoint:
    device_id: uuid.UUID
    url: str
    sealed_secret: str
    failing_since: datetime | None


def message_body(notification: Notification, delivery_id: str, notification_id,
                 device_id) -> dict:
    """What one delivery POSTs (its JSON Schema is in docs/api/webhooks.md)."""
    alert = notification.alert
    title = body = None
    if isinstance(alert, str):
        body = alert
    elif alert is not None:
        title, body = alert.get("title"), alert.get("body")
    return {"type": "notification", "delivery_id": delivery_id,
            "notification_id": notification_id and str(notification_id),
            "device_id": str(device_id), "push_type": notification.push_type.value,
            "title": title, "body": body, "data": dict(notification.custom)}


def outcome_of(delivery_id: str, status: int, retry_after: str | None = None) -> Outcome:
    """The action for one answer (the table above)."""
    reason = f"HTTP{status}"
    if 200 <= status < 300:
        return Outcome(delivery_id, Action.SENT, status)
    if status == 410:
        return Outcome(delivery_id, Action.INVALIDATE, status, GONE)
    if status in RETRIED or status >= 500:
        return Outcome(delivery_id, Action.RETRY, status, reason,
                       retry_after=retry_after_seconds(retry_after))
    if 300 <= status < 400:
        return Outcome(delivery_id, Action.FAIL, status, "Redirect",
                       detail="the endpoint answered with a redirect, which is not followed")
    return Outcome(delivery_id, Action.FAIL, status, reason)


class CheckedResolver(AbstractResolver):
    """Resolves as the system does, then refuses a host any of whose addresses the policy
    refuses: the connection can only go to an address that was checked."""

    def __init__(self, policy: endpoints.EndpointPolicy,
                 lookup: Callable[[str, int], list] | None = None):
        self._policy = policy
        self._lookup = lookup or endpoints.resolve_host

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        try:
            addresses = await asyncio.to_thread(self._lookup, host, port)
            self._policy.check_addresses(host, addresses)
        except endpoints.RefusedEndpoint as exc:
            raise RefusedAddressError(str(exc)) from exc
        return [{"hostname": host, "host": str(address), "port": port,
                 "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST} for address in addresses]

    async def close(self) -> None:
        pass


class RefusedAddressError(OSError):
    """The host resolved to an address webhooks may not reach."""


class WebhookTransport(PooledHttp):
    """Sends to webhook endpoints over one keep-alive pool; keeps each endpoint's
    ``failing_since`` up to date (the 72-hour rule)."""

    def __init__(self, settings: WebhookSettings, engine, lookup=None, clock=time.time):
        self._settings = settings
        self._engine = engine
        self._clock = clock
        self._resolver = CheckedResolver(settings.policy, lookup)

    def address(self, device, notification: Notification) -> Address | Refusal:
        """The token rule: the URL, its form checked again (literal addresses too: they
        never reach the resolver)."""
        if not device.token or not device.signing_secret:
            return Refusal("NoToken", "the device has no webhook URL or signing secret")
        if refused := self.refusal(device.token):
            return refused
        return Address(Endpoint(device.id, device.token, device.signing_secret,
                                device.failing_since), notification, TOPIC, device.token)

    async def send_many(self, items: Sequence[tuple[Endpoint, Notification, str]]
                        ) -> list[Outcome]:
        notification_ids = await asyncio.to_thread(self._notification_ids,
                                                   [item[2] for item in items])
        outcomes = await in_order(
            lambda endpoint, notification, delivery_id: self._send(
                endpoint, message_body(notification, delivery_id,
                                       notification_ids.get(delivery_id), endpoint.device_id),
                delivery_id), items, self._settings.connections)
        return await asyncio.to_thread(self._keep_failure_times, items, outcomes)

    async def _send(self, endpoint: Endpoint, body: dict, delivery_id: str) -> Outcome:
        return await self.signed_post(endpoint.url, endpoint.sealed_secret, delivery_id, body)

    async def signed_post(self, url: str, sealed_secret: str, message_id: str, body: dict
                          ) -> Outcome:
        """``body`` as JSON, signed with the sealed secret under ``message_id`` (the
        ``webhook-id``), POSTed to ``url``: what its answer means (receipts use it too)."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        try:
            secret = _opened(sealed_secret, self._settings.secret_key)
        except ValueError:
            return Outcome(message_id, Action.FAIL, reason="SigningSecretUnreadable",
                           detail="the signing secret cannot be unsealed: SECRET_KEY changed?")
        headers = signed_headers(secret, message_id, payload, self._clock())
        return await self.post(url, payload.encode(), headers, message_id)

    def refusal(self, url: str) -> Refusal | None:
        """Why ``url``'s form may not be reached now (the URL rule, literal addresses), or
        None; names are checked as the connection resolves them."""
        try:
            self._settings.policy.check_url(url)
        except endpoints.RefusedEndpoint as exc:
            return Refusal(REFUSED_ADDRESS, str(exc))
        return None

    async def post(self, url: str, payload: bytes, headers: dict, delivery_id: str
                   ) -> Outcome:
        """One signed POST and what its answer means."""
        try:
            async with self._http().post(url, data=payload, headers=headers,
                                         allow_redirects=False) as response:
                await _read_some(response)
                return outcome_of(delivery_id, response.status,
                                  response.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddressError) or \
                    isinstance(exc.__cause__, RefusedAddressError):
                return Outcome(delivery_id, Action.FAIL, reason=REFUSED_ADDRESS,
                               detail=str(exc.os_error))
            return Outcome(delivery_id, Action.RETRY, reason="ConnectionError",
                           detail=_describe(exc))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            refused = _refusal_in(exc)
            if refused is not None:
                return Outcome(delivery_id, Action.FAIL, reason=REFUSED_ADDRESS,
                               detail=str(refused))
            return Outcome(delivery_id, Action.RETRY, reason="TransportError",
                           outcome_unknown=True, detail=_describe(exc))

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._settings.connections,
                                         resolver=self._resolver, ttl_dns_cache=10)
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout,
                                        sock_connect=self._settings.connect_timeout)
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"})

    def _notification_ids(self, delivery_ids: list[str]) -> dict[str, uuid.UUID]:
        ids = [uuid.UUID(delivery_id) for delivery_id in delivery_ids]
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(_deliveries.c.apns_id, _deliveries.c.notification_id)
                .where(among(connection, _deliveries.c.apns_id, ids)))
            return {str(apns_id): notification_id for apns_id, notification_id in rows}

    def _keep_failure_times(self, items, outcomes: list[Outcome]) -> list[Outcome]:
        """Clear ``failing_since`` after a success, start it at a first failure; a failure
        after ``failing_for_max`` seconds of them invalidates the endpoint."""
        now = utcnow()
        oldest = now - timedelta(seconds=self._settings.failing_for_max)
        succeeded, failing, judged = [], [], []
        for (endpoint, _, _), outcome in zip(items, outcomes, strict=True):
            if outcome.action is Action.SENT:
                succeeded.append(endpoint.device_id)
            elif outcome.action is not Action.INVALIDATE:
                failing.append(endpoint.device_id)
                if endpoint.failing_since is not None and \
                        _aware(endpoint.failing_since) <= oldest:
                    outcome = replace(outcome, action=Action.INVALIDATE,
                                      reason=FAILING_TOO_LONG, detail=(
                                          "no success for "
                                          f"{self._settings.failing_for_max / 3600:g} hours"))
            judged.append(outcome)
        self._write_failure_times(succeeded, failing, now)
        return judged

    def _write_failure_times(self, succeeded, failing, now):
        if not succeeded and not failing:
            return
        with write_transaction(self._engine) as connection:
            if succeeded:
                connection.execute(update(_devices).where(
                    among(connection, _devices.c.id, succeeded),
                    _devices.c.failing_since.is_not(None)).values(failing_since=None))
            if failing:
                connection.execute(update(_devices).where(
                    among(connection, _devices.c.id, failing),
                    _devices.c.failing_since.is_(None)).values(failing_since=now))


def signed_headers(secret: str, message_id: str, payload: str, now: float) -> dict:
    """The Standard Webhooks headers for one message."""
    timestamp = datetime.fromtimestamp(int(now), UTC)
    signature = _signer(secret).sign(message_id, timestamp, payload)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now)),
            "webhook-signature": signature}


@functools.lru_cache(maxsize=4096)
def _signer(secret: str) -> standardwebhooks.Webhook:
    return standardwebhooks.Webhook(secret)


@functools.lru_cache(maxsize=4096)
def _opened(sealed: str, secret_key: str) -> str:
    return crypto.unseal(sealed, secret_key)


async def _read_some(response: aiohttp.ClientResponse):
    """Read at most 64 KiB of the answer; a longer one is not kept alive."""
    read = await response.content.read(MAX_ANSWER_BYTES)
    if len(read) == MAX_ANSWER_BYTES and not response.content.at_eof():
        response.close()


def _refusal_in(exc: BaseException | None) -> RefusedAddressError | None:
    while exc is not None:
        if isinstance(exc, RefusedAddressError):
            return exc
        exc = exc.__cause__ or getattr(exc, "os_error", None)
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
