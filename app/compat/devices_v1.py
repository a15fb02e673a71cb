"""Seed 003: ``/v1/devices`` — the push-token registry's plain JSON over the device
registry.

Errors are ``{"error": {"code", "message"}}`` with the service's UPPER_SNAKE code, plus
``field`` when one member is at fault, ``details`` (each a code, message and field) when
several are, ``id`` for a 5xx (the id in the server log) and ``request_id`` (as in the
``X-Request-ID`` header).
"""

from flask import current_app

from app.compat import compat_blueprint, json_object, json_response, occurrence_id
from app.extensions import db
from app.observability import metrics
from app.observability.request_ids import request_id
from app.resources import devices
from app.resources.listing import Listing, PageRequest
from app.web.auth import USER, require
from schemas.compat.devices_v1 import Device, Registration


def render_error(error):
    body = _error_object(error.errors[0])  # it names the field when it is the only one
    if len(error.errors) > 1:
        body["details"] = [_error_object(each) for each in error.errors]
    if occurrence_id(error):
        body["id"] = occurrence_id(error)
    body["request_id"] = request_id()
    return json_response({"error": body}, error.status, error.headers)


def _error_object(error):
    shown = {"code": error.code, "message": error.detail}
    if error.field is not None:
        shown["field"] = error.field
    return shown


blueprint = compat_blueprint("devices_v1", __name__, "/v1/devices", render_error)
_registration = Registration()
_device = Device()


@blueprint.post("")
def register_device():
    """201 for a new device and for a refreshed one alike: the seed knows only 201."""
    principal = require(USER)
    body = json_object(_registration)
    device, _ = devices.register(principal, body.pop("channel"), body.pop("token"), body)
    db.session.commit()
    metrics.registered(metrics.DEVICES_V1)
    return json_response({"device": _device.dump(device)}, 201)


@blueprint.get("")
def list_devices():
    """Every push endpoint of the caller's: the caps bound them, so one page holds all."""
    principal = require(USER)
    page = devices.list_devices(principal, _every_push_endpoint(), with_endpoint=True)
    return json_response({"devices": _device.dump(page.items, many=True)})


def _every_push_endpoint():
    config = current_app.config
    size = config["DEVICES_PER_USER_MAX"] + config["DEVICES_PER_SESSION_MAX"]
    return Listing(page=PageRequest(size=size))


@blueprint.delete("/<device_id>")
def delete_device(device_id):
    devices.delete_owned_by_id(require(USER), device_id)
    db.session.commit()
    return json_response({"id": device_id})
