"""The ``devices`` resource type: an app installation, its push endpoint and metadata.

The token and the Live Activity push-to-start token are write-only: loaded, never dumped.
"""

from marshmallow import ValidationError, validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import StrictBoolean, Timestamp
from app.api.schemas.users import validate_time_zone
from app.formats.bundle_ids import MAX_BUNDLE_ID_LENGTH, is_bundle_id
from app.models import Channel, Environment
from app.resources.devices import apns_token

SHORT_TEXT = validate.Length(max=32)
MODEL_TEXT = validate.Length(max=64)
TOKEN_TEXT = validate.Length(max=2048)  # a webhook URL: the longest token


def validate_bundle_id(value):
    if value is not None and not is_bundle_id(value):
        raise ValidationError(f"A bundle id is reverse-DNS, as Apple allows: 1 to "
                              f"{MAX_BUNDLE_ID_LENGTH} letters, digits, hyphens and dots.")


BUNDLE_ID = [validate.Length(max=MAX_BUNDLE_ID_LENGTH), validate_bundle_id]


class PushToStartToken(fields.Str):
    """A Live Activity push-to-start token: APNs pushes to it as to a device token, so the
    device token's rule applies, and it is loaded in the same canonical form (lowercase hex
    without spaces or ``<>``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return apns_token(text, what="A push-to-start token")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class DeviceSchema(Schema):
    """What ``POST /api/devices`` takes and every ``devices`` response shows."""

    id = fields.Str(dump_only=True)
    channel = fields.Str(allow_none=True, validate=validate.OneOf(tuple(Channel)))
    token = fields.Str(load_only=True, allow_none=True, validate=TOKEN_TEXT)
    fingerprint = fields.Str(allow_none=True, validate=validate.Length(min=1, max=255))
    environment = fields.Str(validate=validate.OneOf(tuple(Environment)))
    bundle_id = fields.Str(allow_none=True, validate=BUNDLE_ID)
    app_version = fields.Str(allow_none=True, validate=SHORT_TEXT)
    build_number = fields.Str(allow_none=True, validate=SHORT_TEXT)
    device_model = fields.Str(allow_none=True, validate=MODEL_TEXT)
    os_version = fields.Str(allow_none=True, validate=MODEL_TEXT)
    time_zone = fields.Str(allow_none=True, validate=[MODEL_TEXT, validate_time_zone])
    is_voip = StrictBoolean()
    live_activity_push_to_start_token = PushToStartToken(
        attribute="live_activity_token", load_only=True, allow_none=True)
    is_invalidated = fields.Bool(dump_only=True)
    invalidated_reason = fields.Str(dump_only=True)
    invalidated_at = Timestamp(dump_only=True)
    last_seen_at = Timestamp(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "devices"


class DeviceChangeSchema(DeviceSchema):
    """What ``PATCH /api/devices/<id>`` takes: the metadata. The push endpoint and the
    fingerprint are set by registering (``POST``); sent back unchanged they pass."""

    channel = fields.Str(dump_only=True)
    fingerprint = fields.Str(dump_only=True)

    class Meta:
        type_ = "devices"
        exclude = ("token",)
