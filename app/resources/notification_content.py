"""What a notification's content must be before it is accepted: a push type the channels
know, the members each push type and Live Activity event needs, and payloads APNs and FCM
would take. Errors name the attribute at fault; nothing here writes."""

import dataclasses
import json

from app.errors import ErrorList, InvalidAttribute, Unprocessable, Where
from app.models.types import utcnow
from app.push import apns, fcm, message
from app.push.message import NotificationError, PayloadTooLarge, PushType

ACTIVITY_EVENTS = ("update", "end")  # sent to running activities' own tokens
PUSH_TYPES = (PushType.ALERT, PushType.BACKGROUND, PushType.VOIP, PushType.LIVEACTIVITY)
LIVE_ACTIVITY_START = "start"
LIVE_ACTIVITY_UPDATE_PRIORITY = 5
BULKY_FIELDS = {"alert": "alert", "custom": "data", "content_state": "content_state",
                "attributes": "attributes"}


def validated(content):
    """``content`` as a ``message.Notification`` whose payload and headers APNs (and FCM,
    for the pushes it carries) will take; errors name the attribute at fault."""
    push_type = content.get("push_type", PushType.ALERT)
    if push_type not in PUSH_TYPES:
        raise InvalidAttribute(f"push_type must be one of {', '.join(PUSH_TYPES)}.",
                               field="push_type")
    notification = message.Notification(**{**content, "push_type": PushType(push_type)})
    notification = _with_live_activity_defaults(notification)
    _check_priority(notification)
    _check_live_activity(notification)
    _check_payload(notification)
    _check_fcm_message(notification)
    _check_expiration(notification)
    return notification


def _check_priority(notification):
    if notification.push_type is PushType.BACKGROUND and notification.priority not in (
            None, 5):
        raise InvalidAttribute("Background pushes must have priority 5.", field="priority")


def _with_live_activity_defaults(notification):
    """An update or end is stamped with the moment it was accepted (a device ignores one
    older than what it shows) and goes at priority 5 unless told (Apple budgets 10)."""
    if notification.push_type is not PushType.LIVEACTIVITY or \
            notification.event not in ACTIVITY_EVENTS:
        return notification
    return dataclasses.replace(
        notification, timestamp=notification.timestamp or int(utcnow().timestamp()),
        priority=notification.priority or LIVE_ACTIVITY_UPDATE_PRIORITY)


def _check_live_activity(notification):
    live = notification.push_type is PushType.LIVEACTIVITY
    if not live:
        if notification.event is not None:
            raise InvalidAttribute("event is for liveactivity pushes.", field="event")
        return
    if notification.priority not in (None, 5, 10):
        raise InvalidAttribute("Live Activity pushes go at priority 5 or 10.",
                               field="priority")
    if notification.event in ACTIVITY_EVENTS:
        _check_activity_event(notification)
        return
    if notification.event != LIVE_ACTIVITY_START:
        raise InvalidAttribute("A Live Activity push needs event: start, update or end.",
                               field="event")
    missing = [name for name in ("timestamp", "attributes_type", "attributes", "content_state")
               if getattr(notification, name) is None]
    if missing:
        raise ErrorList([InvalidAttribute(f"A Live Activity start push needs {name}.",
                                          field=name) for name in missing])


def _check_activity_event(notification):
    """update and end: a content-state; attributes only start an activity; a dismissal
    date only ends one."""
    errors = []
    if notification.content_state is None:
        errors.append(InvalidAttribute(f"A Live Activity {notification.event} push needs "
                                       "content_state.", field="content_state"))
    errors += [InvalidAttribute(f"{name} is for start pushes.", field=name)
               for name in ("attributes_type", "attributes")
               if getattr(notification, name) is not None]
    if notification.dismissal_date is not None and notification.event != "end":
        errors.append(InvalidAttribute("dismissal_date is for end pushes.",
                                       field="dismissal_date"))
    if errors:
        raise ErrorList(errors)


def _check_payload(notification):
    try:
        apns.check(notification)
    except PayloadTooLarge as exc:
        raise Unprocessable(f"The APNs payload is too large: {exc}.", field=_bulkiest(
            notification), code="APNS_PAYLOAD_TOO_LARGE") from exc
    except NotificationError as exc:
        raise Unprocessable(f"APNs would refuse this notification: {exc}.",
                            where=Where.BODY, code="INVALID_NOTIFICATION") from exc


def _check_fcm_message(notification):
    """What FCM would refuse of a push it may carry (alert, background), refused now: a
    reserved data key, too large a payload."""
    if notification.push_type not in fcm.PUSH_TYPES:
        return
    reserved = sorted(key for key in notification.custom if fcm.reserved_data_key(key))
    if reserved:
        raise InvalidAttribute(
            f"FCM reserves the data keys {', '.join(map(repr, reserved))} (from, gcm, "
            "message_type, and any key starting with google or gcm): rename them.",
            field="data", code="FCM_RESERVED_DATA_KEY")
    try:
        fcm.build_message(notification, utcnow().timestamp())
    except PayloadTooLarge as exc:
        raise Unprocessable(f"The FCM payload is too large: {exc}.", field=_bulkiest(
            notification), code="FCM_PAYLOAD_TOO_LARGE") from exc


def _bulkiest(notification):
    sizes = {name: len(json.dumps(getattr(notification, field), ensure_ascii=False).encode())
             for field, name in BULKY_FIELDS.items()}
    return max(sizes, key=sizes.__getitem__)


def _check_expiration(notification):
    expiration = notification.expiration
    if expiration and expiration <= utcnow().timestamp():
        raise InvalidAttribute("expiration is in the past (0 means: try once, now).",
                               field="expiration")
