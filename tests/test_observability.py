"""Request ids, metrics and JSON logs, in-process: the id kept or made and carried in every
error body, ``/metrics`` guarded, each surface's registrations counted, and a log line
written during a request naming it."""

import io
import json
import logging

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.config import ConfigurationError
from app.config import TestConfig as AppConfig
from app.observability.logs import RequestFields, json_formatter
from app.observability.metrics import ALLMINE, APPLE_DEVICE_TOKENS, DEVICES_V1, JSONAPI_DEVICES
from tests.compat_helpers import access_token, send
from tests.factories import bearer, create_session, log_in, register_token
from tests.test_compat_allmine import body as allmine_registration
from tests.test_compat_devices_v1 import registration as devices_v1_registration
from tests.test_devices_api import iphone
from tests.test_openapi import undocumented_routes
from tests.test_rate_limit import second_app  # noqa: F401  (a fixture)

METRICS_TOKEN = "scrape-" + "s" * 32


def _assert_new_id(response, sent):
    given = response.headers["X-Request-ID"]
    assert given != sent and len(given) == 32 and int(given, 16) >= 0
    return given


# -- request ids -------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["a", "trace-7f3a.b_2", "x" * 128])
def test_a_well_formed_request_id_is_kept(client, request_id):
    response = client.get("/api/configs/3.1.23", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize("request_id", ["x" * 129, "has space", "semi;colon", "a\tb",
                                        "ünïcode", "Bearer%20abc", ""])
def test_a_malformed_request_id_is_replaced(client, request_id):
    response = client.get("/api/configs/3.1.23", headers={"X-Request-ID": request_id})
    _assert_new_id(response, request_id)


def test_without_a_request_id_each_request_gets_its_own(client):
    first, second = (client.get("/api/configs/3.1.23").headers["X-Request-ID"]
                     for _ in range(2))
    assert first != second


def test_each_jsonapi_error_object_carries_the_request_id_and_its_own_id(client):
    session_id = create_session(client)
    document = {"data": {"type": "users", "id": "x",
                         "attributes": {"username": "", "first_name": 7}}}
    response = client.patch(f"/api/sessions/{session_id}/user", json=document,
                            headers={**bearer(session_id), "X-Request-ID": "report-42"})
    errors = response.get_json()["errors"]
    assert response.status_code >= 400 and len(errors) >= 1
    assert response.headers["X-Request-ID"] == "report-42"
    assert {error["meta"]["request_id"] for error in errors} == {"report-42"}
    assert len({error["id"] for error in errors}) == len(errors)


def test_an_unknown_path_answers_with_the_request_id_in_its_error(client):
    response = client.get("/nothing/here", headers={"X-Request-ID": "bad id"})
    request_id = _assert_new_id(response, "bad id")
    [error] = response.get_json()["errors"]
    assert response.status_code == 404 and error["meta"] == {"request_id": request_id}


def test_the_seed_formats_carry_the_request_id_where_their_shape_has_room(client):
    headers = {"X-Request-ID": "seed-report"}
    auth_tokens = send(client, "GET", "/api/v1/auth_tokens", headers=headers)
    assert auth_tokens.status_code == 401
    assert auth_tokens.get_json()["request_id"] == "seed-report"
    devices_v1 = send(client, "GET", "/v1/devices", headers=headers)
    assert devices_v1.status_code == 401
    assert devices_v1.get_json()["error"]["request_id"] == "seed-report"
    # Allmine's envelope is fixed: the header alone
    allmine = send(client, "POST", "/api/v1/notifications/device-token", {}, headers)
    assert allmine.status_code == 401 and "request_id" not in json.dumps(allmine.get_json())
    for response in (auth_tokens, devices_v1, allmine):
        assert response.headers["X-Request-ID"] == "seed-report"


# -- logs --------------------------------------------------------------------------------


def test_a_json_log_line_written_during_a_request_names_it(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestFields())
    logger = logging.getLogger("tests.observability")
    logger.addHandler(handler)
    try:
        with app.test_request_context("/api/sessions/secret-session", method="PATCH",
                                      headers={"X-Request-ID": "line-1"},
                                      environ_base={"REMOTE_ADDR": "192.0.2.7"}):
            logger.warning("refused\nforged line")
    finally:
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "refused\nforged line"  # one line: JSON escapes it
    assert (record["level"], record["logger"]) == ("WARNING", "tests.observability")
    assert (record["request_id"], record["method"], record["client"]) == (
        "line-1", "PATCH", "192.0.2.7")
    assert record["route"] == "/api/sessions/<session_id>" and "time" in record
    assert "secret-session" not in line


@pytest.mark.parametrize(("settings", "variable"), [
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ({"METRICS_ENABLED": "1"}, "METRICS_ENABLED"),
    ({"METRICS_ENABLED": "1", "METRICS_ALLOW": "10.0.0.0/33"}, "METRICS_ALLOW"),
])
def test_observability_settings_are_checked(monkeypatch, settings, variable):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=variable):
        AppConfig("sqlite://").validate()


