from marshmallow import EXCLUDE, Schema, fields, validate

from app.api.schemas.fields import Timestamp


class CreateAuthToken(Schema):
    """Seed 001's create body."""

    id_token = fields.Str(required=True, validate=validate.Length(min=1, max=16384))
    device_fingerprint = fields.Str(required=True, validate=validate.Length(min=1, max=255))

    class Meta:
        unknown = EXCLUDE


class AuthToken(Schema):
    """An auth token's model fields (never its value: that is shown once, on create)."""

    id = fields.Int()
    user_id = fields.Str()
    device_id = fields.Str(allow_none=True)
    device_fingerprint = fields.Function(
        lambda token: None if token.device is None else token.device.fingerprint)
    created_at = Timestamp()
    last_used_at = Timestamp()
