import re
from importlib.resources import files

from marshmallow import ValidationError, validate
from marshmallow_jsonapi import Schema, fields

from app.api.schemas.fields import StrictBoolean, Timestamp, validate_public_host

USERNAME = re.compile(r"[a-z0-9_.]{2,30}\Z")  # \Z: $ would let a trailing "\n" through
NAME_LENGTH = validate.Length(min=1, max=30)


def _iana_time_zones():
    """The zone names of the tzdata package (the list zoneinfo.available_timezones() reads
    too), not the host's zoneinfo directory, which also holds files that name no zone:
    ``localtime``, ``posixrules``, ``posix/…``, ``right/…``. ``Factory`` is a placeholder
    zone, not a place."""
    return frozenset(files("tzdata").joinpath("zones").read_text().split()) - {"Factory"}


IANA_TIME_ZONES = _iana_time_zones()


def validate_time_zone(value):
    if value is not None and value not in IANA_TIME_ZONES:
        raise ValidationError(f"'{value}' is not an IANA time zone.")


def validate_username(value):
    # Usernames are case-insensitive: stored lowercased (resources/users.py), so "Alice"
    # is valid and the same name as "alice".
    if not USERNAME.match(value.lower()):
        raise ValidationError(
            "Usernames are 2 to 30 letters (a-z, any case), digits, '_' or '.'.")


class UserSchema(Schema):
    id = fields.Str(dump_only=True)
    username = fields.Str(allow_none=True, validate=validate_username)
    first_name = fields.Str(allow_none=True, validate=NAME_LENGTH)
    last_name = fields.Str(allow_none=True, validate=NAME_LENGTH)
    profile_photo_url = fields.Url(allow_none=True, schemes={"https"},
                                   validate=[validate.Length(max=2048), validate_public_host])
    badges = fields.List(fields.Str(), dump_only=True)
    is_private = StrictBoolean()
    is_banned = fields.Bool(dump_only=True, allow_none=True)
    time_zone = fields.Str(allow_none=True, validate=validate_time_zone)
    phone_number = fields.Str(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)

    class Meta:
        type_ = "users"
