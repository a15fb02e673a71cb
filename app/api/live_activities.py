"""Running Live Activities: the app registers each with its user's or session's credential
(its push token, write-only), reads and deletes its own; backend services with an API key
holding ``notifications:send`` list and read them all."""

from app.api import jsonapi_blueprint
from app.api.notifications import identifier_id
from app.api.types import LIVE_ACTIVITIES
from app.auth import SERVICES, USER, require, require_principal
from app.errors import Forbidden, InvalidAttribute, Where
from app.extensions import db
from app.jsonapi.document import parse_resource, refuse_changes_to_read_only
from app.jsonapi.errors import InvalidDocument
from app.jsonapi.flask import (
    collection_response,
    no_content,
    query_for,
    request_body,
    resource_response,
)
from app.jsonapi.query import Capabilities
from app.models import CredentialKind
from app.resources import live_activities

blueprint = jsonapi_blueprint("live_activities", __name__)
TYPE = LIVE_ACTIVITIES.type
DEVICE_POINTER = "/data/relationships/device/data"


@blueprint.post("/live_activities")
def register_live_activity():
    """201 when the activity is new, 200 when its token was rotated."""
    principal = require_principal()
    query = query_for(TYPE, Capabilities())
    parsed = parse_resource(request_body(), LIVE_ACTIVITIES)
    device_id = _device_id(parsed.linkage.pop("device", None))
    if parsed.echoes_members:  # a registration names no activity yet: nothing to echo
        refuse_changes_to_read_only(parsed, None, LIVE_ACTIVITIES, None)
    if parsed.id is not None:
        raise Forbidden("Live activity ids are chosen by the server.", field="id",
                        where=Where.ID, code="CLIENT_ID_NOT_ALLOWED")
    _require_one_address(parsed.attributes)
    activity, created = live_activities.register(principal, parsed.attributes, device_id)
    db.session.commit()
    return resource_response(TYPE, query, activity, principal, 201 if created else 200)


@blueprint.get("/live_activities")
def list_live_activities():
    principal = _reader()
    query = query_for(TYPE, LIVE_ACTIVITIES.collection)
    return collection_response(TYPE, query,
                               live_activities.list_activities(principal, query.listing),
                               principal)


@blueprint.get("/live_activities/<activity_id>")
def get_live_activity(activity_id):
    principal = _reader()
    query = query_for(TYPE, Capabilities())
    return resource_response(TYPE, query, live_activities.get(principal, activity_id),
                             principal)


@blueprint.delete("/live_activities/<activity_id>")
def delete_live_activity(activity_id):
    live_activities.delete_owned(require_principal(), activity_id)
    db.session.commit()
    return no_content()


def _reader():
    """The owner (a user's credential) or a backend service reading them all."""
    principal = require(USER | SERVICES)
    if principal.kind == CredentialKind.API_KEY:
        require(SERVICES, live_activities.READ_SCOPE)
    return principal


def _require_one_address(attributes):
    """An activity is reached by its own token or through a broadcast channel: one."""
    if bool(attributes.get("token")) == bool(attributes.get("channel_id")):
        raise InvalidAttribute("Send the activity's push token, or the channel_id of the "
                               "broadcast channel it listens on (one of them).",
                               field="token", code="TOKEN_OR_CHANNEL")


def _device_id(linkage):
    if linkage is None:
        raise InvalidDocument("Name the device the activity runs on: relationships.device.",
                              pointer="/data/relationships")
    return str(identifier_id("devices", linkage, DEVICE_POINTER))
