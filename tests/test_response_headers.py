"""Responses that carry a secret are never cached, and the URLs the service writes
(``Location``, links) come from PUBLIC_URL, not from the Host a client sends; behind a
trusted proxy (PROXY_FIX_X_PROTO) the scheme from X-Forwarded-Proto."""

import pytest

from app import create_app
from app.config import TestConfig as AppConfig  # not "Test*": pytest would collect it
from app.extensions import db
from tests.conftest import JsonApiClient
from tests.factories import bearer, create_session, new_token, session_patch, token_document

NEW_SESSION = {"data": {"type": "sessions", "attributes": {"is_cookie_based": False}}}
PUBLIC_URL = "https://push.example.com"
FORGED_HOST = {"Host": "evil.example"}


def _post_session(client, session_id):
    return client.post("/api/sessions", json=NEW_SESSION)


def _get_session(client, session_id):
    return client.get(f"/api/sessions/{session_id}", headers=bearer(session_id))


def _patch_session(client, session_id):
    return client.patch(f"/api/sessions/{session_id}", json=session_patch(session_id),
                        headers=bearer(session_id))


def _delete_session(client, session_id):
    return client.delete(f"/api/sessions/{session_id}", headers=bearer(session_id))


def _register_token(client, session_id):
    token = new_token()
    return client.patch(f"/api/apple_device_tokens/{token}", json=token_document(token),
                        headers=bearer(session_id))


def _unauthorized(client, session_id):
    return client.get("/api/apple_device_tokens")


def _unknown_path(client, session_id):
    return client.get(f"/api/nothing/{session_id}")


def _config(client, session_id):
    return client.get("/api/configs/3.1.23")


CACHING = {
    "POST /api/sessions": (_post_session, 201, "no-store"),
    "GET /api/sessions/<id>": (_get_session, 200, "no-store"),
    "PATCH /api/sessions/<id>": (_patch_session, 200, "no-store"),
    "DELETE /api/sessions/<id>": (_delete_session, 204, "no-store"),
    "PATCH /api/apple_device_tokens/<token>": (_register_token, 200, "no-store"),
    "a 401": (_unauthorized, 401, "no-store"),
    "a 404 naming a session id": (_unknown_path, 404, "no-store"),
    # the same for everyone: may be kept, revalidated with its ETag
    "GET /api/configs/<version>": (_config, 200, "public, no-cache"),
}


@pytest.mark.parametrize("request_, status, cache_control", CACHING.values(), ids=CACHING)
def test_responses_with_secrets_are_never_stored(client, request_, status, cache_control):
    response = request_(client, create_session(client))
    assert response.status_code == status
    assert response.headers["Cache-Control"] == cache_control


def _links(document):
    """Every URL in a document's links, at any depth."""
    if isinstance(document, dict):
        for name, value in document.items():
            if name in ("links", "self", "related") and isinstance(value, str):
                yield value
            else:
                yield from _links(value)
    elif isinstance(document, list):
        for item in document:
            yield from _links(item)


@pytest.mark.parametrize("public_url, expected_base", [
    (PUBLIC_URL, PUBLIC_URL),
    (f"{PUBLIC_URL}/push", f"{PUBLIC_URL}/push"),  # mounted under a path by the proxy
    (None, "http://evil.example"),  # development: the request's own Host
])
def test_urls_are_built_from_the_public_url(client, app, monkeypatch, public_url,
                                            expected_base):
    monkeypatch.setitem(app.config, "PUBLIC_URL", public_url)

    response = client.post("/api/sessions", json=NEW_SESSION, headers=FORGED_HOST)

    assert response.status_code == 201
    session_id = response.get_json()["data"]["id"]
    assert response.headers["Location"] == f"{expected_base}/api/sessions/{session_id}"
    urls = list(_links(response.get_json()))
    assert urls and all(url.startswith(f"{expected_base}/api/") for url in urls), urls
    listed = client.get("/api/apple_device_tokens?page[size]=1", headers={
        **bearer(session_id), **FORGED_HOST}).get_json()
    assert listed["links"]["first"] == \
        f"{expected_base}/api/apple_device_tokens?page%5Bsize%5D=1"


def _app_behind_proxy(database_url, x_proto):
    config = AppConfig(database_url)
    config.PROXY_FIX_X_PROTO = x_proto
    proxied = create_app(config)
    proxied.test_client_class = JsonApiClient
    return proxied


@pytest.mark.committed  # a second app, with its own connections
@pytest.mark.usefixtures("app")  # which empties the tables after the test
@pytest.mark.parametrize("x_proto, scheme", [(0, "http"), (1, "https")])
def test_forwarded_proto_is_honoured_only_from_a_trusted_proxy(database_url, x_proto,
                                                                scheme):
    proxied = _app_behind_proxy(database_url, x_proto)
    try:
        response = proxied.test_client().post("/api/sessions", json=NEW_SESSION,
                                              headers={"X-Forwarded-Proto": "https"})
        assert response.status_code == 201
        assert response.headers["Location"].startswith(f"{scheme}://localhost/api/sessions/")
    finally:
        with proxied.app_context():
            db.session.remove()
            db.engine.dispose()


API_POLICY = "default-src 'none'; frame-ancestors 'none'"
EVERY_SURFACE = {
    "a JSON:API document": ("GET", "/api/configs/3.1.23", 200),
    "a JSON:API error": ("GET", "/api/apple_device_tokens", 401),
    "an unknown path": ("GET", "/nowhere", 404),
    "a wrong method": ("DELETE", "/api/configs/3.1.23", 405),
    "a bad body": ("POST", "/api/sessions", 400),
    "a seed API's error": ("GET", "/v1/devices/1/x", 404),
    "the OpenAPI document": ("GET", "/openapi.json", 200),
    "a Swagger UI file": ("GET", "/docs/swagger-ui.css", 200),
    "OPTIONS": ("OPTIONS", "/api/sessions", 204),
}


@pytest.mark.parametrize("method, path, status", EVERY_SURFACE.values(), ids=EVERY_SURFACE)
def test_every_response_forbids_framing_sniffing_and_loading(client, method, path, status):
    response = client.open(path, method=method, data=b"{" if method == "POST" else None)
    assert response.status_code == status
    assert response.headers["Content-Security-Policy"] == API_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_docs_page_may_run_swagger_ui_and_nothing_else(client):
    response = client.get("/docs")
    policy = dict(directive.split(" ", 1) for directive in
                  response.headers["Content-Security-Policy"].split("; "))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["script-src"].startswith("'self' 'sha256-")  # its one inline script
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
