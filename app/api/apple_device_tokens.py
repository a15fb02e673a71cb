"""Poparazzi's APNs device tokens: the device registry's ``ios_push`` channel, with the
token itself as the resource id."""

from functools import partial

from flask import request

from app.api import jsonapi_blueprint
from app.api.types import APNS, APPLE_DEVICE_TOKENS, TOKEN_FILTERS
from app.errors import NotAuthorized, NotFound, ServiceError, Where
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
from app.resources import devices, sessions
from app.web.auth import USER, current_principal, require, resolved, unresolved_bearer_secret

blueprint = jsonapi_blueprint("apple_device_tokens", __name__)
TYPE = APPLE_DEVICE_TOKENS.type
body_token = partial(devices.normalise_token, APNS, field="id", where=Where.ID)


@blueprint.patch("/apple_device_tokens/<token>")
def register_token(token):
    """Upsert (Poparazzi creates tokens with PATCH). Without a session it is a logout."""
    registered = _register_by_secret(token)
    if registered is not None:
        return registered
    if current_principal() is None:
        sessions.log_out_device(APNS, token, request.remote_addr)
        db.session.commit()
        raise NotAuthorized()
    # the document's id must be this token: a malformed one is reported there
    return _register(require(USER), body_token(token))


@blueprint.post("/apple_device_tokens")
def create_token():
    """JSON:API clients create with POST and a client-chosen id: the same upsert."""
    registered = _register_by_secret(None)
    if registered is not None:
        return registered
    return _register(require(USER), None)


def _register(principal, url_token):
    query, parsed = _parsed(url_token)
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, renderer(query, principal), APPLE_DEVICE_TOKENS,
                                    _current(principal, parsed.id))
    device, created = devices.register(principal, APNS, parsed.id, parsed.attributes)
    db.session.commit()
    return _registered(query, principal, device, created, url_token)


def _register_by_secret(raw_url_token):
    """The usual registration in one statement, where it can be: a caller presenting a
    session id (or an auth token) as a bearer secret, on PostgreSQL, whom the upsert looks up
    itself. None when ``_register``'s path must answer instead, and say what is wrong in
    its order: who is calling first, then the document."""
    secret = unresolved_bearer_secret()
    if secret is None or not devices.can_authenticate_and_register():
        return None
    try:
        url_token = None if raw_url_token is None else body_token(raw_url_token)
        query, parsed = _parsed(url_token)
    except ServiceError:
        return None
    if parsed.echoes_members:
        return None
    credential, device, created = devices.authenticate_and_register(
        secret, USER, APNS, parsed.id, parsed.attributes)
    principal = resolved(secret, credential)
    if device is None:  # no user's credential, or a token to move
        return None
    db.session.commit()
    return _registered(query, principal, device, created, url_token)


def _parsed(url_token):
    query = query_for(TYPE, Capabilities())
    return query, parse_resource(request_body(), APPLE_DEVICE_TOKENS, url_id=url_token,
                                 normalise_id=body_token, id_required=True)


def _registered(query, principal, device, created, url_token):
    metrics.registered(metrics.APPLE_DEVICE_TOKENS)
    status = 201 if created and url_token is None else 200
    return resource_response(TYPE, query, device, principal, status)


def _current(principal, token):
    try:
        return devices.get_owned(principal, APNS, token)
    except NotFound:
        return None


@blueprint.get("/apple_device_tokens")
def list_tokens():
    principal = require(USER)
    query = query_for(TYPE, APPLE_DEVICE_TOKENS.collection)
    page = devices.list_owned(principal, APNS, query.listing, TOKEN_FILTERS)
    return collection_response(TYPE, query, page, principal)


@blueprint.get("/apple_device_tokens/<token>")
def get_token(token):
    principal = require(USER)
    query = query_for(TYPE, Capabilities())
    device = devices.get_owned(principal, APNS, token, load=query.include)
    return resource_response(TYPE, query, device, principal)


@blueprint.delete("/apple_device_tokens/<token>")
def delete_token(token):
    devices.delete_owned(require(USER), APNS, token)
    db.session.commit()
    return no_content()
