"""Field types with the strictness a public API needs."""

from datetime import UTC

from marshmallow import ValidationError, fields


def format_timestamp(value):
    """UTC, ISO 8601 with milliseconds and ``Z``: ``2022-05-20T22:15:43.990Z``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class Timestamp(fields.Field):
    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_timestamp(value)


class StrictBoolean(fields.Boolean):
    """Only JSON true and false; ``"yes"`` or ``1`` is a wrong type, not a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean: send true or false.")
        return value


class StrictInteger(fields.Integer):
    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)
