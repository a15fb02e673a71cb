from marshmallow import validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import Timestamp


class AuthTokenSchema(Schema):
    """A long-lived credential bound to one device; its ``value`` is shown once, when it is
    made (the database keeps only its digest)."""

    id = fields.Str(dump_only=True)
    id_token = fields.Str(load_only=True, required=True, validate=validate.Length(max=16384))
    device_fingerprint = fields.Str(load_only=True, required=True,
                                    validate=validate.Length(min=1, max=255))
    value = fields.Str(dump_only=True)
    created_at = Timestamp(dump_only=True)
    last_used_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "auth_tokens"


class AccessTokenSchema(Schema):
    """A short-lived signed JWT standing for the credential that asked for it."""

    id = fields.Str(dump_only=True)
    value = fields.Str(dump_only=True)
    token_type = fields.Str(dump_only=True)
    expires_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "access_tokens"
