"""App installations and their push endpoints on every channel: the device registry with
its own ids. The token and the Live Activity push-to-start token are write-only."""

from app.api import jsonapi_blueprint
from app.api.contract import COLLECTION, MANY, ONE, SINGLE, route
from app.api.types import DEVICE_CHANGES, DEVICES
from app.errors import Forbidden, Where
from app.extensions import db
from app.jsonapi.flask import no_content
from app.observability import metrics
from app.resources import devices

blueprint = jsonapi_blueprint("devices", __name__)
DEVICE = "/devices/<device_id>"


@route(blueprint, "POST", "/devices", "Register or refresh a device", DEVICES, query=SINGLE,
       body=DEVICES, responses={200: ONE, 201: ONE})
def register_device(call):
    """Register or refresh: 201 when a device was made, 200 when one was found (by its
    token, else by its fingerprint among the caller's user's devices)."""
    parsed = call.new_resource()  # a registration names no device yet: nothing to echo
    if parsed.id is not None:
        raise Forbidden("Device ids are chosen by the server.", field="id", where=Where.ID,
                        code="CLIENT_ID_NOT_ALLOWED")
    device, created = devices.register_from_attributes(call.principal, parsed.attributes)
    secret = devices.issue_signing_secret(device)
    db.session.commit()
    metrics.registered(metrics.JSONAPI_DEVICES)
    return call.respond(device, 201 if created else 200,
                        revealed=secret and {"signing_secret": secret})


@route(blueprint, "GET", "/devices", "The caller's devices", DEVICES, query=COLLECTION,
       responses={200: MANY})
def list_devices(call):
    return call.respond_page(devices.list_devices(call.principal, call.query.listing))


@route(blueprint, "GET", DEVICE, "One of the caller's devices", DEVICES, query=SINGLE)
def get_device(call, device_id):
    return call.respond(devices.get_owned_by_id(call.principal, device_id,
                                                load=call.query.include))


@route(blueprint, "PATCH", DEVICE, "Change a device's metadata", DEVICES, query=SINGLE,
       body=DEVICE_CHANGES, id_required=True)
def update_device(call, device_id):
    parsed = call.changes(device_id,
                          lambda: devices.find_owned_by_id(call.principal, device_id))
    device = devices.update_owned(call.principal, device_id, parsed.attributes)
    db.session.commit()
    return call.respond(device)


@route(blueprint, "DELETE", DEVICE, "Forget a device", DEVICES, responses={204: None})
def delete_device(call, device_id):
    devices.delete_owned_by_id(call.principal, device_id)
    db.session.commit()
    return no_content()
