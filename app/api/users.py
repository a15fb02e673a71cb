from app.api import jsonapi_blueprint
from app.api.contract import COLLECTION, MANY, SINGLE, route
from app.api.types import USERS
from app.extensions import db
from app.resources import users

blueprint = jsonapi_blueprint("users", __name__)
USER = "/users/<user_id>"


@route(blueprint, "GET", "/users", "Users", USERS, query=COLLECTION, responses={200: MANY})
def list_users(call):
    return call.respond_page(users.list_users(call.query.listing))


@route(blueprint, "GET", USER, "A user", USERS, query=SINGLE)
def get_user(call, user_id):
    return call.respond(users.get_user(user_id, call.query.include))


@route(blueprint, "PATCH", USER, "Change one's own profile", USERS, query=SINGLE, body=USERS,
       id_required=True)
def update_user(call, user_id):
    parsed = call.changes(user_id, lambda: users.get_user(user_id))
    user = users.update_user(call.principal, user_id, parsed.attributes)
    db.session.commit()
    return call.respond(user)
