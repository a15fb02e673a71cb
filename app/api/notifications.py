"""Notifications backend services send (with an API key holding ``notifications:send``),
and their deliveries (each also at ``/api/deliveries/<apns_id>``). The recipients are the
to-many relationships ``users`` and ``devices`` of the document a service POSTs (here
linkage is the input), or its ``audience`` attribute (topics, a condition, filters,
everyone). A PATCH setting ``canceled`` cancels what has not gone out."""

import uuid
from types import SimpleNamespace

from flask import request

from app.api import jsonapi_blueprint
from app.api.contract import (
    COLLECTION,
    FILTERED,
    LINKAGE,
    LINKAGE_DOCUMENT,
    MANY,
    ONE,
    SENDERS,
    SINGLE,
    ToOne,
    route,
)
from app.api.types import AUDIENCE_COUNTS, DELIVERIES, NOTIFICATION_CHANGES, NOTIFICATIONS
from app.errors import InvalidAttribute, InvalidQueryParameter, Where
from app.extensions import db
from app.jsonapi.document import parse_resource, refuse_changes_to_read_only
from app.jsonapi.errors import InvalidDocument, at, type_mismatch
from app.jsonapi.flask import jsonapi_response, request_body
from app.jsonapi.media import JSONAPI_OBJECT
from app.resources import audience_counts, cancellation, notifications
from app.web import untrusted
from app.web.untrusted import too_deep

blueprint = jsonapi_blueprint("notifications", __name__)
TYPE = NOTIFICATIONS.type
NOTIFICATION = "/notifications/<notification_id>"
# relationship → type of its members
RECIPIENTS = {"users": "users", "devices": "devices", "live_activities": "live_activities"}
CHANNEL = "channel"  # a broadcast: one request to every activity subscribed to the channel
CHANNEL_TYPE = "live_activity_channels"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@route(blueprint, "POST", "/notifications", "Send a notification to users or devices",
       NOTIFICATIONS, credentials=SENDERS, query=SINGLE, body=NOTIFICATIONS,
       body_linkage={**RECIPIENTS, CHANNEL: ToOne(CHANNEL_TYPE)}, responses={202: ONE},
       headers={notifications.IDEMPOTENCY_KEY_HEADER: "The same key sends the notification "
                "once (1 to 255 characters)."},
       description="Needs an API key with the notifications:send scope.")
def send_notification(call):
    """202: accepted into the ledger; the dispatcher sends it."""
    parsed = parse_resource(request_body(), NOTIFICATIONS)
    recipients = {name: _identifiers(name, parsed.linkage.pop(name))
                  for name in RECIPIENTS if name in parsed.linkage}
    if CHANNEL in parsed.linkage:
        recipients[CHANNEL] = _channel(parsed.linkage.pop(CHANNEL))
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, None, NOTIFICATIONS, None)
    audience = parsed.attributes.pop("audience", None)
    notification, _ = notifications.accept(call.principal, parsed.attributes, audience=audience,
                                            idempotency_key=_idempotency_key(), **recipients)
    # rendered before the commit: a notification the answer cannot show is never kept
    response = _response(call, notification, 202)
    db.session.commit()
    return response


@route(blueprint, "GET", "/audience_counts", "How many devices an audience matches now",
       AUDIENCE_COUNTS, credentials=SENDERS, query=FILTERED)
def count_audience(call):
    """How many devices an audience (``filter[audience]``, its JSON) matches now: nothing
    is written. The same scopes as sending to it."""
    filters = call.query.filters
    if "audience" not in filters:
        raise InvalidQueryParameter("Give the audience as JSON in filter[audience].",
                                    field="audience", where=Where.FILTER)
    counted = audience_counts.count(call.principal, _audience_filter(filters["audience"]),
                                    filters.get("push_type", "alert"))
    return call.respond(counted)


def _audience_filter(text):
    try:
        if too_deep(text):
            raise ValueError("too deep")
        return untrusted.loads(text)
    except ValueError:
        raise InvalidQueryParameter("filter[audience] is an audience as JSON, like "
                                    '{"topics": ["news"]}.', field="audience",
                                    where=Where.FILTER) from None


