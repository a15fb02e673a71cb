"""The APNs transport over the HTTP/2 core: requests, payloads, and what each answer means.

``ApnsClient.send_many`` sends a batch of (device, notification, apns-id) and returns one
``Outcome`` per item, whose ``action`` tells the caller what to do (``Action``). The apns-id
is the caller's: the same for every attempt of one delivery. ``ApnsClient.address`` is the
channel's token rule (a device row → where its push goes).
"""

import dataclasses
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.formats.bundle_ids import is_bundle_id
from app.observability import metrics
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
from app.push.message import (
    INVALID_HEADER,
    Action,
    Address,
    Notification,
    NotificationError,
    Outcome,
    PayloadTooLarge,
    PushType,
    Refusal,
)
from app.push.provider_token import DEFAULT_MAX_AGE, ProviderTokenCache, ProviderTokenSigner
from app.security.crypto import unseal

__all__ = ["Action", "ApnsClient", "ApnsSettings", "Device", "Notification",
           "NotificationError", "Outcome", "PayloadTooLarge", "PushType", "build_payload",
           "check", "topic_for"]

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
# Channel management (iOS 18 broadcast channels) has its own hosts and ports.
MANAGE_PRODUCTION_URL = "https://api-manage-broadcast.push.apple.com:2196"
MANAGE_SANDBOX_URL = "https://api-manage-broadcast.sandbox.push.apple.com:2195"
SANDBOX = "sandbox"
PAYLOAD_LIMIT = 4096
VOIP_PAYLOAD_LIMIT = 5120
COLLAPSE_ID_LIMIT = 64
HEX_TOKEN = re.compile(r"(?:[0-9a-f]{2}){8,200}")
REQUIRED_SETTINGS = ("APNS_KEY", "APNS_KEY_ID", "APNS_TEAM_ID")  # and a bundle id or topic


TOPIC_SUFFIXES = {
    PushType.VOIP: ".voip",
    PushType.LIVEACTIVITY: ".push-type.liveactivity",
    PushType.COMPLICATION: ".complication",
    PushType.FILEPROVIDER: ".pushkit.fileprovider",
    PushType.LOCATION: ".location-query",
    PushType.PUSHTOTALK: ".voip-ptt",
}


def topic_for(bundle_id: str, push_type: PushType) -> str:
    return bundle_id + TOPIC_SUFFIXES.get(push_type, "")


@dataclass(frozen=True)
class Device:
    """A device token (even-length hex), the APNs environment it was registered in, and
    its app's bundle id (the topic; the client's configured ``bundle_id`` when None).

    A broadcast channel is addressed the same way: ``channel_id`` set, ``token`` empty,
    and ``expiration_zero`` when the channel stores no message (APNs then wants
    ``apns-expiration: 0``)."""

    token: str
    environment: str = "production"
    bundle_id: str | None = None
    channel_id: str | None = None
    expiration_zero: bool = False

    @property
    def sandbox(self) -> bool:
        return self.environment == SANDBOX


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
    if device.channel_id is not None:
        return _broadcast_request(device, notification, apns_id, bundle_id)
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


def _broadcast_request(channel: Device, notification: Notification, apns_id: str,
                       bundle_id: str) -> ApnsRequest:
    """One broadcast to every activity subscribed to the channel: the bundle id in the path,
    the channel in ``apns-channel-id``, no topic; the delivery's id as ``apns-request-id``."""
    if notification.push_type is not PushType.LIVEACTIVITY:
        raise NotificationError("only Live Activity pushes are broadcast on channels")
    assert channel.channel_id is not None  # a channel's Device (broadcast_address)
    expiration = 0 if channel.expiration_zero else notification.expiration
    headers = [("apns-push-type", notification.push_type.value),
               ("apns-channel-id", channel.channel_id),
               ("apns-priority", str(_priority(notification)))]
    if expiration is not None:
        headers.append(("apns-expiration", str(int(expiration))))
    return ApnsRequest(apns_id, f"/4/broadcasts/apps/{bundle_id}",
                       (*headers, unindexed("apns-request-id", _checked_apns_id(apns_id))),
                       build_payload(notification))


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


def check(notification: Notification):
    """``NotificationError`` when APNs would refuse ``notification`` whatever the device:
    its payload, its priority, its collapse id."""
    build_payload(notification)
    _priority(notification)
    if notification.collapse_id is not None:
        _checked_collapse_id(notification.collapse_id)


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


_INVALIDATING_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic"}
# A broadcast's channel is gone (deleted, or never made in this environment): judged by the
# reason whatever the status, as Apple's page gives no status we could check.
CHANNEL_GONE = "ChannelNotRegistered"


