"""iOS 18 broadcast channels: a backend service with an API key holding
``live_activities:manage`` makes, lists, reads and deletes its channels (each made or
deleted at APNs's channel management API)."""

from app.api import jsonapi_blueprint
from app.api.contract import CHANNEL_MANAGERS, COLLECTION, MANY, ONE, SINGLE, route
from app.api.types import LIVE_ACTIVITY_CHANNELS
from app.errors import Forbidden, Where
from app.extensions import db
from app.jsonapi.document import parse_resource, refuse_changes_to_read_only
from app.jsonapi.flask import no_content, request_body
from app.resources import live_activity_channels

blueprint = jsonapi_blueprint("live_activity_channels", __name__)
CHANNEL = "/live_activity_channels/<channel_id>"


@route(blueprint, "POST", "/live_activity_channels", "Make a broadcast channel at APNs",
       LIVE_ACTIVITY_CHANNELS, credentials=CHANNEL_MANAGERS, query=SINGLE,
       body=LIVE_ACTIVITY_CHANNELS, responses={201: ONE},
       errors={502: "APNs refused to make the channel", 503: "APNs could not be reached"},
       description="Needs an API key with the live_activities:manage scope. The answer's "
                   "channel_id is what the app subscribes its Live Activities to.")
def create_channel(call):
    parsed = parse_resource(request_body(), LIVE_ACTIVITY_CHANNELS)
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, None, LIVE_ACTIVITY_CHANNELS, None)
    if parsed.id is not None:
        raise Forbidden("Channel ids are chosen by the server.", field="id",
                        where=Where.ID, code="CLIENT_ID_NOT_ALLOWED")
    channel = live_activity_channels.create(call.principal, parsed.attributes)
    db.session.commit()
    return call.respond(channel, 201)


@route(blueprint, "GET", "/live_activity_channels", "The caller's broadcast channels",
       LIVE_ACTIVITY_CHANNELS, credentials=CHANNEL_MANAGERS, query=COLLECTION,
       responses={200: MANY})
def list_channels(call):
    return call.respond_page(live_activity_channels.list_owned(call.principal,
                                                               call.query.listing))


@route(blueprint, "GET", CHANNEL, "One of the caller's broadcast channels",
       LIVE_ACTIVITY_CHANNELS, credentials=CHANNEL_MANAGERS, query=SINGLE)
def get_channel(call, channel_id):
    return call.respond(live_activity_channels.get_owned(call.principal, channel_id))


@route(blueprint, "DELETE", CHANNEL, "Delete a broadcast channel, at APNs and here",
       LIVE_ACTIVITY_CHANNELS, credentials=CHANNEL_MANAGERS, responses={204: None},
       errors={502: "APNs refused to delete the channel", 503: "APNs could not be reached"})
def delete_channel(call, channel_id):
    live_activity_channels.delete_owned(call.principal, channel_id)
    db.session.commit()
    return no_content()
