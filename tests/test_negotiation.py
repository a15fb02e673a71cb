"""Content negotiation as JSON:API 1.1 has it ("Content Negotiation", server
responsibilities), with Poparazzi's own headers among the cases.

- Accept: instances of application/vnd.api+json modified by a parameter other than
  ``ext``/``profile`` are ignored; if every instance is, 406. If every instance asks for
  an extension this server does not support, 406. Quality values (``q``) are weights, not
  media type parameters. A client that names no JSON:API instance (``*/*``,
  ``application/json``) is served JSON:API.
- Content-Type of a body: the JSON:API media type, parameters only ``ext``/``profile``,
  extensions only supported ones; else 415. Unknown profiles are ignored.
- Every response: ``Content-Type: application/vnd.api+json`` (no profile or extension is
  applied, so no parameters), ``Vary: Accept``, and ``"jsonapi": {"version": "1.1"}``.
"""

import pytest

from tests.factories import bearer, create_session
from tests.jsonapi_schema import JSONAPI

POPARAZZI_ACCEPT = f"{JSONAPI}, application/json"
ATOMIC = "https://jsonapi.org/ext/atomic"
UNKNOWN_PROFILE = "https://example.com/profiles/unknown"
CONFIG = "/api/configs/3.1.23"
NEW_SESSION = {"data": {"type": "sessions", "attributes": {"is_cookie_based": False}}}


def assert_jsonapi_response(response):
    assert response.headers["Content-Type"] == JSONAPI
    assert "Accept" in response.vary
    assert response.get_json()["jsonapi"] == {"version": "1.1"}


def assert_error(response, status, code, header):
    assert response.status_code == status, response.get_json()
    assert_jsonapi_response(response)
    (error,) = response.get_json()["errors"]
    assert error["status"] == str(status)
    assert error["code"] == code
    assert error["source"] == {"header": header}


@pytest.mark.parametrize(("accept", "status"), [
    pytest.param(POPARAZZI_ACCEPT, 200, id="poparazzi"),
    pytest.param(JSONAPI, 200, id="jsonapi"),
    pytest.param("*/*", 200, id="any"),
    pytest.param("application/*", 200, id="any-application"),
    pytest.param("application/json", 200, id="plain-json"),
    pytest.param(None, 200, id="no-accept"),
    pytest.param("Application/VND.API+JSON", 200, id="media-type-case-insensitive"),
    pytest.param(f"{JSONAPI}; charset=utf-8", 406, id="only-charset"),
    pytest.param(f"{JSONAPI}; version=1.1", 406, id="only-unknown-parameter"),
    pytest.param(f"{JSONAPI}; Charset=UTF-8", 406, id="parameter-name-case-insensitive"),
    pytest.param(f"{JSONAPI}; charset=utf-8, {JSONAPI}; version=1.1", 406,
                 id="every-instance-parameterised"),
    pytest.param(f"{JSONAPI}; charset=utf-8, */*", 406,
                 id="parameterised-instance-beside-any"),
    pytest.param(f"{JSONAPI}; charset=utf-8, {JSONAPI}", 200, id="mixed"),
    pytest.param(f"{JSONAPI}, {JSONAPI}; charset=utf-8", 200, id="mixed-other-order"),
    pytest.param(f'{JSONAPI}; profile="{UNKNOWN_PROFILE}"', 200, id="unknown-profile"),
    pytest.param(f'{JSONAPI}; profile="{UNKNOWN_PROFILE} https://example.com/p2"', 200,
                 id="unknown-profiles"),
    pytest.param(f'{JSONAPI}; ext="{ATOMIC}"', 406, id="unsupported-ext"),
    pytest.param(f'{JSONAPI}; ext="{ATOMIC}", {JSONAPI}; ext="https://example.com/x"', 406,
                 id="every-instance-unsupported-ext"),
    pytest.param(f'{JSONAPI}; ext="{ATOMIC}", {JSONAPI}', 200, id="unsupported-ext-and-plain"),
    pytest.param(f'{JSONAPI}; ext="{ATOMIC}", application/json', 406,
                 id="unsupported-ext-beside-plain-json"),
    pytest.param(f"{JSONAPI};q=0.9", 200, id="quality-value"),
    pytest.param(f"{JSONAPI}; q=0.8, application/json; q=0.5", 200, id="quality-values"),
    pytest.param(f'{JSONAPI}; profile="{UNKNOWN_PROFILE}"; q=0.5', 200,
                 id="profile-and-quality-value"),
    pytest.param(f"{JSONAPI}; charset=utf-8; q=0.5", 406, id="charset-and-quality-value"),
])
def test_accept(client, accept, status):
    response = client.get(CONFIG, headers={"Accept": accept})
    if status == 406:
        assert_error(response, 406, "NOT_ACCEPTABLE", "Accept")
    else:
        assert response.status_code == status, response.get_json()
        assert_jsonapi_response(response)
        assert response.get_json()["data"]["type"] == "configs"


