"""Seed 003's ``/v1/devices`` documents."""

from marshmallow import EXCLUDE, Schema, fields, post_load, validate

from app.api.schemas.devices import MODEL_TEXT, SHORT_TEXT, TOKEN_TEXT
from app.api.schemas.fields import Timestamp
from app.models import APNS_CHANNELS, Channel, Environment


def environment(value):
    """The seed's rule: ``sandbox``, and anything else (null, a number, a typo) is
    production."""
    return Environment.SANDBOX if value == Environment.SANDBOX else Environment.PRODUCTION


class Registration(Schema):
    channel = fields.Str(required=True, validate=validate.OneOf(tuple(Channel)))
    token = fields.Str(required=True, validate=[validate.Length(min=1), TOKEN_TEXT])
    environment = fields.Raw(allow_none=True)
    app_version = fields.Str(allow_none=True, validate=SHORT_TEXT)
    device_model = fields.Str(allow_none=True, validate=MODEL_TEXT)
    os_version = fields.Str(allow_none=True, validate=MODEL_TEXT)

    class Meta:
        unknown = EXCLUDE

    @post_load
    def environment_by_the_seeds_rule(self, data, **kwargs):
        if "environment" in data:
            data["environment"] = environment(data["environment"])
        return data


class Device(Schema):
    """A device as the seed shows it: never its token."""

    id = fields.Str()
    channel = fields.Str()
    environment = fields.Function(lambda device: environment(device.environment).value
                                  if device.channel in APNS_CHANNELS else None)
    app_version = fields.Str()
    device_model = fields.Str()
    os_version = fields.Str()
    last_seen_at = Timestamp()
    created_at = Timestamp()
