"""Access tokens: short-lived JWTs minted for the credential a person presents."""

from types import SimpleNamespace

from flask import current_app, request

from app.api import jsonapi_blueprint
from app.api.contract import REVEALED, SINGLE, route
from app.api.types import ACCESS_TOKENS
from app.web import access_tokens
from app.web.auth import ACCESS_TOKEN_COOKIE, signing_keys

blueprint = jsonapi_blueprint("access_tokens", __name__)


@route(blueprint, "POST", "/access_tokens", "A short-lived access token (JWT), also set as "
       "the access_token cookie", ACCESS_TOKENS, query=SINGLE, body=ACCESS_TOKENS,
       responses={201: REVEALED},
       errors={403: "The credential presented is an access token (only the session or auth "
                    "token it stands for mints one), or an anonymous session."})
def create_access_token(call):
    """A short-lived JWT for the session or auth token presented (not for an access
    token); also set as the ``access_token``
    cookie, which the seed 002 and 003 clients send."""
    call.new_resource()
    principal = call.principal
    ttl = current_app.config["ACCESS_TOKEN_TTL"]
    minted = access_tokens.issue(signing_keys(), principal, ttl)
    issued = SimpleNamespace(id=minted.jti, token_type="Bearer", expires_at=minted.expires_at)
    response = call.respond(issued, 201, revealed={"value": minted.value}, located=False)
    response.set_cookie(ACCESS_TOKEN_COOKIE, minted.value, max_age=ttl, httponly=True,
                        secure=request.is_secure, samesite="Lax", path="/")
    return response
