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


def register_api(app):
    from app.api import (
        apple_device_tokens,
        auth_tokens,
        configs,
        devices,
        notifications,
        relationships,
        sessions,
        topics,
        users,
        well_known,
    )

    for module in (sessions, users, apple_device_tokens, devices, auth_tokens, configs,
                   well_known, notifications, topics, relationships):
        app.register_blueprint(module.blueprint)
