"""HTTP corners that must stay JSON:API too: OPTIONS, doubled slashes in a path, and
request bodies sent chunked (no Content-Length), which gunicorn passes through."""

import json

import pytest
import requests

from tests.jsonapi_schema import JSONAPI
from tests.live_server import PoparazziClient, contract


def _route_urls(app):
    """A URL of every route, with each argument a value its converter takes."""
    urls = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        values = {name: min(getattr(rule._converters[name], "items", None) or ["x"])
                  for name in rule.arguments}
        yield urls.build(rule.endpoint, values), rule.methods


def test_options_is_204_with_allow_on_every_route(client, app):
    urls = list(_route_urls(app))
    assert urls
    for path, methods in urls:
        response = client.options(path)
        assert response.status_code == 204, path
        assert "Content-Type" not in response.headers, path
        assert response.get_data() == b""
        allowed = {method.strip() for method in response.headers["Allow"].split(",")}
        assert methods <= allowed, path


@pytest.mark.parametrize("path", ["//api/configs/3.1.23", "/api//configs/3.1.23",
                                  "/api/configs//3.1.23", "/api/sessions//"])
def test_doubled_slashes_are_a_jsonapi_404_not_a_redirect(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == JSONAPI
    assert "Location" not in response.headers
    assert response.get_json()["errors"][0]["code"] == "NOT_FOUND"


# -- against gunicorn --------------------------------------------------------------------

def _chunked(body):
    """A generator: requests sends it with Transfer-Encoding: chunked."""
    yield from (body[start:start + 4096] for start in range(0, len(body), 4096))


def _framed(body, framing):
    return _chunked(body) if framing == "chunked" else body


@pytest.fixture
def poparazzi(live):
    client = PoparazziClient(live.url)
    yield client
    client.close()


def _send(poparazzi, method, path, body, framing, content_type=JSONAPI):
    response = poparazzi.http.request(
        method, poparazzi.base_url + path, data=_framed(body, framing), timeout=30,
        headers=poparazzi.headers(extra={"Content-Type": content_type}))
    sent = response.request.headers
    assert ("Transfer-Encoding" in sent) == (framing == "chunked")
    assert response.headers["Content-Type"].startswith(JSONAPI), response.text
    return response


def _code(response):
    return response.json()["errors"][0]["code"]


def _session_document(size=None):
    body = json.dumps(contract("sessions.post.request.json")).encode()
    return body if size is None else body + b" " * (size - len(body))


MAX_CONTENT_LENGTH = 64 * 1024  # the default, which the live server runs with


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_is_413_however_it_is_framed(poparazzi, framing):
    body = _session_document(MAX_CONTENT_LENGTH + 1)
    response = _send(poparazzi, "POST", "/api/sessions", body, framing)
    assert response.status_code == 413, response.text
    assert _code(response) == "PAYLOAD_TOO_LARGE"


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_at_the_limit_is_accepted_however_it_is_framed(poparazzi, framing):
    body = _session_document(MAX_CONTENT_LENGTH)
    response = _send(poparazzi, "POST", "/api/sessions", body, framing)
    assert response.status_code == 201, response.text


@pytest.mark.slow
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("method, path", [
    ("POST", "/api/sessions"),
    ("GET", "/api/configs/3.1.23"),
    ("DELETE", "/api/sessions/{session_id}"),
])
def test_a_body_of_another_media_type_is_415_however_it_is_framed(poparazzi, framing,
                                                                   method, path):
    poparazzi.create_session()
    path = path.format(session_id=poparazzi.session_id)
    response = _send(poparazzi, method, path, _session_document(), framing,
                     content_type="text/plain")
    assert response.status_code == 415, response.text
    assert _code(response) == "UNSUPPORTED_MEDIA_TYPE"
    # the refused DELETE ended nothing
    assert poparazzi.request("GET", f"/api/sessions/{poparazzi.session_id}").status_code == 200


def test_options_in_process_matches_the_live_server(poparazzi, client):
    live = poparazzi.http.options(poparazzi.base_url + "/api/configs/3.1.23", timeout=30,
                                  headers=poparazzi.headers())
    local = client.options("/api/configs/3.1.23")
    assert (live.status_code, live.headers.get("Content-Type"), live.content) == (
        local.status_code, None, b"")
    assert live.headers["Allow"] == local.headers["Allow"]


def test_the_live_server_does_not_redirect_doubled_slashes(poparazzi):
    response = requests.get(poparazzi.base_url + "/api//configs/3.1.23", timeout=30,
                            allow_redirects=False, headers=poparazzi.headers())
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith(JSONAPI)
