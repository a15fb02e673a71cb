"""Topics: a device's owner changes its subscriptions through the device's ``topics``
relationship (read and removed through the generic relationship endpoints); a backend
service with ``topics:manage`` subscribes any devices by id and reads a topic's count."""

from app.api import jsonapi_blueprint, relationships
from app.api.types import DEVICES, TOPICS
from app.extensions import db
from app.jsonapi.flask import jsonapi_response, no_content, query_for, renderer
from app.jsonapi.media import JSONAPI_OBJECT
from app.jsonapi.query import Capabilities
from app.jsonapi.registry import Relationship
from app.resources import devices, topics
from app.web.auth import SERVICES, require, require_principal

blueprint = jsonapi_blueprint("topics", __name__)
SCOPE = "topics:manage"
TOPIC_DEVICES = Relationship("devices", "devices", many=True)  # written, never listed


@blueprint.post("/devices/<device_id>/relationships/topics")
def subscribe_device(device_id):
    """Add topics to one of the caller's devices (those it has stay)."""
    return _change_device_topics(device_id, topics.add_to_device)


@blueprint.patch("/devices/<device_id>/relationships/topics")
def replace_device_topics(device_id):
    """The device's topics become exactly those sent."""
    return _change_device_topics(device_id, topics.replace_on_device)


def _change_device_topics(device_id, change):
    principal = require_principal()
    device = devices.get_owned_by_id(principal, device_id)
    change(principal, device, relationships.identifier_ids(DEVICES.relationships["topics"]))
    db.session.commit()
    return no_content()


@blueprint.get("/topics/<name>")
def get_topic(name):
    """A topic with its subscriber count (devices a push could reach now) in ``meta``."""
    principal = require(SERVICES, SCOPE)
    query = query_for(TOPICS.type, Capabilities())
    count = topics.subscriber_count(name)
    render = renderer(query, principal)
    render.self_url = render.resource_url(TOPICS.type, name)
    resource = {"type": TOPICS.type, "id": name, "meta": {"subscribers": count},
                "links": {"self": render.self_url}}
    return jsonapi_response({"jsonapi": JSONAPI_OBJECT, "data": resource,
                             "links": {"self": render.self_url}})


@blueprint.post("/topics/<name>/relationships/devices")
def subscribe_devices(name):
    require(SERVICES, SCOPE)
    topics.subscribe_devices(name, relationships.identifier_ids(TOPIC_DEVICES))
    db.session.commit()
    return no_content()


@blueprint.delete("/topics/<name>/relationships/devices")
def unsubscribe_devices(name):
    require(SERVICES, SCOPE)
    topics.unsubscribe_devices(name, relationships.identifier_ids(TOPIC_DEVICES))
    db.session.commit()
    return no_content()
