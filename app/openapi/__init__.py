"""The API described: ``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs`` (Swagger UI,
served from the flask-swagger-ui package's files, nothing from a CDN)."""

import base64
import hashlib
from importlib.resources import files

from flask import Blueprint, Response, current_app, jsonify, send_from_directory

from app.errors import NotFound
from app.jsonapi.flask import conditional_get, public_revalidated

SWAGGER_UI = files("flask_swagger_ui") / "dist"
ASSETS = frozenset({"swagger-ui.css", "index.css", "swagger-ui-bundle.js",
                    "swagger-ui-standalone-preset.js", "favicon-32x32.png",
                    "favicon-16x16.png"})
DOCS_SCRIPT = """
    window.onload = function () {
      window.ui = SwaggerUIBundle({
        url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout", validatorUrl: null
      });
    };
  """
DOCS_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>pushreg API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>{DOCS_SCRIPT}</script>
</body>
</html>
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(DOCS_SCRIPT.encode()).digest()).decode()
# Swagger UI's own files and the one inline script above (by its hash); it styles elements
# inline and draws its icons as data: images; "Try it out" calls this service.
DOCS_CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    f"script-src 'self' 'sha256-{_SCRIPT_HASH}'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
))

blueprint = Blueprint("openapi", __name__)


def openapi_document():
    """The document, built once per app (it depends only on the code)."""
    document = current_app.extensions.get("openapi_document")
    if document is None:
        from app.openapi.document import build
        from app.version import __version__

        document = build(__version__)
        current_app.extensions["openapi_document"] = document
    return document


@blueprint.get("/openapi.json")
def openapi_json():
    return conditional_get(public_revalidated(jsonify(openapi_document())))


@blueprint.get("/docs")
def docs():
    page = Response(DOCS_PAGE, mimetype="text/html")
    page.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return conditional_get(public_revalidated(page))


@blueprint.get("/docs/<path:asset>")
def docs_asset(asset):
    if asset not in ASSETS:
        raise NotFound(f"There is nothing at /docs/{asset}.")
    return send_from_directory(str(SWAGGER_UI), asset, max_age=3600)
