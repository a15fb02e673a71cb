"""Auth tokens (seed 001) as JSON:API, and access tokens: the credentials users ask for."""

from types import SimpleNamespace

from flask import current_app, request

from app.api import jsonapi_blueprint
from app.api.types import ACCESS_TOKENS, AUTH_TOKENS
from app.extensions import db
from app.jsonapi.document import parse_new_resource
from app.jsonapi.flask import no_content, query_for, request_body, resource_response
from app.jsonapi.query import Capabilities
from app.resources import auth_tokens
from app.web import access_tokens
from app.web.auth import ACCESS_TOKEN_COOKIE, USER, principal_of, require, signing_keys

blueprint = jsonapi_blueprint("auth_tokens", __name__)


def _query():
    return query_for(AUTH_TOKENS.type, Capabilities())


@blueprint.post("/auth_tokens")
def create_auth_token():
    """No credential needed: the identity provider's ID token is the proof."""
    query = _query()
    parsed = parse_new_resource(request_body(), AUTH_TOKENS)
    token, secret = auth_tokens.issue(**parsed.attributes)
    db.session.commit()
    holder = principal_of(token.id, token.kind, token.user_id, secret)
    return resource_response(AUTH_TOKENS.type, query, token, holder, 201,
                             revealed={"value": secret})


@blueprint.get("/auth_tokens")
def list_auth_tokens():
    principal = require(USER)
    query = _query()
    return resource_response(AUTH_TOKENS.type, query, auth_tokens.list_own(principal),
                             principal)


@blueprint.get("/auth_tokens/<token_id>")
def get_auth_token(token_id):
    principal = require(USER)
    return resource_response(AUTH_TOKENS.type, _query(),
                             auth_tokens.get_own(principal, token_id), principal)


@blueprint.delete("/auth_tokens/<token_id>")
def delete_auth_token(token_id):
    auth_tokens.revoke(require(USER), token_id)
    db.session.commit()
    return no_content()


@blueprint.post("/access_tokens")
def create_access_token():
    """A short-lived JWT for the session or auth token presented (not for an access
    token); also set as the ``access_token`` cookie, which the seed 002 and 003 clients
    send."""
    principal = require(USER)
    query = query_for(ACCESS_TOKENS.type, Capabilities())
    parse_new_resource(request_body(), ACCESS_TOKENS)
    ttl = current_app.config["ACCESS_TOKEN_TTL"]
    minted = access_tokens.issue(signing_keys(), principal, ttl)
    issued = SimpleNamespace(id=minted.jti, token_type="Bearer", expires_at=minted.expires_at)
    response = resource_response(ACCESS_TOKENS.type, query, issued, principal, 201,
                                 revealed={"value": minted.value}, located=False)
    response.set_cookie(ACCESS_TOKEN_COOKIE, minted.value, max_age=ttl, httponly=True,
                        secure=request.is_secure, samesite="Lax", path="/")
    return response
