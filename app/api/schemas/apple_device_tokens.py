from marshmallow import validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.devices import BUNDLE_ID
from app.api.schemas.fields import ProductionFlag, StrictBoolean, Timestamp

SHORT_TEXT = validate.Length(max=32)


class AppleDeviceTokenSchema(Schema):
    """Poparazzi's view of a device: the token is its id, ``bundle_version`` its app
    version, ``is_production`` its environment."""

    id = fields.Str(attribute="token", dump_only=True)
    bundle_version = fields.Str(attribute="app_version", allow_none=True, validate=SHORT_TEXT)
    bundle_id = fields.Str(allow_none=True, validate=BUNDLE_ID)
    build_number = fields.Str(allow_none=True, validate=SHORT_TEXT)
    is_production = ProductionFlag(attribute="environment")
    is_voip = StrictBoolean()
    is_invalidated = StrictBoolean()
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "apple_device_tokens"
