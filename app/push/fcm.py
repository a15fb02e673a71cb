"""FCM HTTP v1 over the HTTP/2 core: one notification → one message per registration
token, and what each answer means.

``FcmClient.send_many`` sends a batch of (device, notification, message id) and returns one
``Outcome`` per item, with the same ``Action``s as APNs's so the dispatcher judges both
channels alike. The message is built from the same ``message.Notification``: alert title and
body → ``notification``, custom data → ``data`` (values as strings), collapse id →
``android.collapse_key``, expiration → ``android.ttl``, priority → ``android.priority``,
badge / sound / category → ``android.notification``'s count / sound / click action. The
APNs-only fields (``UNUSED_FIELDS``) are ignored.
"""

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from app.push.fanout import in_order
from app.push.fcm_auth import AccessTokenError, CredentialsError
from app.push.http2 import (
    ClientSettings,
    Http2Client,
    InvalidHeaderError,
    NotProcessedError,
    OutcomeUnknownError,
    Response,
    make_ssl_context,
)
from app.push.message import (
    INVALID_HEADER,
    Action,
    Address,
    NotificationError,
    Outcome,
    PayloadTooLarge,
    PushType,
    Refusal,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "https://fcm.googleapis.com"
PUSH_TYPES = (PushType.ALERT, PushType.BACKGROUND)  # the others are APNs's alone
TOPIC = "fcm"  # the dispatcher's pause scope for the whole channel
PAYLOAD_LIMIT = 4096  # notification + data
MAX_TTL = 28 * 24 * 3600
RESERVED_DATA_KEYS = frozenset({"from", "gcm", "message_type"})
RESERVED_DATA_PREFIXES = ("google", "gcm")
UNUSED_FIELDS = ("subtitle", "launch_image", "action_loc_key", "subtitle_loc_key",
                 "subtitle_loc_args", "thread_id", "mutable_content", "interruption_level",
                 "relevance_score", "sound.critical", "sound.volume")
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
# Errors that say the project or its credentials are wrong: nothing else can succeed.
CHANNEL_ERRORS = frozenset({"SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR",
                            "PERMISSION_DENIED", "NOT_FOUND"})
ACCESS_TOKEN_RETRY_PAUSE = 5.0  # after the token endpoint failed, before asking it again
_ALERT_KEYS = {"title": "title", "body": "body"}
_ANDROID_ALERT_KEYS = {"title_loc_key": "title_loc_key", "title_loc_args": "title_loc_args",
                       "loc_key": "body_loc_key", "loc_args": "body_loc_args"}


@dataclass(frozen=True, slots=True)
class Device:
    token: str  # the registration token, opaque


def reserved_data_key(key: str) -> bool:
    return key in RESERVED_DATA_KEYS or key.startswith(RESERVED_DATA_PREFIXES)


def data_value(value) -> str:
    """FCM's data values are strings: others go as their JSON text."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           separators=(",", ":"))


def build_message(notification, now: float) -> dict:
    """The ``message`` without its ``token``; ``NotificationError`` when FCM would refuse
    it (a reserved data key, more than 4,096 bytes of notification and data)."""
    message: dict[str, object] = {}
    android: dict[str, object] = {}
    shown: dict[str, object] = {}
    background = notification.push_type is PushType.BACKGROUND
    if not background:
        alert = notification.alert
        if isinstance(alert, str):
            message["notification"] = {"body": alert}
        elif isinstance(alert, Mapping):
            message["notification"] = {fcm: alert[key] for key, fcm in _ALERT_KEYS.items()
                                       if alert.get(key) is not None}
            shown |= {fcm: alert[key] for key, fcm in _ANDROID_ALERT_KEYS.items()
                      if alert.get(key) is not None}
        shown |= _android_extras(notification)
    if shown:
        android["notification"] = shown
    data = {}
    for key, value in notification.custom.items():
        if reserved_data_key(key):
            raise NotificationError(f"'{key}' is a key FCM reserves in data")
        data[key] = data_value(value)
    if data:
        message["data"] = data
    android["priority"] = _priority(notification)
    if notification.collapse_id is not None:
        android["collapse_key"] = notification.collapse_id
    if notification.expiration is not None:
        android["ttl"] = f"{_ttl(notification.expiration, now)}s"
    message["android"] = android
    size = len(json.dumps([message.get("notification"), data], ensure_ascii=False).encode())
    if size > PAYLOAD_LIMIT:
        raise PayloadTooLarge(f"notification and data are {size} bytes; FCM takes at most "
                              f"{PAYLOAD_LIMIT}")
    return message


def _android_extras(notification) -> dict:
    extras = {}
    if notification.badge is not None:
        extras["notification_count"] = notification.badge
    sound = notification.sound
    if isinstance(sound, Mapping):
        sound = sound.get("name")
    if sound is not None:
        extras["sound"] = sound
    if notification.category is not None:
        extras["click_action"] = notification.category
    return extras


def _priority(notification) -> str:
    if notification.priority is not None:
        return "high" if notification.priority == 10 else "normal"
    return "normal" if notification.push_type is PushType.BACKGROUND else "high"


def _ttl(expiration: int, now: float) -> int:
    """APNs's expiration (UNIX seconds; 0: now or never) as seconds from now."""
    if not expiration:
        return 0
    return max(0, min(MAX_TTL, int(expiration - now)))


def request_body(template: bytes, token: str) -> bytes:
    """``{"message": {"token": …, <template's members>}}``; the template is the message
    without its token, as JSON, built once per notification."""
    return b'{"message":{"token":' + json.dumps(token).encode() + b"," + template[1:] + b"}"


# -- answers ---------------------------------------------------------------------------


def outcome_of(message_id: str, response: Response) -> Outcome:
    """The action for one FCM answer (FCM.md's table)."""
    if response.status == 200:
        return Outcome(message_id, Action.SENT, 200)
    error = _error(response.body)
    code = _fcm_error_code(error) or error.get("status") or f"HTTP_{response.status}"
    action, detail = _classify(response.status, code, error)
    return Outcome(message_id, action, response.status, code, detail=detail,
                   retry_after=_retry_after(response.headers.get("retry-after")))


def _classify(status: int, code: str, error: dict) -> tuple[Action, str | None]:
    message = error.get("message") if isinstance(error.get("message"), str) else None
    if status == 404 and code == "UNREGISTERED":
        return Action.INVALIDATE, message
    if status == 400 and code == "INVALID_ARGUMENT":
        if _about_the_token(error):
            return Action.INVALIDATE, message or "the registration token is not valid"
        return Action.CONFIG_ERROR, message
    if status == 401 and code != "THIRD_PARTY_AUTH_ERROR":
        return Action.REMINT_AND_RETRY, message  # the access token expired or was revoked
    if status == 429 or status >= 500:
        return Action.RETRY, message
    return Action.CONFIG_ERROR, message


def _about_the_token(error: dict) -> bool:
    """Does the INVALID_ARGUMENT name the registration token itself? (A field violation on
    ``message.token``, or FCM's message about the registration token.)"""
    for detail in _details(error, BAD_REQUEST):
        violations = detail.get("fieldViolations")
        if isinstance(violations, list) and any(
                isinstance(v, dict) and v.get("field") == "message.token" for v in violations):
            return True
    message = error.get("message")
    return isinstance(message, str) and "registration token" in message.lower()


def _fcm_error_code(error: dict) -> str | None:
    for detail in _details(error, FCM_ERROR):
        if isinstance(detail.get("errorCode"), str):
            return detail["errorCode"]
    return None


def _details(error: dict, type_url: str):
    details = error.get("details")
    if isinstance(details, list):
        yield from (d for d in details if isinstance(d, dict) and d.get("@type") == type_url)


def _error(body: bytes) -> dict:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delay seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# -- the client ------------------------------------------------------------------------


@dataclass(frozen=True)
class FcmSettings:
    project_id: str
    url: str = DEFAULT_URL
    ca_file: str | None = None
    connections: int = 2
    max_streams: int = 100
    request_timeout: float = 10.0
    ping_interval: float = 60.0

    @classmethod
    def from_config(cls, config, credentials_project: str | None) -> "FcmSettings":
        project_id = config["FCM_PROJECT_ID"] or credentials_project
        if not project_id:
            raise CredentialsError("set FCM_PROJECT_ID: the service-account key names no "
                                   "project_id")
        return cls(project_id, config["FCM_URL"], config["FCM_CA_FILE"],
                   config["FCM_CONNECTIONS"], config["FCM_MAX_STREAMS"],
                   config["FCM_REQUEST_TIMEOUT"])

    def client_settings(self) -> ClientSettings:
        return ClientSettings(connections=self.connections,
                              max_streams_per_connection=self.max_streams,
                              idle_ping_interval=self.ping_interval)


class FcmClient:
    """Sends messages to FCM over one pool, with one access token shared by every worker
    (``tokens``: a ``SharedTokenCache`` around an ``AccessTokenMinter``)."""

    def __init__(self, settings: FcmSettings, tokens, ssl_context=None, clock=time.time):
        self._settings = settings
        self._tokens = tokens
        self._path = f"/v1/projects/{settings.project_id}/messages:send"
        self._http = Http2Client(settings.url, settings.client_settings(),
                                 ssl_context or make_ssl_context(settings.ca_file))
        self._token_lock = asyncio.Lock()
        self._token_failed_until = 0.0
        self._token_failure = ""
        self._clock = clock

    @property
    def capacity(self) -> int:
        return self._settings.connections * self._settings.max_streams

    def address(self, device, notification) -> Address | Refusal:
        """The token rule: the registration token, for the pushes FCM carries."""
        if notification.push_type not in PUSH_TYPES:
            return Refusal("NotForFcm", f"{notification.push_type.value} pushes are APNs's")
        if not device.token:
            return Refusal("NoToken", "the device has no push token")
        return Address(Device(device.token), notification, TOPIC, device.token)

    async def send_many(self, items: Sequence[tuple[Device, object, str]]) -> list[Outcome]:
        """One attempt per item (two when the access token was refused and renewed),
        concurrently over the pool; outcomes in item order."""
        now = self._clock()
        templates: dict[int, bytes | NotificationError] = {}
        for _, notification, _ in items:
            if id(notification) not in templates:
                templates[id(notification)] = _template(notification, now)
        return await in_order(
            lambda device, notification, message_id: self._send(
                device, templates[id(notification)], message_id), items, self.capacity)

    async def send(self, device: Device, notification, message_id: str) -> Outcome:
        return (await self.send_many([(device, notification, message_id)]))[0]

    async def _send(self, device, template, message_id) -> Outcome:
        if isinstance(template, NotificationError):
            return Outcome(message_id, Action.CONFIG_ERROR, reason=template.reason,
                           detail=str(template))
        body = request_body(template, device.token)
        refused = None
        try:
            for _ in range(2):
                if refused is not None:
                    await self._renew(refused)
                token = await self._access_token()
                outcome = await self._post(body, token, message_id)
                if outcome.action is not Action.REMINT_AND_RETRY:
                    break
                refused = token
        except AccessTokenError as exc:
            return Outcome(message_id, Action.RETRY, reason="AccessTokenUnavailable",
                           detail=str(exc))
        return outcome

    async def _post(self, body: bytes, token: str, message_id: str) -> Outcome:
        headers = (("authorization", f"Bearer {token}"),
                   ("content-type", "application/json; charset=UTF-8"))
        try:
            response = await self._http.request("POST", self._path, headers, body,
                                                self._settings.request_timeout)
        except NotProcessedError as exc:
            return Outcome(message_id, Action.RETRY, detail=str(exc))
        except OutcomeUnknownError as exc:
            return Outcome(message_id, Action.RETRY, outcome_unknown=True, detail=str(exc))
        except InvalidHeaderError as exc:
            return Outcome(message_id, Action.CONFIG_ERROR, reason=INVALID_HEADER,
                           detail=str(exc))
        return outcome_of(message_id, response)

    async def _access_token(self) -> str:
        token = self._tokens.fresh()
        if token is not None:
            return token
        async with self._token_lock:  # one fetch at a time; the others wait for it
            return self._tokens.fresh() or await self._blocking(self._tokens.current)

    async def _renew(self, refused: str):
        async with self._token_lock:
            await self._blocking(self._tokens.expired, refused)

    async def _blocking(self, function, *args):
        """The token store and endpoint off the event loop; after a failure, the sends
        behind it fail fast for a few seconds instead of each asking again."""
        if self._clock() < self._token_failed_until:
            raise AccessTokenError(self._token_failure)
        try:
            return await asyncio.to_thread(function, *args)
        except AccessTokenError as exc:
            log.error("FCM access token unavailable: %s", exc)
            self._token_failed_until = self._clock() + ACCESS_TOKEN_RETRY_PAUSE
            self._token_failure = str(exc)
            raise

    async def close(self):
        await self._http.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()


def _template(notification, now: float) -> bytes | NotificationError:
    try:
        return json.dumps(build_message(notification, now), ensure_ascii=False,
                          separators=(",", ":")).encode()
    except NotificationError as exc:
        return exc
