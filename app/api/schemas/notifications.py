"""Notifications a backend service sends, and their deliveries (one per device).

The attributes are APNs's (``aps`` members with underscores for hyphens) and ``data``, the
custom keys sent beside ``aps``. Times are ISO 8601 timestamps or UNIX seconds.
"""

import math
from datetime import UTC, datetime

from marshmallow import ValidationError, validate
from marshmallow import fields as plain
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import StrictBoolean, StrictInteger, Timestamp, format_timestamp
from app.models import Channel
from app.resources.notification_schedule import LOCAL_TIME_PATTERN, THROTTLE_MAX, THROTTLE_MIN

PUSH_TYPES = ("alert", "background", "voip", "liveactivity")
ALERT_KEYS = frozenset({
    "title", "subtitle", "body", "launch_image", "title_loc_key", "title_loc_args",
    "subtitle_loc_key", "subtitle_loc_args", "loc_key", "loc_args", "action_loc_key",
})
SOUND_KEYS = frozenset({"critical", "name", "volume"})
SHORT_TEXT = validate.Length(min=1, max=255)
COLLAPSE_ID_BYTES = 64


# The last second every part of the service can show and store (datetime's year 9999).
LATEST_PUSH_TIME = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


class PushTime(plain.Field):
    """A moment as APNs takes it, UNIX seconds; sent as an ISO 8601 timestamp with a zone
    or as UNIX seconds (``expiration`` 0: try once, now). Shown as an ISO timestamp.

    Only moments from 1970 to the end of 9999 in UTC are taken: beyond them no datetime
    shows them, and a notification stored with one could never be read back."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None or value == 0:
            return value
        return format_timestamp(datetime.fromtimestamp(value, UTC))

    def _deserialize(self, value, attr, data, **kwargs):
        seconds = _unix_seconds(value)
        if seconds is None:
            raise ValidationError("Send an ISO 8601 timestamp with a zone, or UNIX seconds.")
        if not 0 <= seconds <= LATEST_PUSH_TIME:
            raise ValidationError("Send a moment from 1970 to 9999-12-31T23:59:59Z "
                                  f"(UNIX seconds 0 to {LATEST_PUSH_TIME}).")
        return seconds


def _unix_seconds(value):
    """``value`` (UNIX seconds, or an ISO 8601 timestamp with a zone) as UNIX seconds, or
    None when it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if moment.tzinfo is None else math.floor(moment.timestamp())


class StrictNumber(plain.Float):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Not a valid number.")
        return super()._deserialize(value, attr, data, **kwargs)


class TextOrObject(plain.Field):
    """A string, or an object with only the ``keys`` APNs knows."""

    def __init__(self, keys, **kwargs):
        super().__init__(**kwargs)
        self.keys = keys

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if not isinstance(value, dict):
            raise ValidationError("Send a string or an object.")
        unknown = sorted(set(value) - self.keys)
        if unknown:
            raise ValidationError(f"Unknown keys {unknown}; known: {sorted(self.keys)}.")
        return value


def collapse_id_fits(value):
    if len(value.encode()) > COLLAPSE_ID_BYTES:
        raise ValidationError(f"At most {COLLAPSE_ID_BYTES} bytes (UTF-8).")


def not_aps(value):
    if "aps" in value:
        raise ValidationError("Custom keys go beside aps: 'aps' itself cannot be one.")


class ActivityAudience(plain.Field):
    """Running Live Activities by what they are: ``attributes_type`` (required) and an
    ``activity_id`` (optional: every activity of that type when left out)."""

    KEYS = {"attributes_type": 255, "activity_id": 128}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("Send an object: attributes_type, and optionally "
                                  "activity_id.")
        unknown = sorted(set(value) - set(self.KEYS))
        if unknown:
            raise ValidationError(f"Unknown keys {unknown}; known: {sorted(self.KEYS)}.")
        if "attributes_type" not in value:
            raise ValidationError("attributes_type is required.")
        for key, longest in self.KEYS.items():
            if key in value and not (isinstance(value[key], str)
                                     and 1 <= len(value[key]) <= longest):
                raise ValidationError(f"{key} is a string of 1 to {longest} characters.")
        return value


class Throttle(plain.Raw):
    """``{"per_minute": N}``: checked by ``app/resources/notification_schedule.py``."""


THROTTLE_JSON_SCHEMA = {
    "type": ["object", "null"], "additionalProperties": False, "required": ["per_minute"],
    "properties": {"per_minute": {"type": "integer", "minimum": THROTTLE_MIN,
                                  "maximum": THROTTLE_MAX}},
    "description": "At most per_minute deliveries of this notification a minute.",
}


class Audience(plain.Raw):
    """Who a notification goes to instead of users and devices; checked by
    ``app/resources/audiences.py`` (its JSON Schema: ``AUDIENCE_JSON_SCHEMA``)."""


