"""The OpenAPI 3.1 document: the operations of ``routes.py``, the resource schemas of the
JSON:API registry, every surface's error shape and every credential kind."""

from app.jsonapi.registry import registry
from app.openapi import routes, schemas
from app.openapi.operations import SEED_001, SEED_002, SEED_003

DESCRIPTION = """\
A push-device registry and APNs dispatcher. One service, four wire formats over the same
devices and credentials:

* **JSON:API** (`application/vnd.api+json`) under `/api`: Poparazzi's format, errors as
  JSON:API error documents;
* **Seed 001** `/api/v1/auth_tokens`: plain JSON, errors `{"error", "message", "field"}`;
* **Seed 002** `/api/v1/notifications/device-token`: every answer in the
  `{"isSuccess", "statusCode", "data", "errors", "timestamp"}` envelope;
* **Seed 003** `/v1/devices`: plain JSON, errors `{"error": {"code", "message", …}}`.

People present a session id, an auth token or an access token (JWT); backend services an
API key. Every status an operation does not list is an error in its surface's shape."""

SECURITY_SCHEMES = {
    "session": {"type": "http", "scheme": "bearer",
                "description": "A session id (POST /api/sessions), anonymous or logged in."},
    "authToken": {"type": "http", "scheme": "bearer",
                  "description": "An auth token (POST /api/auth_tokens)."},
    "authTokenHeader": {"type": "apiKey", "in": "header", "name": "Authentication",
                        "description": "An auth token in the header seed 001 names."},
    "accessToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An access token (POST /api/access_tokens)."},
    "accessTokenCookie": {"type": "apiKey", "in": "cookie", "name": "access_token",
                          "description": "The access token as the cookie it is set as."},
    "apiKey": {"type": "http", "scheme": "bearer",
               "description": "An API key (`flask keys create`); notifications need the "
                              "notifications:send scope, broadcast channels "
                              "live_activities:manage."},
    "metricsToken": {"type": "http", "scheme": "bearer",
                     "description": "METRICS_TOKEN, unless the caller's address is within "
                                    "METRICS_ALLOW."},
}


def component_schemas():
    found = {
        "jsonapi.errors": schemas.JSONAPI_ERRORS,
        "linkage.document": schemas.linkage_document(),
        SEED_001.error_schema: schemas.SEED_001_ERROR,
        SEED_002.error_schema: schemas.SEED_002_ENVELOPE,
        SEED_003.error_schema: schemas.SEED_003_ERROR,
    }
    for type_name, resource_type in registry.items():
        found[f"{type_name}.resource"] = schemas.resource_object(resource_type)
        found[f"{type_name}.resource.document"] = schemas.resource_document(type_name)
        found[f"{type_name}.collection.document"] = schemas.collection_document(type_name)
    return found


def paths(operations):
    found: dict[str, dict] = {}
    for operation in operations:
        found.setdefault(operation.path, {})[operation.method.lower()] = operation.shown()
    return found


def build(version):
    operations = routes.operations()
    tags = sorted({operation.tag or operation.surface.tag for operation in operations})
    return {
        "openapi": schemas.OPENAPI_VERSION,
        "info": {"title": "pushreg", "version": version, "description": DESCRIPTION},
        "tags": [{"name": tag} for tag in tags],
        "paths": paths(operations),
        "components": {"schemas": component_schemas(), "securitySchemes": SECURITY_SCHEMES},
    }
