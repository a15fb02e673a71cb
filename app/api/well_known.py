"""``/.well-known/jwks.json``: the public keys that verify access tokens, for services that
check them without calling back."""

from flask import Blueprint, jsonify

from app.errors import NotFound
from app.web.auth import signing_keys

blueprint = Blueprint("well_known", __name__)


@blueprint.get("/.well-known/jwks.json")
def jwks():
    keys = signing_keys().jwks()
    if not keys["keys"]:
        raise NotFound("Access tokens are signed with a shared secret: there are no public "
                       "keys to publish (set ACCESS_TOKEN_SIGNING_KEYS).")
    response = jsonify(keys)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
