"""One blueprint per JSON:API resource type, all under /api."""

from flask import Blueprint

from app.errors import ServiceError
from app.jsonapi.flask import conditional_get, negotiate
from app.web import surfaces


def jsonapi_blueprint(name, import_name):
    blueprint = Blueprint(name, import_name, url_prefix="/api")
    blueprint.before_request(negotiate)
    blueprint.after_request(conditional_get)
    blueprint.register_error_handler(ServiceError, surfaces.render)
    return blueprint
