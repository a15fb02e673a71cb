"""Notifications backend services send (with an API key holding ``notifications:send``),
and their deliveries. The recipients are the to-many relationships ``users`` and
``devices`` of the document a service POSTs (here linkage is the input), or its
``audience`` attribute (topics, a condition, filters, everyone)."""

import uuid
from types import SimpleNamespace

from flask import request

from app.api import jsonapi_blueprint
from app.api.types import AUDIENCE_COUNTS, DELIVERIES, NOTIFICATIONS
from app.errors import InvalidAttribute, InvalidQueryParameter, Where
from app.extensions import db
from app.jsonapi.document import parse_resource, refuse_changes_to_read_only
from app.jsonapi.errors import InvalidDocument, at, type_mismatch
from app.jsonapi.flask import (
    collection_response,
    jsonapi_response,
    query_for,
    renderer,
    request_body,
    resource_response,
)
from app.jsonapi.media import JSONAPI_OBJECT
from app.jsonapi.query import Capabilities
from app.resources import audience_counts, notifications
from app.web import untrusted
from app.web.auth import SERVICES, require
from app.web.untrusted import too_deep

blueprint = jsonapi_blueprint("notifications", __name__)
TYPE = NOTIFICATIONS.type
SCOPE = "notifications:send"
RECIPIENTS = {"users": "users", "devices": "devices"}  # relationship → type of its members
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@blueprint.post("/notifications")
def send_notification():
    """202: accepted into the ledger; the dispatcher sends it."""
    principal = require(SERVICES, SCOPE)
    query = query_for(TYPE, Capabilities())
    parsed = parse_resource(request_body(), NOTIFICATIONS)
    recipients = {name: _identifiers(name, parsed.linkage.pop(name))
                  for name in RECIPIENTS if name in parsed.linkage}
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, None, NOTIFICATIONS, None)
    audience = parsed.attributes.pop("audience", None)
    notification, _ = notifications.accept(principal, parsed.attributes, audience=audience,
                                            idempotency_key=_idempotency_key(), **recipients)
    # rendered before the commit: a notification the answer cannot show is never kept
    response = _response(query, notification, principal, 202)
    db.session.commit()
    return response


@blueprint.get("/audience_counts")
def count_audience():
    """How many devices an audience (``filter[audience]``, its JSON) matches now: nothing
    is written. The same scopes as sending to it."""
    principal = require(SERVICES, SCOPE)
    query = query_for(AUDIENCE_COUNTS.type, AUDIENCE_COUNTS.collection)
    if "audience" not in query.filters:
        raise InvalidQueryParameter("Give the audience as JSON in filter[audience].",
                                    field="audience", where=Where.FILTER)
    counted = audience_counts.count(principal, _audience_filter(query.filters["audience"]),
                                    query.filters.get("push_type", "alert"))
    return resource_response(AUDIENCE_COUNTS.type, query, counted, principal)


def _audience_filter(text):
    try:
        if too_deep(text):
            raise ValueError("too deep")
        return untrusted.loads(text)
    except ValueError:
        raise InvalidQueryParameter("filter[audience] is an audience as JSON, like "
                                    '{"topics": ["news"]}.', field="audience",
                                    where=Where.FILTER) from None


@blueprint.get("/notifications/<notification_id>")
def get_notification(notification_id):
    principal = require(SERVICES, SCOPE)
    query = query_for(TYPE, Capabilities())
    return _response(query, notifications.get(principal, notification_id), principal)


@blueprint.get("/notifications/<notification_id>/deliveries")
def list_deliveries(notification_id):
    principal = require(SERVICES, SCOPE)
    query = query_for(DELIVERIES.type, DELIVERIES.collection)
    notification = notifications.get(principal, notification_id)
    page = notifications.list_deliveries(principal, notification, query.listing)
    return collection_response(DELIVERIES.type, query, page, principal)


@blueprint.get("/notifications/<notification_id>/relationships/deliveries")
def delivery_linkage(notification_id):
    principal = require(SERVICES, SCOPE)
    query = query_for(DELIVERIES.type, Capabilities())
    shown = _shown(notifications.get(principal, notification_id))
    render = renderer(query, principal)
    relationship = NOTIFICATIONS.relationships["deliveries"]
    document = {"jsonapi": JSONAPI_OBJECT,
                "links": render.relationship_links(TYPE, str(shown.id), "deliveries"),
                "data": render.linkage(relationship, shown)}
    return jsonapi_response(document)


@blueprint.get("/deliveries/<apns_id>")
def get_delivery(apns_id):
    principal = require(SERVICES, SCOPE)
    query = query_for(DELIVERIES.type, Capabilities())
    return resource_response(DELIVERIES.type, query,
                             notifications.get_delivery(principal, apns_id), principal)


def _response(query, notification, principal, status=200):
    """The notification; its document's ``self`` (and a 202's ``Content-Location``) is
    where it is read again."""
    render = renderer(query, principal)
    render.self_url = render.resource_url(TYPE, str(notification.id))
    headers = {"Content-Location": render.self_url} if status == 202 else None
    return jsonapi_response(render.document(TYPE, _shown(notification)), status, headers)


def _shown(notification):
    """The notification as its resource object shows it: content, status and counts."""
    counts = notifications.counts(notification)
    return SimpleNamespace(**notification.content, id=notification.id,
                           audience=notification.audience,
                           sender_id=notification.sender_id,
                           status=notifications.status_of(counts).value,
                           counts=counts.shown(), created_at=notification.created_at)


def _identifiers(name, linkage):
    """The ids of a recipients relationship's resource identifiers, each checked."""
    pointer = f"/data/relationships/{name}/data"
    if not isinstance(linkage, list):
        raise InvalidDocument(f"'{name}' takes an array of resource identifiers.",
                              pointer=pointer)
    return [_identifier_id(RECIPIENTS[name], item, f"{pointer}/{index}")
            for index, item in enumerate(linkage)]


def _identifier_id(type_name, identifier, pointer):
    if not isinstance(identifier, dict) or not isinstance(identifier.get("id"), str):
        raise InvalidDocument("A resource identifier needs a 'type' and a string 'id'.",
                              pointer=pointer)
    if identifier.get("type") != type_name:
        raise type_mismatch(f"Members of this relationship are '{type_name}'.",
                            f"{pointer}/type")
    try:
        return uuid.UUID(identifier["id"])
    except ValueError:
        raise at(f"{pointer}/id", InvalidAttribute(
            f"'{identifier['id']}' is not a {type_name[:-1]} id (a UUID).",
            code="INVALID_ID")) from None


def _idempotency_key():
    key = request.headers.get(notifications.IDEMPOTENCY_KEY_HEADER)
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidAttribute(f"The key is 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
                               field=notifications.IDEMPOTENCY_KEY_HEADER,
                               where=Where.HEADER)
    return key

