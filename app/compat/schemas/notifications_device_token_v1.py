"""Seed 002's device-token body, in the device registry's names."""

from marshmallow import EXCLUDE, Schema, fields, validate

from app.api.schemas.devices import MODEL_TEXT, TOKEN_TEXT, PushToStartToken
from app.api.schemas.users import validate_time_zone
from app.models import Channel

# The seed's platforms, each the channel it names; another is a 400 until its channel exists.
PLATFORMS = {"ios": Channel.IOS_PUSH, "android": Channel.FCM}


class DeviceToken(Schema):
    """``POST /api/v1/notifications/device-token``: a null (or absent) ``token`` changes
    only the time zone and the push-to-start token of the device ``deviceId`` names."""

    token = fields.Str(allow_none=True, load_default=None, validate=TOKEN_TEXT)
    platform = fields.Str(required=True, validate=validate.OneOf(tuple(PLATFORMS)))
    fingerprint = fields.Str(data_key="deviceId", required=True,
                             validate=validate.Length(min=1, max=255))
    time_zone = fields.Str(data_key="timezone", allow_none=True,
                           validate=[MODEL_TEXT, validate_time_zone])
    live_activity_token = PushToStartToken(data_key="liveActivityPushToStartToken",
                                           allow_none=True)

    class Meta:
        unknown = EXCLUDE
