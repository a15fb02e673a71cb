"""The ``live_activity_channels`` resource type: an iOS 18 broadcast channel made at APNs.
The service chooses the environment and message storage policy; APNs gives the
``channel_id`` the app subscribes its Live Activities to."""

from marshmallow import validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import Timestamp
from app.resources.live_activity_channels import STORAGE_POLICIES


class LiveActivityChannelSchema(Schema):
    id = fields.Str(dump_only=True)
    channel_id = fields.Str(dump_only=True)
    environment = fields.Str(validate=validate.OneOf(("production", "sandbox")))
    message_storage_policy = fields.Str(validate=validate.OneOf(tuple(STORAGE_POLICIES)))
    state = fields.Str(dump_only=True)
    ended_at = Timestamp(dump_only=True)
    ended_reason = fields.Str(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "live_activity_channels"
