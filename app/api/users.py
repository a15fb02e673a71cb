from app.api import jsonapi_blueprint
from app.auth import require_principal
from app.jsonapi.document import parse_resource
from app.jsonapi.flask import collection_response, query_for, request_body, resource_response
from app.jsonapi.loading import include_options
from app.jsonapi.query import Capabilities
from app.models import User
from app.resources import users
from app.resources.types import USERS

blueprint = jsonapi_blueprint("users", __name__)


@blueprint.get("/users")
def list_users():
    require_principal()
    query = query_for("users", USERS.collection)
    page = users.list_users(query, include_options(User, query.include))
    return collection_response("users", query, page)


@blueprint.get("/users/<user_id>")
def get_user(user_id):
    require_principal()
    query = query_for("users", Capabilities())
    return resource_response("users", query, users.get_user(user_id))


@blueprint.patch("/users/<user_id>")
def update_user(user_id):
    principal = require_principal()
    query = query_for("users", Capabilities())
    parsed = parse_resource(request_body(), "users", USERS.schema_instance(), url_id=user_id,
                            id_required=True)
    user = users.update_user(principal, user_id, parsed.attributes)
    return resource_response("users", query, user)