def classify(status: int, reason: str | None) -> Action:
    """The action for one APNs answer (APNS.md's table)."""
    if status == 200:
        return Action.SENT
    if status == 410 or (status == 400 and reason in _INVALIDATING_REASONS) \
            or reason == CHANNEL_GONE:
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

    topic: str | None = None  # APNS_TOPIC: for devices registered without a bundle id
    manage_production_url: str = MANAGE_PRODUCTION_URL
    manage_sandbox_url: str = MANAGE_SANDBOX_URL

    @property
    def default_topic(self) -> str:
        return self.topic or self.bundle_id

    @staticmethod
    def missing(config: Mapping) -> list[str]:
        """The settings APNs needs that ``config`` lacks (none given: all of them)."""
        missing = [name for name in REQUIRED_SETTINGS if not config.get(name)]
        if not (config.get("APNS_BUNDLE_ID") or config.get("APNS_TOPIC")):
            missing.append("APNS_BUNDLE_ID")
        return missing

    @classmethod
    def from_config(cls, config: Mapping) -> "ApnsSettings | None":
        """From the ``APNS_*`` settings (``APNS_TOPIC`` standing in for ``APNS_BUNDLE_ID``);
        None when APNs is not configured."""
        if cls.missing(config):
            return None
        return cls(config["APNS_BUNDLE_ID"] or config["APNS_TOPIC"], config["APNS_KEY"],
                   config["APNS_KEY_ID"], config["APNS_TEAM_ID"],
                   config["APNS_PRODUCTION_URL"], config["APNS_SANDBOX_URL"],
                   config["APNS_CA_FILE"], config["APNS_CONNECTIONS"],
                   config["APNS_MAX_STREAMS"], config["APNS_REQUEST_TIMEOUT"],
                   config["APNS_TOKEN_MAX_AGE"], config["APNS_PING_INTERVAL"],
                   config["APNS_TOPIC"],
                   config.get("APNS_BROADCAST_MANAGE_PRODUCTION_URL") or MANAGE_PRODUCTION_URL,
                   config.get("APNS_BROADCAST_MANAGE_SANDBOX_URL") or MANAGE_SANDBOX_URL)

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

    def broadcast_address(self, channel, notification: Notification) -> Address | Refusal:
        """Where a broadcast goes: a ``live_activity_channels`` row → its channel at APNs."""
        return broadcast_address(channel, notification, self._settings.bundle_id)

    def address(self, device, notification: Notification) -> Address | Refusal:
        """The token rule: VoIP devices get VoIP pushes, Live Activity pushes go to the
        (sealed) Live Activity token, the topic is the device's bundle id (or the default
        topic) with the push type's suffix."""
        return address(device, notification, self._settings.default_topic)

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
        templates: dict[tuple[int, str], tuple[tuple[tuple[str, str], ...], bytes]] = {}
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


def broadcast_address(channel, notification: Notification, bundle_id: str
                      ) -> Address | Refusal:
    """``ApnsClient.broadcast_address`` for a channel row (``channel_id``, ``environment``,
    ``message_storage_policy``)."""
    if notification.push_type is not PushType.LIVEACTIVITY:
        return Refusal("NotLiveActivity", "only Live Activity pushes go to channels")
    target = Device("", channel.environment, bundle_id, channel.channel_id,
                    expiration_zero=channel.message_storage_policy == 0)
    return Address(target, notification, topic_for(bundle_id, PushType.LIVEACTIVITY),
                   channel.channel_id, live_activity=True)


def address(device, notification: Notification, default_topic: str | None
            ) -> Address | Refusal:
    """``ApnsClient.address`` for a device row (``token``, ``environment``, ``bundle_id``,
    ``is_voip``, ``live_activity_token``)."""
    live_activity = notification.push_type is PushType.LIVEACTIVITY
    stored_token = token = device.token
    if live_activity:
        stored_token = device.live_activity_token
        if not stored_token:
            return Refusal("NoLiveActivityToken", "the device has no Live Activity token")
        try:
            token = unseal(stored_token)
        except (ImportError, ValueError) as exc:
            return Refusal("InvalidLiveActivityToken", f"cannot unseal it: {exc}")
        if not HEX_TOKEN.fullmatch(token):  # stored before push-to-start tokens were checked
            return Refusal("InvalidLiveActivityToken", "it is not an even number of lowercase "
                                                       "hex digits")
    elif device.is_voip:
        notification = dataclasses.replace(notification, push_type=PushType.VOIP)
    elif notification.push_type is PushType.VOIP:
        return Refusal("NotVoipDevice", "a VoIP push to a device that did not register a "
                                        "VoIP token")
    if not token:
        return Refusal("NoToken", "the device has no push token")
    bundle_id = device.bundle_id or default_topic
    if not bundle_id:
        return Refusal("MissingTopic", "the device has no bundle id and APNS_TOPIC is not set")
    if not is_bundle_id(bundle_id):  # a row stored before bundle ids were checked
        return Refusal("InvalidBundleId", "the bundle id is not reverse-DNS (letters, digits, "
                                          "- and .); it is not sent as a topic")
    return Address(Device(token, device.environment or "production", bundle_id), notification,
                   topic_for(bundle_id, notification.push_type), stored_token, live_activity)
