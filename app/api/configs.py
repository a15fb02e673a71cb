from app.api import jsonapi_blueprint
from app.api.types import CONFIGS
from app.errors import Forbidden
from app.jsonapi.flask import public_revalidated, query_for, resource_response
from app.jsonapi.query import Capabilities
from app.resources.configs import config_for

blueprint = jsonapi_blueprint("configs", __name__)


@blueprint.get("/configs/<bundle_version>")
def get_config(bundle_version):
    """Public: the app asks before anyone has logged in."""
    query = query_for(CONFIGS.type, Capabilities())
    return public_revalidated(
        resource_response(CONFIGS.type, query, config_for(bundle_version), None))


@blueprint.patch("/configs/<bundle_version>")
def update_config(bundle_version):
    """Configuration comes from the service's settings. JSON:API answers an unsupported
    update with 403, not 405."""
    raise Forbidden("App configuration is set by the service, not by clients.",
                    code="READ_ONLY_RESOURCE")
