"""The ``devices`` resource type: an app installation, its push endpoint and metadata.

The token and the Live Activity push-to-start token are write-only: loaded, never dumped.
"""

from marshmallow import validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import StrictBoolean, Timestamp
from app.api.schemas.users import validate_time_zone
from app.models import Channel, Environment

SHORT_TEXT = validate.Length(max=32)
MODEL_TEXT = validate.Length(max=64)
LONG_TEXT = validate.Length(max=255)
TOKEN_TEXT = validate.Length(max=1024)
SECRET_TEXT = validate.Length(min=1, max=1024)


class DeviceSchema(Schema):
    """What ``POST /api/devices`` takes and every ``devices`` response shows."""

    id = fields.Str(dump_only=True)
    channel = fields.Str(allow_none=True, validate=validate.OneOf(tuple(Channel)))
    token = fields.Str(load_only=True, allow_none=True, validate=TOKEN_TEXT)
    fingerprint = fields.Str(allow_none=True, validate=validate.Length(min=1, max=255))
    environment = fields.Str(validate=validate.OneOf(tuple(Environment)))
    bundle_id = fields.Str(allow_none=True, validate=LONG_TEXT)
    app_version = fields.Str(allow_none=True, validate=SHORT_TEXT)
    build_number = fields.Str(allow_none=True, validate=SHORT_TEXT)
    device_model = fields.Str(allow_none=True, validate=MODEL_TEXT)
    os_version = fields.Str(allow_none=True, validate=MODEL_TEXT)
    time_zone = fields.Str(allow_none=True, validate=[MODEL_TEXT, validate_time_zone])
    is_voip = StrictBoolean()
    live_activity_push_to_start_token = fields.Str(
        attribute="live_activity_token", load_only=True, allow_none=True,
        validate=SECRET_TEXT)
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
