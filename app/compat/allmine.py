"""Seed 002: ``POST /api/v1/notifications/device-token`` — Allmine's envelope over the
device registry.

Every answer, an error the framework raises included, is ``{"isSuccess", "statusCode",
"data", "errors", "timestamp"}``; ``errors`` starts with the seed's message for the status
and goes on with what exactly was wrong (``"timezone: 'Mars/Base' is not an IANA time
zone."``). The envelope has no room for more: a request's id is in its ``X-Request-ID``
header alone.
"""

from app.compat import compat_blueprint, json_object, json_response, occurrence_id
from app.extensions import db
from app.models.types import utcnow
from app.observability import metrics
from app.resources import devices
from app.web.auth import USER, require
from schemas.compat.allmine import PLATFORMS, DeviceToken
from schemas.fields import format_timestamp

MESSAGES = {400: "Validation failed", 401: "Authentication required",
            403: "Insufficient permissions", 404: "Resource not found",
            405: "Method not allowed", 409: "Resource already exists or cannot be changed "
            "in its current state", 413: "Request body too large",
            415: "Unsupported media type", 422: "Validation failed",
            429: "Too many requests", 502: "Upstream service failed",
            503: "Service unavailable"}
INTERNAL = "Internal server error"


def envelope(status, data=None, errors=(), headers=None):
    return json_response({"isSuccess": status < 400, "statusCode": status, "data": data,
                          "errors": list(errors), "timestamp": format_timestamp(utcnow())},
                         status, headers)


def render_error(error):
    details = [_detail(each) for each in error.errors]
    if occurrence_id(error):
        details.append(f"Error id: {occurrence_id(error)}")
    return envelope(error.status, None, [MESSAGES.get(error.status, INTERNAL), *details],
                    error.headers)


def _detail(error):
    return error.detail if error.field is None else f"{error.field}: {error.detail}"


blueprint = compat_blueprint("allmine", __name__, "/api/v1/notifications", render_error)
_device_token = DeviceToken()


@blueprint.post("/device-token")
def register_device_token():
    """With a token: a registration of the device ``deviceId`` names (the token moves to it
    from wherever it was). Without: only its time zone and push-to-start token change."""
    principal = require(USER)
    body = json_object(_device_token)
    channel, token = PLATFORMS[body.pop("platform")], body.pop("token")
    fingerprint = body.pop("fingerprint")
    if token is None:
        devices.update_installation(principal, fingerprint, body)
        db.session.commit()
    else:
        devices.register(principal, channel, token, body, fingerprint)
        db.session.commit()
        metrics.registered(metrics.ALLMINE)
    return envelope(200, {"success": True})
