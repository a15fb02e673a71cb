"""A notification as the dispatcher sends it, whatever the channel: push types, the message,
what one attempt came to, and the shape every transport has.

A channel is three things: a token rule (``Transport.address``: which device column holds
the token and which pushes it takes), a transport module that sends a batch
(``Transport.send_many``), and a reason table (that module's ``outcome_of``: the provider's
answer as an ``Outcome`` whose ``Action`` the dispatcher acts on). APNs (``apns.py``), FCM
(``fcm.py``) and the development stand-in (``outbox.py``) are such transports.
"""

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


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


class Action(StrEnum):
    """What the caller does with a delivery after one attempt."""

    SENT = "sent"
    INVALIDATE = "invalidate"  # the token is dead (see Outcome.unregistered_at)
    RETRY = "retry"  # later, with backoff, with the same apns-id
    REMINT_AND_RETRY = "remint_and_retry"  # the provider token expired even after renewal
    CONFIG_ERROR = "config_error"  # fail the delivery, never touch the token, log loudly
    FAIL = "fail"  # this delivery was refused (a webhook's 404): fail it, nothing else


class NotificationError(ValueError):
    """The notification cannot be sent as built; nothing was sent."""

    reason = "InvalidNotification"


class PayloadTooLarge(NotificationError):
    reason = "PayloadTooLarge"


@dataclass(frozen=True)
class Notification:
    """One notification as plain values; ``custom`` keys go beside ``aps`` (APNs) or into
    ``data`` (FCM).

    ``alert`` is a string or a dict (``title``, ``subtitle``, ``body``, ``loc_key``,
    ``loc_args``, ``title_loc_key`` …). ``priority`` defaults to 10, or 5 for background
    pushes. ``expiration`` is UNIX seconds (0: try once).
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


NOTIFICATION_FIELDS = frozenset(f.name for f in dataclasses.fields(Notification))


def stored(notification: Notification) -> dict:
    """The notification's fields as the JSON kept in ``notifications.content``."""
    fields = dataclasses.asdict(notification)
    fields["push_type"] = notification.push_type.value
    return json.loads(json.dumps(fields))


def from_stored(push_type: str, content: Mapping | None) -> Notification:
    """The ``Notification`` a ``notifications`` row holds (its ``push_type`` column and
    ``content``); unknown keys are ignored. ``ValueError`` or ``TypeError`` when it cannot
    be built."""
    fields = {key: value for key, value in (content or {}).items()
              if key in NOTIFICATION_FIELDS and value is not None}
    fields["push_type"] = PushType(fields.get("push_type") or push_type)
    return Notification(**fields)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt of one delivery.

    ``unregistered_at``: the 410 answer's timestamp; invalidate only a token not registered
    again since. ``outcome_unknown``: the request may have reached the provider (retrying
    may show it twice). ``detail``: a transport or local error, for the log.
    """

    apns_id: str
    action: Action
    status: int | None = None
    reason: str | None = None
    unregistered_at: datetime | None = None
    outcome_unknown: bool = False
    detail: str | None = None
    retry_after: float | None = None  # seconds the server asked to wait (FCM's Retry-After)


@dataclass(frozen=True, slots=True)
class Address:
    """Where one delivery goes: the transport's device, the notification as that device
    takes it, the pause scope (``topic``), and the device column the token came from (what
    an invalidation clears)."""

    device: Any
    notification: Notification
    topic: str
    stored_token: str
    live_activity: bool = False


# A header value HTTP/2 forbids, refused before sending (any transport on app.push.http2).
INVALID_HEADER = "InvalidHeader"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a delivery cannot go to its device: it fails with ``reason``."""

    reason: str
    detail: str


class Transport(Protocol):
    """One channel's sender. ``address`` is its token rule (a device row → an ``Address``,
    or a ``Refusal``); ``send_many`` sends (device, notification, delivery id) items and
    returns one ``Outcome`` per item, in order."""

    def address(self, device, notification: Notification) -> Address | Refusal: ...

    async def send_many(self, items: Sequence[tuple[Any, Notification, str]]
                        ) -> list[Outcome]: ...

    async def close(self) -> None: ...
