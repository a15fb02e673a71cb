"""The APNs provider API over the HTTP/2 core: requests, payloads, and what each answer means.

``ApnsClient.send_many`` sends a batch of (device, notification, apns-id) and returns one
``Outcome`` per item, whose ``action`` tells the caller what to do (``Action``). The apns-id
is the caller's: the same for every attempt of one delivery.
"""

import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app import metrics
from app.push.fanout import in_order
from app.push.http2 import (
    ClientSettings,
    Http2Client,
    InvalidHeaderError,
    NotProcessedError,
    OutcomeUnknownError,
    Response,
    make_ssl_context,
    unindexed,
)
from app.push.provider_token import DEFAULT_MAX_AGE, ProviderTokenCache, ProviderTokenSigner

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
SANDBOX = "sandbox"
PAYLOAD_LIMIT = 4096
VOIP_PAYLOAD_LIMIT = 5120
COLLAPSE_ID_LIMIT = 64
HEX_TOKEN = re.compile(r"(?:[0-9a-f]{2}){8,200}")
INVALID_HEADER = "InvalidHeader"  # a header value HTTP/2 forbids: refused before sending


class PushType(StrEnum):
    ALERT = "alert"
    BACKGROUND = "background"
    VOIP = "voip"
    LIVEACTIVITY = "liveactivity"
    LOCATION = "location"
    COMPLICATION = "complication"
    FILEPROVIDER = "fileprovider"
    MDM = "mdm"
    PUSHTOTALK = "pushtotalk"


TOPIC_SUFFIXES = {
    PushType.VOIP: ".voip",
    PushType.LIVEACTIVITY: ".push-type.liveactivity",
    PushType.COMPLICATION: ".complication",
    PushType.FILEPROVIDER: ".pushkit.fileprovider",
    PushType.LOCATION: ".location-query",
    PushType.PUSHTOTALK: ".voip-ptt",
}


class Action(StrEnum):
    """What the caller does with a delivery after one attempt."""

    SENT = "sent"
    INVALIDATE = "invalidate"  # the token is dead (see Outcome.unregistered_at)
    RETRY = "retry"  # later, with backoff, with the same apns-id
    REMINT_AND_RETRY = "remint_and_retry"  # the provider token expired even after renewal
    CONFIG_ERROR = "config_error"  # fail the delivery, never touch the token, log loudly


class NotificationError(ValueError):
    """The notification cannot be sent as built; nothing was sent."""

    reason = "InvalidNotification"


class PayloadTooLarge(NotificationError):
    reason = "PayloadTooLarge"


def topic_for(bundle_id: str, push_type: PushType) -> str:
    return bundle_id + TOPIC_SUFFIXES.get(push_type, "")


@dataclass(frozen=True)
class Device:
    """A device token (even-length hex), the APNs environment it was registered in, and
    its app's bundle id (the topic; the client's configured ``bundle_id`` when None)."""

    token: str
    environment: str = "production"
    bundle_id: str | None = None

    @property
    def sandbox(self) -> bool:
        return self.environment == SANDBOX


@dataclass(frozen=True)
class Notification:
    """One notification as plain values; ``custom`` keys go beside ``aps``.

    ``alert`` is a string or a dict (``title``, ``subtitle``, ``body``, ``loc_key``,
    ``loc_args``, ``title_loc_key`` …; underscores become APNs's hyphens). ``priority``
    defaults to 10, or 5 for background pushes. ``expiration`` is UNIX seconds (0: try once).
    """

    push_type: PushType = PushType.ALERT
    alert: str | Mapping[str, Any] | None = None
    badge: int | None = None
    sound: str | Mapping[str, Any] | None = None
    thread_id: str | None = None
    category: str | None = None
    content_available: bool = False
    mutable_content: bool = False
    interruption_level: str | None = None
    relevance_score: float | None = None
    event: str | None = None
    content_state: Mapping[str, Any] | None = None
    timestamp: int | None = None
    stale_date: int | None = None
    dismissal_date: int | None = None
    attributes_type: str | None = None
    attributes: Mapping[str, Any] | None = None
    custom: Mapping[str, Any] = field(default_factory=dict)
    priority: int | None = None
    expiration: int | None = None
    collapse_id: str | None = None


_APS_MEMBERS = (
    ("alert", "alert"), ("badge", "badge"), ("sound", "sound"), ("thread_id", "thread-id"),
    ("category", "category"), ("interruption_level", "interruption-level"),
    ("relevance_score", "relevance-score"), ("event", "event"),
    ("content_state", "content-state"), ("timestamp", "timestamp"),
    ("stale_date", "stale-date"), ("dismissal_date", "dismissal-date"),
    ("attributes_type", "attributes-type"), ("attributes", "attributes"),
)


