from app.api import jsonapi_blueprint
from app.auth import current_principal, require_principal
from app.jsonapi.document import parse_resource
from app.jsonapi.errors import InvalidAttribute, NotAuthorized
from app.jsonapi.flask import (
    collection_response,
    no_content,
    query_for,
    request_body,
    resource_response,
)
from app.jsonapi.loading import include_options
from app.jsonapi.query import Capabilities
from app.models import Device
from app.resources import apple_device_tokens as tokens
from app.resources.types import APPLE_DEVICE_TOKENS

blueprint = jsonapi_blueprint("apple_device_tokens", __name__)
TYPE = "apple_device_tokens"


@blueprint.patch("/apple_device_tokens/<token>")
def register_token(token):
    """Upsert (Poparazzi creates tokens with PATCH). Without a session it is a logout."""
    principal = current_principal()
    if principal is None:
        _log_out_device(token)
        raise NotAuthorized()
    query = query_for(TYPE, Capabilities())
    token = tokens.normalise_token(token, pointer="/data/id")
    parsed = parse_resource(request_body(), TYPE, APPLE_DEVICE_TOKENS.schema_instance(),
                            url_id=token, normalise_id=tokens.normalise_token, id_required=True)
    device = tokens.register_token(principal, token, parsed.attributes)
    return resource_response(TYPE, query, device)


def _log_out_device(raw_token):
    try:
        token = tokens.normalise_token(raw_token)
    except InvalidAttribute:  # a malformed token names no device; 401 all the same
        return
    tokens.detach_token(token)


@blueprint.get("/apple_device_tokens")
def list_tokens():
    principal = require_principal()
    query = query_for(TYPE, APPLE_DEVICE_TOKENS.collection)
    page = tokens.list_tokens(principal, query, include_options(Device, query.include))
    return collection_response(TYPE, query, page)


@blueprint.get("/apple_device_tokens/<token>")
def get_token(token):
    principal = require_principal()
    query = query_for(TYPE, Capabilities())
    device = tokens.get_token(principal, tokens.normalise_token(token))
    return resource_response(TYPE, query, device)


@blueprint.delete("/apple_device_tokens/<token>")
def delete_token(token):
    tokens.delete_token(require_principal(), tokens.normalise_token(token))
    return no_content()
