"""Auth tokens (seed 001) as JSON:API: the credentials users trade an ID token for."""

from app.api import jsonapi_blueprint
from app.api.contract import ANYONE, MANY, REVEALED, SINGLE, route
from app.api.types import AUTH_TOKENS
from app.extensions import db
from app.jsonapi.flask import no_content
from app.resources import auth_tokens
from app.web.auth import principal_of

blueprint = jsonapi_blueprint("auth_tokens", __name__)
AUTH_TOKEN = "/auth_tokens/<token_id>"


@route(blueprint, "POST", "/auth_tokens", "Trade an identity provider's ID token for an "
       "auth token", AUTH_TOKENS, credentials=ANYONE, query=SINGLE, body=AUTH_TOKENS,
       responses={201: REVEALED})
def create_auth_token(call):
    """No credential needed: the identity provider's ID token is the proof."""
    parsed = call.new_resource()
    token, secret = auth_tokens.issue(**parsed.attributes)
    db.session.commit()
    holder = principal_of(token.id, token.kind, token.user_id, secret)
    return call.respond(token, 201, principal=holder, revealed={"value": secret})


@route(blueprint, "GET", "/auth_tokens", "The caller's auth tokens", AUTH_TOKENS,
       query=SINGLE, responses={200: MANY})
def list_auth_tokens(call):
    return call.respond(auth_tokens.list_own(call.principal))


@route(blueprint, "GET", AUTH_TOKEN, "One of the caller's auth tokens", AUTH_TOKENS,
       query=SINGLE)
def get_auth_token(call, token_id):
    return call.respond(auth_tokens.get_own(call.principal, token_id))


@route(blueprint, "DELETE", AUTH_TOKEN, "Revoke an auth token", AUTH_TOKENS,
       responses={204: None})
def delete_auth_token(call, token_id):
    auth_tokens.revoke(call.principal, token_id)
    db.session.commit()
    return no_content()
