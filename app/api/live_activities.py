"""Running Live Activities: the app registers each with its user's or session's credential
(its push token, write-only), reads and deletes its own; backend services with an API key
holding ``notifications:send`` list and read them all."""

from app.api import jsonapi_blueprint
from app.api.contract import (
    COLLECTION,
    MANY,
    ONE,
    PEOPLE_OR_SENDERS,
    SINGLE,
    ToOne,
    route,
)
from app.api.notifications import identifier_id
from app.api.types import LIVE_ACTIVITIES
from app.errors import Forbidden, InvalidAttribute, Where
from app.extensions import db
from app.jsonapi.document import parse_resource, refuse_changes_to_read_only
from app.jsonapi.errors import InvalidDocument
from app.jsonapi.flask import no_content, request_body
from app.resources import live_activities

blueprint = jsonapi_blueprint("live_activities", __name__)
ACTIVITY = "/live_activities/<activity_id>"
DEVICE_POINTER = "/data/relationships/device/data"


@route(blueprint, "POST", "/live_activities", "Register a running Live Activity, or rotate "
       "its push token", LIVE_ACTIVITIES, query=SINGLE, body=LIVE_ACTIVITIES,
       body_linkage={"device": ToOne("devices")}, responses={200: ONE, 201: ONE},
       description="The activity's push token (or the broadcast channel it listens on) and "
                   "the caller's device it runs on.")
def register_live_activity(call):
    """201 when the activity is new, 200 when its token was rotated."""
    parsed = parse_resource(request_body(), LIVE_ACTIVITIES)
    device_id = _device_id(parsed.linkage.pop("device", None))
    if parsed.echoes_members:  # a registration names no activity yet: nothing to echo
        refuse_changes_to_read_only(parsed, None, LIVE_ACTIVITIES, None)
    if parsed.id is not None:
        raise Forbidden("Live activity ids are chosen by the server.", field="id",
                        where=Where.ID, code="CLIENT_ID_NOT_ALLOWED")
    _require_one_address(parsed.attributes)
    activity, created = live_activities.register(call.principal, parsed.attributes, device_id)
    db.session.commit()
    return call.respond(activity, 201 if created else 200)


@route(blueprint, "GET", "/live_activities", "Live Activities: the caller's, or all of them "
       "for an API key with notifications:send", LIVE_ACTIVITIES,
       credentials=PEOPLE_OR_SENDERS, query=COLLECTION, responses={200: MANY})
def list_live_activities(call):
    return call.respond_page(live_activities.list_activities(call.principal,
                                                             call.query.listing))


@route(blueprint, "GET", ACTIVITY, "A Live Activity", LIVE_ACTIVITIES,
       credentials=PEOPLE_OR_SENDERS, query=SINGLE)
def get_live_activity(call, activity_id):
    return call.respond(live_activities.get(call.principal, activity_id))


@route(blueprint, "DELETE", ACTIVITY, "End and forget one of the caller's Live Activities",
       LIVE_ACTIVITIES, responses={204: None})
def delete_live_activity(call, activity_id):
    live_activities.delete_owned(call.principal, activity_id)
    db.session.commit()
    return no_content()


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
