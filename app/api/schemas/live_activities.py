"""The ``live_activities`` resource type: a running Live Activity on one of the caller's
devices. Its push token is write-only: loaded, never dumped."""

import re

from marshmallow import ValidationError, validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import Timestamp
from app.models.live_activity import MAX_ACTIVITY_ID_LENGTH
from app.resources.devices import apns_token

# ActivityKit's channel ids are base64 strings (APNs makes them).
CHANNEL_ID = re.compile(r"[A-Za-z0-9+/=_-]{1,255}")


class ActivityToken(fields.Str):
    """An activity's push token: APNs pushes to it as to a device token, so it is loaded
    in the same canonical form (lowercase hex)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return apns_token(text, what="An activity push token")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def channel_id(value):
    if value is not None and not CHANNEL_ID.fullmatch(value):
        raise ValidationError("A channel id as APNs makes them: base64, 1 to 255 characters.")


class LiveActivitySchema(Schema):
    id = fields.Str(dump_only=True)
    token = ActivityToken(load_only=True, allow_none=True)
    activity_id = fields.Str(required=True,
                             validate=validate.Length(min=1, max=MAX_ACTIVITY_ID_LENGTH))
    attributes_type = fields.Str(required=True, validate=validate.Length(min=1, max=255))
    channel_id = fields.Str(allow_none=True, validate=channel_id)
    state = fields.Str(dump_only=True)
    ended_at = Timestamp(dump_only=True)
    ended_reason = fields.Str(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "live_activities"
