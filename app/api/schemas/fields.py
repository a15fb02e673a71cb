"""Field types with the strictness a public API needs."""

import ipaddress
import re
import socket
from datetime import UTC
from urllib.parse import urlsplit

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


class ProductionFlag(StrictBoolean):
    """A device's environment as a boolean: true for production, false for sandbox."""

    def _serialize(self, value, attr, obj, **kwargs):
        return value != "sandbox"

    def _deserialize(self, value, attr, data, **kwargs):
        return "production" if super()._deserialize(value, attr, data, **kwargs) else "sandbox"


class StrictInteger(fields.Integer):
    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


# WHATWG URL parsing reads a host whose last label is a number as IPv4, in any of the
# legacy forms inet_aton takes ("127.1", "0x7f.0.0.1", "2130706433").
NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")


def validate_public_host(url):
    """Refuse URLs that would make a client fetch from its own machine or network:
    ``localhost`` and loopback, private, link-local, reserved or multicast addresses."""
    if url is None:
        return
    host = (urlsplit(url).hostname or "").rstrip(".")  # lowercased, without [ ]
    if host == "localhost" or host.endswith(".localhost"):
        raise ValidationError("The URL's host must be public, not localhost.")
    address = _ip_address(host)
    if address is not None and (not address.is_global or address.is_multicast):
        raise ValidationError("The URL's host must be a public address.")


def _ip_address(host):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.ip_address(socket.inet_aton(host))
    except OSError:
        raise ValidationError("The URL's host is not a valid IPv4 address.") from None
