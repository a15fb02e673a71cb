from marshmallow import validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import StrictBoolean, Timestamp


class SessionSchema(Schema):
    id = fields.Str(dump_only=True)  # the session id: drawn by the renderer, for its holder only
    is_cookie_based = StrictBoolean(load_only=True)
    phone_number = fields.Str(load_only=True, validate=validate.Length(max=32))
    verification_code = fields.Str(load_only=True, validate=validate.Length(max=32))
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "sessions"
