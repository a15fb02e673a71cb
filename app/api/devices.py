"""App installations and their push endpoints on every channel: the device registry with
its own ids. The token and the Live Activity push-to-start token are write-only."""

from app.api import jsonapi_blueprint
from app.api.types import DEVICE_CHANGES, DEVICES
from app.errors import Forbidden, Where
from app.extensions import db
from app.jsonapi.document import parse_resource, refuse_changes_to_read_only
from app.jsonapi.flask import (
    collection_response,
    no_content,
    query_for,
    renderer,
    request_body,
    resource_response,
)
from app.jsonapi.query import Capabilities
from app.observability import metrics
from app.resources import devices
from app.web.auth import require_principal

blueprint = jsonapi_blueprint("devices", __name__)
TYPE = DEVICES.type


@blueprint.post("/devices")
def register_device():
    """Register or refresh: 201 when a device was made, 200 when one was found (by its
    token, else by its fingerprint among the caller's user's devices)."""
    principal = require_principal()
    query = query_for(TYPE, Capabilities())
    parsed = parse_resource(request_body(), DEVICES)
    if parsed.echoes_members:  # a registration names no device yet: nothing to echo
        refuse_changes_to_read_only(parsed, None, DEVICES, None)
    if parsed.id is not None:
        raise Forbidden("Device ids are chosen by the server.", field="id", where=Where.ID,
                        code="CLIENT_ID_NOT_ALLOWED")
    device, created = devices.register_from_attributes(principal, parsed.attributes)
    db.session.commit()
    metrics.registered(metrics.JSONAPI_DEVICES)
    return resource_response(TYPE, query, device, principal, 201 if created else 200)


@blueprint.get("/devices")
def list_devices():
    principal = require_principal()
    query = query_for(TYPE, DEVICES.collection)
    return collection_response(TYPE, query, devices.list_devices(principal, query.listing),
                               principal)


@blueprint.get("/devices/<device_id>")
def get_device(device_id):
    principal = require_principal()
    query = query_for(TYPE, Capabilities())
    device = devices.get_owned_by_id(principal, device_id, load=query.include)
    return resource_response(TYPE, query, device, principal)


@blueprint.patch("/devices/<device_id>")
def update_device(device_id):
    principal = require_principal()
    query = query_for(TYPE, Capabilities())
    parsed = parse_resource(request_body(), DEVICE_CHANGES, url_id=device_id,
                            id_required=True)
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, renderer(query, principal), DEVICES,
                                    devices.find_owned_by_id(principal, device_id))
    device = devices.update_owned(principal, device_id, parsed.attributes)
    db.session.commit()
    return resource_response(TYPE, query, device, principal)


@blueprint.delete("/devices/<device_id>")
def delete_device(device_id):
    devices.delete_owned_by_id(require_principal(), device_id)
    db.session.commit()
    return no_content()
