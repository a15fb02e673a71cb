"""The API described: /openapi.json is a valid OpenAPI 3.1 document naming every route the
service answers, and /docs shows its operations to a person in a real browser."""

import os
import re
import shutil
import subprocess

import pytest
from openapi_spec_validator import validate
from werkzeug.exceptions import HTTPException

from app.api import contract
from app.openapi.operations import PATH_PARAMETER

IMPLICIT_METHODS = {"HEAD", "OPTIONS"}  # every rule answers them (app.Pushreg)
BROWSER_TIMEOUT = 120


@pytest.fixture(scope="module")
def document(app):
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_the_document_may_be_cached_and_revalidated(app):
    client = app.test_client()
    first = client.get("/openapi.json")
    assert first.headers["Cache-Control"] == "public, no-cache"
    again = client.get("/openapi.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def _rule_reached(adapter, path, method):
    """The URL rule a request for the documented ``path`` reaches (ids filled in)."""
    concrete = PATH_PARAMETER.sub("x1", path)
    try:
        rule, _ = adapter.match(concrete, method, return_rule=True)
    except HTTPException as exc:
        pytest.fail(f"{method} {path} is documented but the service has no route for it "
                    f"({exc.code})", pytrace=False)
    return rule


def undocumented_routes(app, document):
    """Every rule and method of ``app``'s URL map that no documented operation reaches."""
    adapter = app.url_map.bind("localhost")
    reached = {(_rule_reached(adapter, path, method.upper()).rule, method.upper())
               for path, item in document["paths"].items() for method in item}
    return [f"{method} {rule.rule} (endpoint {rule.endpoint})"
            for rule in app.url_map.iter_rules()
            for method in sorted(rule.methods - IMPLICIT_METHODS)
            if (rule.rule, method) not in reached]


def test_every_route_of_the_service_is_documented(app, document):
    missing = undocumented_routes(app, document)
    assert not missing, ("routes missing from the OpenAPI document: declare each JSON:API "
                         "route with @route (app/api/contract.py), describe any other in "
                         "app/openapi/routes.py:\n  " + "\n  ".join(missing))


def test_each_declared_route_asks_for_the_credentials_it_documents(app, document):
    """The contract a view declares is the one it keeps: an operation documented with
    credentials answers 401 to a caller without one; a public one lets them in."""
    client = app.test_client()
    for declared in contract.routes():
        operation = document["paths"][declared.path][declared.method.lower()]
        response = client.open(PATH_PARAMETER.sub("x1", declared.path),
                               method=declared.method)
        assert (response.status_code == 401) == bool(operation["security"]), (
            declared.method, declared.path, response.status_code)


def test_every_operation_names_its_credentials_and_error_shape(document):
    schemes = set(document["components"]["securitySchemes"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for requirement in operation["security"]:
                assert set(requirement) <= schemes, (method, path, requirement)
            error = operation["responses"]["default"]["content"]
            assert error, (method, path)


def test_the_surfaces_error_shapes_are_described(app, document):
    """An unknown path on each surface answers in the shape the document gives it."""
    client = app.test_client()
    shapes = document["components"]["schemas"]
    for path, shape, member in (("/api/nowhere", "jsonapi.errors", "errors"),
                                ("/api/v1/auth_tokens/1/x", "seed001.error", "error"),
                                ("/api/v1/notifications/x", "seed002.envelope", "errors"),
                                ("/v1/devices/1/x", "seed003.error", "error")):
        body = client.get(path).get_json()
        assert member in shapes[shape]["required"] and member in body, (path, body)


def _chromium():
    path = shutil.which("chromium")
    if path:
        return path
    reason = "chromium is not on PATH (apt-get install chromium; `make chromium` does)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the /docs browser test is mandatory: {reason}",
                    pytrace=False)
    pytest.skip(reason)


@pytest.mark.slow
def test_docs_lists_every_operation_in_a_browser(live, document, tmp_path):
    """Swagger UI, served by the service itself (no CDN), rendered by headless Chromium
    once its scripts have run."""
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", f"--user-data-dir={tmp_path}",
               # Swagger UI draws a long list of operations only as far as the window
               # reaches: a window tall enough for all of them
               "--window-size=1280,40000",
               "--virtual-time-budget=20000", "--dump-dom", f"{live.url}/docs"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OAS 3.1" in result.stdout  # Swagger UI read the document as OpenAPI 3.1
    assert "errors-wrapper" not in result.stdout  # its panel of problems with the document
    listed = set(re.findall(
        r'opblock-summary-method">([A-Z]+)<.*?data-path="([^"]+)"', result.stdout))
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
    assert documented <= listed, sorted(documented - listed)[:20]