def test_production_logs_json_by_default(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    assert AppConfig("sqlite://").LOG_FORMAT == "json"
    monkeypatch.setenv("LOG_FORMAT", "text")
    assert AppConfig("sqlite://").LOG_FORMAT == "text"


# -- metrics -----------------------------------------------------------------------------


@pytest.fixture
def metrics_settings(monkeypatch):
    """Metrics on, guarded by a token and by 10.0.0.0/8."""
    monkeypatch.setenv("METRICS_ENABLED", "true")
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.0/8")


@pytest.fixture
def metrics_app(metrics_settings, second_app):  # noqa: F811
    return second_app


def test_metrics_are_off_unless_enabled(client):
    assert client.get("/metrics").status_code == 404
    assert "/metrics" not in client.get("/openapi.json").get_json()["paths"]


def test_metrics_when_enabled_are_in_the_api_description(metrics_app):
    document = metrics_app.test_client().get("/openapi.json").get_json()
    assert document["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]
    assert not undocumented_routes(metrics_app, document)


@pytest.mark.parametrize(("headers", "address", "status"), [
    ({}, "127.0.0.1", 401),
    ({"Authorization": "Bearer wrong"}, "127.0.0.1", 403),
    ({"Authorization": f"Basic {METRICS_TOKEN}"}, "127.0.0.1", 403),
    ({"Authorization": f"Bearer {METRICS_TOKEN}"}, "127.0.0.1", 200),
    ({}, "10.20.30.40", 200),
    ({}, "::ffff:10.0.0.1", 200),
    ({}, "11.0.0.1", 401),
])
def test_metrics_need_the_token_or_an_allowed_address(metrics_app, headers, address, status):
    response = metrics_app.test_client().get(
        "/metrics", headers={"Accept": "*/*", **headers}, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if status == 200:
        assert response.mimetype == "text/plain"
        names = {family.name for family in text_string_to_metric_families(response.text)}
        assert {"pushreg_http_requests", "pushreg_http_request_duration_seconds",
                "pushreg_db_pool_connections_in_use", "pushreg_push_deliveries_waiting",
                "pushreg_push_oldest_waiting_delivery_age_seconds"} <= names


def _registrations(surface):
    return REGISTRY.get_sample_value("pushreg_device_registrations_total",
                                     {"surface": surface}) or 0


def test_registrations_are_counted_by_surface(client, app):
    before = {surface: _registrations(surface)
              for surface in (APPLE_DEVICE_TOKENS, JSONAPI_DEVICES, ALLMINE, DEVICES_V1)}
    session_id, _ = log_in(client, app)
    register_token(client, session_id)
    register_token(client, session_id)
    assert client.post("/api/devices", json=iphone(),
                       headers=bearer(session_id)).status_code == 201
    jwt = access_token(client, session_id)
    assert send(client, "POST", "/api/v1/notifications/device-token",
                allmine_registration(), bearer(jwt)).status_code == 200
    # a null token only moves the time zone: no registration
    assert send(client, "POST", "/api/v1/notifications/device-token",
                allmine_registration(token=None), bearer(jwt)).status_code == 200
    client.set_cookie("access_token", jwt)
    assert send(client, "POST", "/v1/devices", devices_v1_registration()).status_code == 201
    after = {surface: _registrations(surface) - count for surface, count in before.items()}
    assert after == {APPLE_DEVICE_TOKENS: 2, JSONAPI_DEVICES: 1, ALLMINE: 1, DEVICES_V1: 1}
