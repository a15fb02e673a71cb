"""One delivery of a notification to a device, by its apns-id; a notification lists its own
at ``/api/notifications/<id>/deliveries``."""

from app.api import jsonapi_blueprint
from app.api.contract import SENDERS, SINGLE, route
from app.api.types import DELIVERIES
from app.resources import notifications

blueprint = jsonapi_blueprint("deliveries", __name__)


@route(blueprint, "GET", "/deliveries/<apns_id>", "One delivery, by its apns-id", DELIVERIES,
       credentials=SENDERS, query=SINGLE)
def get_delivery(call, apns_id):
    return call.respond(notifications.get_delivery(call.principal, apns_id))
