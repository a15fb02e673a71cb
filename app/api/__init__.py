"""One blueprint per JSON:API resource type, all under /api; each route's contract is
declared with its view (``app/api/contract.py``)."""

import importlib

from flask import Blueprint

from app.errors import ServiceError
from app.jsonapi.flask import conditional_get, negotiate
from app.web import surfaces

VIEW_MODULES = ("sessions", "users", "apple_device_tokens", "devices", "auth_tokens",
                "access_tokens", "configs", "well_known", "notifications", "deliveries",
                "live_activities", "live_activity_channels", "topics", "relationships")


def jsonapi_blueprint(name, import_name):
    blueprint = Blueprint(name, import_name, url_prefix="/api")
    blueprint.before_request(negotiate)
    blueprint.after_request(conditional_get)
    blueprint.register_error_handler(ServiceError, surfaces.render)
    return blueprint


def view_modules():
    return [importlib.import_module(f"{__name__}.{name}") for name in VIEW_MODULES]


def register_api(app):
    for module in view_modules():
        app.register_blueprint(module.blueprint)
