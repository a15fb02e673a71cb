from app.api import jsonapi_blueprint
from app.api.types import USERS
from app.extensions import db
from app.jsonapi.document import parse_resource, refuse_changes_to_read_only
from app.jsonapi.flask import (
    collection_response,
    query_for,
    renderer,
    request_body,
    resource_response,
)
from app.jsonapi.query import Capabilities
from app.resources import users
from app.web.auth import USER, require

blueprint = jsonapi_blueprint("users", __name__)
TYPE = USERS.type


@blueprint.get("/users")
def list_users():
    principal = require(USER)
    query = query_for(TYPE, USERS.collection)
    return collection_response(TYPE, query, users.list_users(query.listing), principal)


@blueprint.get("/users/<user_id>")
def get_user(user_id):
    principal = require(USER)
    query = query_for(TYPE, Capabilities())
    return resource_response(TYPE, query, users.get_user(user_id, query.include), principal)


@blueprint.patch("/users/<user_id>")
def update_user(user_id):
    principal = require(USER)
    query = query_for(TYPE, Capabilities())
    parsed = parse_resource(request_body(), USERS, url_id=user_id, id_required=True)
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, renderer(query, principal), USERS,
                                    users.get_user(user_id))
    user = users.update_user(principal, user_id, parsed.attributes)
    db.session.commit()
    return resource_response(TYPE, query, user, principal)
