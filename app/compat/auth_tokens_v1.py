"""Seed 001: ``/api/v1/auth_tokens`` — plain JSON over the auth-token service.

Errors are ``{"error": <Name>, "message": …}`` with the seed's names (``NotAuthenticated``,
``NotFound``) and the same style for the rest; ``field`` names the offending member, and
``request_id`` is the request's (as in the ``X-Request-ID`` header).
"""

from flask import jsonify

from app.compat import compat_blueprint, json_object, json_response, occurrence_id
from app.extensions import db
from app.observability.request_ids import request_id
from app.resources import auth_tokens
from app.web.auth import USER, require
from schemas.compat.auth_tokens_v1 import AuthToken, CreateAuthToken

NAMES = {400: "InvalidRequest", 401: "NotAuthenticated", 403: "Forbidden", 404: "NotFound",
         405: "MethodNotAllowed", 409: "Conflict", 413: "RequestTooLarge",
         415: "UnsupportedMediaType", 422: "InvalidRequest", 429: "TooManyRequests",
         502: "UpstreamFailed", 503: "ServiceUnavailable"}


def render_error(error):
    body = {"error": NAMES.get(error.status, "InternalError"), "message": error.detail}
    if error.field is not None:
        body["field"] = error.field
    if occurrence_id(error):
        body["id"] = occurrence_id(error)
    body["request_id"] = request_id()
    return json_response(body, error.status, error.headers)


blueprint = compat_blueprint("auth_tokens_v1", __name__, "/api/v1/auth_tokens", render_error)
_create = CreateAuthToken()
_token = AuthToken()


@blueprint.post("/", strict_slashes=False)
def create():
    """The ID token is the proof of identity the seed's "requires authentication" asks."""
    token, secret = auth_tokens.issue(**json_object(_create))
    db.session.commit()
    return json_response({**_token.dump(token), "value": secret}, 201)


@blueprint.get("/", strict_slashes=False)
def list_tokens():
    return jsonify({"tokens": _token.dump(auth_tokens.list_own(require(USER)), many=True)})


@blueprint.get("/<token_id>")
def get_token(token_id):
    return jsonify({"token": _token.dump(auth_tokens.get_own(require(USER), token_id))})


@blueprint.delete("/<token_id>")
def delete_token(token_id):
    auth_tokens.revoke(require(USER), token_id)
    db.session.commit()
    return jsonify({})
