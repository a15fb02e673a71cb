from app.api import jsonapi_blueprint
from app.api.contract import ANYONE, SINGLE, route
from app.api.types import CONFIGS
from app.errors import Forbidden
from app.jsonapi.flask import public_revalidated
from app.resources.configs import config_for

blueprint = jsonapi_blueprint("configs", __name__)
CONFIG = "/configs/<bundle_version>"


@route(blueprint, "GET", CONFIG, "The app configuration for a bundle version", CONFIGS,
       credentials=ANYONE, query=SINGLE)
def get_config(call, bundle_version):
    """Public: the app asks before anyone has logged in."""
    return public_revalidated(call.respond(config_for(bundle_version)))


@route(blueprint, "PATCH", CONFIG, "Refused: configuration comes from the service's settings",
       CONFIGS, credentials=ANYONE, responses={},
       errors={403: "Always: configs are read-only."})
def update_config(call, bundle_version):
    """Configuration comes from the service's settings. JSON:API answers an unsupported
    update with 403, not 405."""
    raise Forbidden("App configuration is set by the service, not by clients.",
                    code="READ_ONLY_RESOURCE")