@route(blueprint, "GET", NOTIFICATION, "A notification, its status and counts", NOTIFICATIONS,
       credentials=SENDERS, query=SINGLE)
def get_notification(call, notification_id):
    return _response(call, notifications.get(call.principal, notification_id))


@route(blueprint, "PATCH", NOTIFICATION, "Cancel a notification", NOTIFICATIONS,
       credentials=SENDERS, query=SINGLE, body=NOTIFICATION_CHANGES, id_required=True,
       errors={403: "\"canceled\": false (a cancel cannot be undone), or another attribute "
                    "changed: they are read-only."},
       description="\"canceled\": true cancels every delivery not yet handed to a provider; "
                   "those in flight finish. Cancelling again changes nothing.")
def update_notification(call, notification_id):
    """200: the notification as it is now (its counts show what was canceled)."""
    parsed = call.changes(notification_id,
                          lambda: _shown(notifications.get(call.principal, notification_id)))
    if cancellation.MEMBER in parsed.attributes:
        notification, _ = cancellation.cancel_own(call.principal, notification_id,
                                                   parsed.attributes[cancellation.MEMBER])
    else:  # nothing asked: the notification as it is
        notification = notifications.get(call.principal, notification_id)
    db.session.commit()
    return _response(call, notification)


@route(blueprint, "GET", f"{NOTIFICATION}/deliveries", "A notification's deliveries",
       DELIVERIES, credentials=SENDERS, query=COLLECTION, responses={200: MANY})
def list_deliveries(call, notification_id):
    notification = notifications.get(call.principal, notification_id)
    return call.respond_page(
        notifications.list_deliveries(call.principal, notification, call.query.listing))


@route(blueprint, "GET", f"{NOTIFICATION}/relationships/deliveries", "A notification's "
       "deliveries, as linkage", DELIVERIES, credentials=SENDERS, query=LINKAGE,
       responses={200: LINKAGE_DOCUMENT})
def delivery_linkage(call, notification_id):
    shown = _shown(notifications.get(call.principal, notification_id))
    render = call.renderer()
    relationship = NOTIFICATIONS.relationships["deliveries"]
    document = {"jsonapi": JSONAPI_OBJECT,
                "links": render.relationship_links(TYPE, str(shown.id), "deliveries"),
                "data": render.linkage(relationship, shown)}
    return jsonapi_response(document)


def _response(call, notification, status=200):
    """The notification; its document's ``self`` (and a 202's ``Content-Location``) is
    where it is read again."""
    render = call.renderer()
    render.self_url = render.resource_url(TYPE, str(notification.id))
    headers = {"Content-Location": render.self_url} if status == 202 else None
    return jsonapi_response(render.document(TYPE, _shown(notification)), status, headers)


def _shown(notification):
    """The notification as its resource object shows it: content, status and counts."""
    counts = notifications.counts(notification)
    return SimpleNamespace(**notification.content, id=notification.id,
                           audience=notification.audience, **_schedule(notification),
                           sender_id=notification.sender_id,
                           status=notifications.status_of(counts).value,
                           counts=counts.shown(), created_at=notification.created_at,
                           canceled=notification.canceled_at is not None,
                           canceled_at=notification.canceled_at)


def _schedule(notification):
    """send_at as UNIX seconds (as ``expiration``), throttle as the object it was given."""
    send_at = notification.send_at
    return {"send_at": None if send_at is None else int(send_at.timestamp()),
            "local_time": notification.local_time,
            "throttle": None if notification.throttle is None
            else {"per_minute": notification.throttle}}


def _identifiers(name, linkage):
    """The ids of a recipients relationship's resource identifiers, each checked."""
    pointer = f"/data/relationships/{name}/data"
    if not isinstance(linkage, list):
        raise InvalidDocument(f"'{name}' takes an array of resource identifiers.",
                              pointer=pointer)
    return [identifier_id(RECIPIENTS[name], item, f"{pointer}/{index}")
            for index, item in enumerate(linkage)]


def _channel(linkage):
    if linkage is None:
        return None
    return identifier_id(CHANNEL_TYPE, linkage, f"/data/relationships/{CHANNEL}/data")


def identifier_id(type_name, identifier, pointer):
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

