"""What a device's push token and attributes may be: each channel's token rule, and which
attributes apply to which channel."""

import re

from app.errors import InvalidAttribute, Where
from app.models import APNS_CHANNELS, Channel, Environment
from app.security import crypto

HEX = re.compile(r"[0-9a-f]*\Z")
MIN_APNS_TOKEN_LENGTH = 64
MAX_APNS_TOKEN_LENGTH = 200
# Google documents no maximum for an FCM registration token (today's are about 160
# characters); the bound keeps the unique index on (channel, token) small with room to grow.
MAX_FCM_TOKEN_LENGTH = 1024
FCM_TOKEN = re.compile(r"[\x21-\x7e]+\Z")  # printable ASCII, no whitespace
# What only APNs devices have: ignored when a device on another channel registers.
APNS_ONLY = ("environment", "is_voip", "live_activity_token")
# What clients may set on a device (beyond its token and fingerprint).
UPDATABLE = ("bundle_id", "app_version", "build_number", "environment", "is_voip",
             "device_model", "os_version", "time_zone", "live_activity_token")
CLIENT_REPORTED = "ClientReported"


def apns_token(raw, what="A device token"):
    """Apple's variable-length hex token in canonical form: no spaces or ``<>``, lowercase.
    ``what`` names the kind of token in the error."""
    token = raw.translate({ord(c): None for c in " <>"}).lower()
    if not HEX.match(token) or len(token) % 2:
        raise ValueError(f"{what} is an even number of hexadecimal digits.")
    if not MIN_APNS_TOKEN_LENGTH <= len(token) <= MAX_APNS_TOKEN_LENGTH:
        raise ValueError(f"{what} has {MIN_APNS_TOKEN_LENGTH} to "
                         f"{MAX_APNS_TOKEN_LENGTH} hex digits.")
    return token


def _fcm_token(raw):
    """An FCM registration token is opaque: kept exactly as sent, within bounds."""
    if not FCM_TOKEN.match(raw):
        raise ValueError("An FCM registration token is printable ASCII without whitespace.")
    if len(raw) > MAX_FCM_TOKEN_LENGTH:
        raise ValueError(f"An FCM registration token has at most {MAX_FCM_TOKEN_LENGTH} "
                         "characters.")
    return raw


TOKEN_RULES = {Channel.IOS_PUSH: apns_token, Channel.FCM: _fcm_token}


def normalise_token(channel, raw, *, field="token", where=Where.ATTRIBUTE):
    """A channel's token in canonical form, or an error naming where it was sent."""
    try:
        return TOKEN_RULES[channel](raw)
    except ValueError as exc:
        raise InvalidAttribute(str(exc), field=field, where=where,
                               code="INVALID_DEVICE_TOKEN") from exc


def for_channel(channel, attributes):
    """The attributes that apply to the channel: an FCM device has no APNs environment,
    VoIP token or Live Activity token (its ``environment`` stays null)."""
    if channel is None or channel in APNS_CHANNELS:
        return attributes
    return {name: value for name, value in attributes.items() if name not in APNS_ONLY}


def default_environment(channel):
    return Environment.PRODUCTION if channel in APNS_CHANNELS else None


def sealed(attributes):
    """The attributes as stored: the Live Activity token encrypted."""
    secret = attributes.get("live_activity_token")
    if secret is None:
        return attributes
    return {**attributes, "live_activity_token": crypto.seal(secret)}