def build_payload(notification: Notification) -> bytes:
    """The JSON body; ``PayloadTooLarge`` above 4096 bytes (5120 for VoIP)."""
    aps = {key: value for attr, key in _APS_MEMBERS
           if (value := getattr(notification, attr)) is not None}
    if isinstance(notification.alert, Mapping):
        aps["alert"] = {key.replace("_", "-"): value for key, value in notification.alert.items()}
    if notification.content_available:
        aps["content-available"] = 1
    if notification.mutable_content:
        aps["mutable-content"] = 1
    if "aps" in notification.custom:
        raise NotificationError("custom keys go beside aps, not inside it")
    body = json.dumps({**notification.custom, "aps": aps}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    limit = VOIP_PAYLOAD_LIMIT if notification.push_type is PushType.VOIP else PAYLOAD_LIMIT
    if len(body) > limit:
        raise PayloadTooLarge(f"the payload is {len(body)} bytes; APNs takes at most {limit}")
    return body


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    """Everything but the authorization header, which is added per attempt."""

    apns_id: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def build_request(device: Device, notification: Notification, apns_id: str,
                  bundle_id: str, templates: dict | None = None) -> ApnsRequest:
    """The request for one device. ``templates``: a dict the caller keeps while
    ``notification`` lives, where the headers and payload every device shares are built
    once per notification and topic."""
    token = device.token
    if not HEX_TOKEN.fullmatch(token):
        raise NotificationError("the device token is not lowercase, even-length hex")
    if templates is None:
        headers, body = _shared_part(notification, bundle_id)
    else:
        key = (id(notification), bundle_id)
        shared = templates.get(key)
        if shared is None:
            shared = templates[key] = _shared_part(notification, bundle_id)
        headers, body = shared
    return ApnsRequest(apns_id, f"/3/device/{token}",
                       (*headers, unindexed("apns-id", _checked_apns_id(apns_id))), body)


def _shared_part(notification: Notification, bundle_id: str
                 ) -> tuple[tuple[tuple[str, str], ...], bytes]:
    headers = [
        ("apns-push-type", notification.push_type.value),
        ("apns-topic", topic_for(bundle_id, notification.push_type)),
        ("apns-priority", str(_priority(notification))),
    ]
    if notification.expiration is not None:
        headers.append(("apns-expiration", str(int(notification.expiration))))
    if notification.collapse_id is not None:
        headers.append(("apns-collapse-id", _checked_collapse_id(notification.collapse_id)))
    return tuple(headers), build_payload(notification)


def _priority(notification: Notification) -> int:
    background = notification.push_type is PushType.BACKGROUND
    priority = notification.priority or (5 if background else 10)
    if priority not in (1, 5, 10) or (background and priority != 5):
        raise NotificationError(f"priority {priority} is not allowed for "
                                f"{notification.push_type.value} pushes")
    return priority


def _checked_apns_id(apns_id: str) -> str:
    try:
        canonical = str(uuid.UUID(apns_id))
    except ValueError:
        canonical = None
    if canonical != apns_id:
        raise NotificationError("apns-id must be a lowercase UUID")
    return apns_id


def _checked_collapse_id(collapse_id: str) -> str:
    if len(collapse_id.encode()) > COLLAPSE_ID_LIMIT:
        raise NotificationError(f"apns-collapse-id is longer than {COLLAPSE_ID_LIMIT} bytes")
    return collapse_id


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt of one delivery.

    ``unregistered_at``: the 410 answer's timestamp; invalidate only a token not registered
    again since. ``outcome_unknown``: the request may have reached APNs (retrying may show
    it twice). ``detail``: a transport or local error, for the log.
    """

    apns_id: str
    action: Action
    status: int | None = None
    reason: str | None = None
    unregistered_at: datetime | None = None
    outcome_unknown: bool = False
    detail: str | None = None
    retry_after: float | None = None  # seconds the server asked to wait (FCM's Retry-After)


_INVALIDATING_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic"}


def classify(status: int, reason: str | None) -> Action:
    """The action for one APNs answer (APNS.md's table)."""
    if status == 200:
        return Action.SENT
    if status == 410 or (status == 400 and reason in _INVALIDATING_REASONS):
        return Action.INVALIDATE
    if status == 403 and reason == "ExpiredProviderToken":
        return Action.REMINT_AND_RETRY
    if status == 429 or status >= 500:
        return Action.RETRY
    return Action.CONFIG_ERROR


def outcome_of(apns_id: str, response: Response) -> Outcome:
    if response.status == 200:
        return Outcome(apns_id, Action.SENT, 200)
    error = _error_body(response.body)
    reason = error.get("reason")
    return Outcome(apns_id, classify(response.status, reason), response.status, reason,
                   unregistered_at=_timestamp(error.get("timestamp")))


def _error_body(body: bytes) -> dict:
    try:
        error = json.loads(body)
    except ValueError:
        return {}
    return error if isinstance(error, dict) else {}


def _timestamp(milliseconds) -> datetime | None:
    if not isinstance(milliseconds, int | float):
        return None
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


@dataclass(frozen=True)
class ApnsSettings:
    bundle_id: str
    key: str  # the .p8 key's PEM text or file path
    key_id: str
    team_id: str
    production_url: str = PRODUCTION_URL
    sandbox_url: str = SANDBOX_URL
    ca_file: str | None = None
    connections: int = 2
    max_streams: int = 100
    request_timeout: float = 10.0
    token_max_age: float = DEFAULT_MAX_AGE
    ping_interval: float = 60.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "ApnsSettings":
        """From ``APNS_*`` variables; empty ones take the defaults."""
        def value(name, convert=str):
            raw = environ.get(f"APNS_{name.upper()}", "")
            return convert(raw) if raw else None

        given = {name: value(name) for name in ("bundle_id", "key", "key_id", "team_id")}
        given |= {name: value(name) for name in ("production_url", "sandbox_url", "ca_file")}
        given |= {name: value(name, int) for name in ("connections", "max_streams")}
        given |= {name: value(name, float)
                  for name in ("request_timeout", "token_max_age", "ping_interval")}
        return cls(**{name: v for name, v in given.items() if v is not None})

    def client_settings(self) -> ClientSettings:
        return ClientSettings(connections=self.connections,
                              max_streams_per_connection=self.max_streams,
                              idle_ping_interval=self.ping_interval)


class ApnsClient:
    """Sends notifications to APNs: one pool per environment, one shared provider token."""

    def __init__(self, settings: ApnsSettings, tokens: ProviderTokenCache | None = None,
                 ssl_context=None):
        self._settings = settings
        self._tokens = tokens or ProviderTokenCache(
            ProviderTokenSigner.from_key(settings.key, settings.key_id, settings.team_id),
            max_age=settings.token_max_age)
        ssl_context = ssl_context or make_ssl_context(settings.ca_file)
        pool = settings.client_settings()
        self._production = Http2Client(settings.production_url, pool, ssl_context)
        self._sandbox = Http2Client(settings.sandbox_url, pool, ssl_context)

    @property
    def capacity(self) -> int:
        """Streams in flight at most, per environment."""
        return self._settings.connections * self._settings.max_streams

    async def send(self, device: Device, notification: Notification, apns_id: str,
                   templates: dict | None = None) -> Outcome:
        """One attempt (two when the provider token had expired and was renewed).
        ``templates``: see ``build_request``."""
        try:
            request = build_request(device, notification, apns_id,
                                    device.bundle_id or self._settings.bundle_id, templates)
        except NotificationError as exc:
            return Outcome(apns_id, Action.CONFIG_ERROR, reason=exc.reason, detail=str(exc))
        client = self._sandbox if device.sandbox else self._production
        for _ in range(2):
            token = self._tokens.current()
            outcome = await self._post(client, request, token)
            if outcome.action is not Action.REMINT_AND_RETRY:
                break
            self._tokens.expired(token)
        return outcome

    async def send_many(self, items: Sequence[tuple[Device, Notification, str]]
                        ) -> list[Outcome]:
        """``send`` for each item, concurrently over the pools; outcomes in item order.
        Items sharing one ``Notification`` object share its payload, built once."""
        templates = {}
        environments = {device.sandbox for device, _, _ in items}
        return await in_order(
            lambda device, notification, apns_id: self.send(device, notification, apns_id,
                                                            templates),
            items, self.capacity * len(environments))

    async def close(self):
        await self._production.close()
        await self._sandbox.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    async def _post(self, client: Http2Client, request: ApnsRequest, token: str) -> Outcome:
        headers = (("authorization", f"bearer {token}"), *request.headers)
        try:
            with metrics.APNS_SECONDS.time():
                response = await client.request("POST", request.path, headers, request.body,
                                                self._settings.request_timeout, index_path=False)
        except NotProcessedError as exc:
            return Outcome(request.apns_id, Action.RETRY, detail=str(exc))
        except OutcomeUnknownError as exc:
            return Outcome(request.apns_id, Action.RETRY, outcome_unknown=True, detail=str(exc))
        except InvalidHeaderError as exc:
            return Outcome(request.apns_id, Action.CONFIG_ERROR, reason=INVALID_HEADER,
                           detail=str(exc))
        return outcome_of(request.apns_id, response)