@pytest.mark.parametrize(("content_type", "status"), [
    pytest.param(JSONAPI, 201, id="jsonapi"),
    pytest.param("Application/Vnd.Api+Json", 201, id="media-type-case-insensitive"),
    pytest.param(f'{JSONAPI}; profile="{UNKNOWN_PROFILE}"', 201, id="unknown-profile"),
    pytest.param(f'{JSONAPI}; ext="{ATOMIC}"', 415, id="unsupported-ext"),
    pytest.param(f'{JSONAPI}; ext="{ATOMIC}"; profile="{UNKNOWN_PROFILE}"', 415,
                 id="unsupported-ext-with-profile"),
    pytest.param(f"{JSONAPI}; charset=utf-8", 415, id="charset"),
    pytest.param(f'{JSONAPI}; profile="{UNKNOWN_PROFILE}"; charset=utf-8', 415,
                 id="profile-and-charset"),
    pytest.param("application/json", 415, id="plain-json"),
    pytest.param(None, 415, id="missing"),
])
def test_content_type(client, content_type, status):
    response = client.post("/api/sessions", json=NEW_SESSION,
                           headers={"Content-Type": content_type})
    if status == 415:
        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type")
    else:
        assert response.status_code == status, response.get_json()
        assert_jsonapi_response(response)


def test_poparazzi_headers_across_its_flow(client, app):
    """The client's own Accept and Content-Type (the test client's defaults) on each call."""
    response = client.post("/api/sessions", json=NEW_SESSION,
                           headers={"Accept": POPARAZZI_ACCEPT, "Content-Type": JSONAPI})
    assert response.status_code == 201
    assert_jsonapi_response(response)
    session_id = response.get_json()["data"]["id"]
    response = client.get(f"/api/sessions/{session_id}",
                          headers={"Accept": POPARAZZI_ACCEPT, **bearer(session_id)})
    assert response.status_code == 200
    assert_jsonapi_response(response)


def test_content_type_is_not_judged_without_a_body(client):
    response = client.get(CONFIG, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert_jsonapi_response(response)


def test_not_acceptable_comes_before_authorization(client):
    """Negotiation is the first thing a JSON:API request meets."""
    response = client.get("/api/sessions/whatever", headers={"Accept": f"{JSONAPI}; v=1"})
    assert_error(response, 406, "NOT_ACCEPTABLE", "Accept")


@pytest.mark.parametrize("request_for", [
    pytest.param(lambda c, s: c.get(CONFIG), id="200-resource"),
    pytest.param(lambda c, s: c.get("/api/users", headers=bearer(s)), id="200-collection"),
    pytest.param(lambda c, s: c.get(f"/api/sessions/{s}", headers=bearer(s)),
                 id="200-compound"),
    pytest.param(lambda c, s: c.post("/api/sessions", json=NEW_SESSION), id="201"),
    pytest.param(lambda c, s: c.get(f"/api/sessions/{s}"), id="401"),
    pytest.param(lambda c, s: c.get("/api/users/not-a-user", headers=bearer(s)), id="404"),
    pytest.param(lambda c, s: c.get("/api/no-such-route"), id="404-route"),
    pytest.param(lambda c, s: c.put(CONFIG), id="405"),
    pytest.param(lambda c, s: c.get(CONFIG, headers={"Accept": f"{JSONAPI}; v=1"}), id="406"),
    pytest.param(lambda c, s: c.post("/api/sessions", json=NEW_SESSION,
                                     headers={"Content-Type": "application/json"}), id="415"),
    pytest.param(lambda c, s: c.get(CONFIG, headers={
        "Accept": f'{JSONAPI}; profile="{UNKNOWN_PROFILE}"'}), id="unknown-profile-not-applied"),
])
def test_every_response_is_jsonapi_with_vary_accept(client, request_for):
    response = request_for(client, create_session(client))
    assert_jsonapi_response(response)


def test_no_content_varies_on_accept(client):
    session_id = create_session(client)
    response = client.delete(f"/api/sessions/{session_id}", headers=bearer(session_id))
    assert response.status_code == 204
    assert "Accept" in response.vary
    assert response.get_data() == b""