_VERSION = {"type": "string", "pattern": r"^\d{1,9}(\.\d{1,9}){0,7}$"}
_STRINGS = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100}
AUDIENCE_JSON_SCHEMA = {
    "type": ["object", "null"], "additionalProperties": False,
    "description": "Exactly one of all, topics or condition; where narrows it.",
    "properties": {
        "all": {"const": True},
        "topics": {**_STRINGS, "items": {"type": "string",
                                         "pattern": "^[A-Za-z0-9_.~%-]{1,256}$"}},
        "condition": {"type": "string", "maxLength": 1000,
                      "description": "FCM's condition: 'a' in topics, &&, ||, !, "
                                     "parentheses; at most 5 topics."},
        "where": {"type": "object", "additionalProperties": False, "properties": {
            "channel": {**_STRINGS, "items": {"enum": [channel.value for channel in Channel]}},
            "environment": {"enum": ["sandbox", "production"]},
            "bundle_id": _STRINGS,
            "app_version": {"type": "object", "additionalProperties": False, "minProperties": 1,
                            "properties": {bound: _VERSION
                                           for bound in ("gt", "gte", "lt", "lte")}},
            "time_zone": _STRINGS,
            "last_seen_after": {"type": "string", "format": "date-time"},
            "last_seen_before": {"type": "string", "format": "date-time"},
        }},
    },
}


class NotificationSchema(Schema):
    id = fields.Str(dump_only=True)
    push_type = fields.Str(validate=validate.OneOf(PUSH_TYPES))
    alert = TextOrObject(ALERT_KEYS, allow_none=True)
    badge = StrictInteger(allow_none=True, validate=validate.Range(min=0, max=2**31 - 1))
    sound = TextOrObject(SOUND_KEYS, allow_none=True)
    thread_id = fields.Str(allow_none=True, validate=SHORT_TEXT)
    category = fields.Str(allow_none=True, validate=SHORT_TEXT)
    content_available = StrictBoolean()
    mutable_content = StrictBoolean()
    interruption_level = fields.Str(allow_none=True, validate=validate.OneOf(
        ("passive", "active", "time-sensitive", "critical")))
    relevance_score = StrictNumber(allow_none=True, validate=validate.Range(min=0, max=1))
    data = fields.Dict(attribute="custom", validate=not_aps)
    priority = StrictInteger(allow_none=True, validate=validate.OneOf((1, 5, 10)))
    collapse_id = fields.Str(allow_none=True, validate=collapse_id_fits)
    expiration = PushTime(allow_none=True)
    event = fields.Str(allow_none=True, validate=validate.OneOf(("start", "update", "end")))
    content_state = fields.Dict(allow_none=True)
    attributes_type = fields.Str(allow_none=True, validate=SHORT_TEXT)
    attributes = fields.Dict(allow_none=True)
    timestamp = PushTime(allow_none=True)
    stale_date = PushTime(allow_none=True)
    dismissal_date = PushTime(allow_none=True)
    live_activity_audience = ActivityAudience(load_only=True)
    # when (app/resources/notification_schedule.py)
    send_at = PushTime(allow_none=True)
    # the pattern is checked by the service (its own code, INVALID_LOCAL_TIME)
    local_time = plain.Raw(allow_none=True, metadata={"type": "string",
                                                      "pattern": LOCAL_TIME_PATTERN})
    throttle = Throttle(allow_none=True)
    # who it goes to instead of users and devices (checked by app/resources/audiences.py)
    audience = Audience(allow_none=True)
    status = fields.Str(dump_only=True)
    counts = fields.Dict(dump_only=True)
    # set by a PATCH (NotificationChangeSchema), never by the POST
    canceled = StrictBoolean(dump_only=True)
    canceled_at = Timestamp(dump_only=True)
    created_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "notifications"


class NotificationChangeSchema(NotificationSchema):
    """What ``PATCH /api/notifications/<id>`` takes: ``canceled``, to cancel it. Every other
    attribute is fixed once accepted: sent back unchanged it passes, changed it is refused
    as read-only."""

    canceled = StrictBoolean()

    class Meta:
        type_ = "notifications"
        exclude = ("live_activity_audience",)  # accepted by the POST, never shown
        dump_only = tuple(name for name in NotificationSchema._declared_fields
                          if name not in ("canceled", "live_activity_audience"))


class DeliverySchema(Schema):
    """One notification to one device; the id is its ``apns-id``."""

    id = fields.Str(attribute="apns_id", dump_only=True)
    device_id = fields.Str(dump_only=True)
    channel = fields.Str(dump_only=True)
    apns_id = fields.Str(dump_only=True)
    state = fields.Str(attribute="shown_state", dump_only=True)
    reason = fields.Str(attribute="shown_reason", dump_only=True)
    status = fields.Int(attribute="last_status", dump_only=True)
    attempts = fields.Int(dump_only=True)
    created_at = Timestamp(dump_only=True)
    sent_at = Timestamp(dump_only=True)
    next_attempt_at = Timestamp(dump_only=True)
    scheduled_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "deliveries"
