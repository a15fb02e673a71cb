"""GET /api/configs/<bundle_version>: public app configuration; versions compared as numbers."""

import json

import pytest

from app.config import ConfigurationError
from app.config import TestConfig as AppConfig  # not "Test*": pytest would collect it
from app.formats.settings import DEFAULT_CLIENT_CONFIG
from app.resources.configs import version_key
from tests.factories import bearer, create_session


@pytest.fixture
def minimum(app, monkeypatch):
    def set_(version):
        monkeypatch.setitem(app.config, "MINIMUM_BUNDLE_VERSION", version)
    return set_


def config_of(client, version, **kwargs):
    response = client.get(f"/api/configs/{version}", **kwargs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


@pytest.mark.parametrize("version, required", [
    ("3.9.9", True),
    ("3.9", True),
    ("3.1.23", True),      # Poparazzi's own version: 1 < 10, not "1" > "10" as text
    ("3.2", True),
    ("2.99.99", True),
    ("0", True),
    ("3.10", False),
    ("3.10.0", False),
    ("3.10.0.0", False),
    ("3.10.1", False),
    ("3.11", False),
    ("3.100", False),
    ("4", False),
    ("10.0", False),
    ("03.010", False),     # leading zeros are still numbers
])
def test_update_required_compares_numerically(client, minimum, version, required):
    minimum("3.10.0")
    data = config_of(client, version)
    assert data["type"] == "configs"
    assert data["id"] == version
    assert data["attributes"]["is_app_update_required"] is required


def test_default_minimum_requires_no_update(client, app):
    assert app.config["MINIMUM_BUNDLE_VERSION"] == "0"
    assert config_of(client, "0.0.1")["attributes"]["is_app_update_required"] is False
    assert config_of(client, "3.1.23")["attributes"]["is_app_update_required"] is False


def test_version_key():
    assert version_key("3.10") > version_key("3.9")
    assert version_key("3.1") == version_key("3.1.0") == version_key("3.1.0.0")
    assert version_key("3.1.23") < version_key("3.10.0")
    assert version_key("10") > version_key("9.99.99")


@pytest.mark.parametrize("version", [
    "abc", "3..1", "3.1.", ".3", "-1", "3.1-beta", "3.1.23.4.5", "v3.1", "3 1",
    "3.1%0A", "%E2%91%A2", "\u0663.\u0661", "1234567890",
])
def test_bad_version_is_a_bad_request(client, version):
    response = client.get(f"/api/configs/{version}")
    assert response.status_code == 400, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["code"] == "INVALID_BUNDLE_VERSION"
    assert error["status"] == "400"


def test_configs_are_public_and_the_same_for_everyone(client):
    anonymous = config_of(client, "3.1.23")
    session_id = create_session(client)
    assert config_of(client, "3.1.23", headers=bearer(session_id)) == anonymous


def test_attributes_are_the_client_config(client, app):
    attributes = config_of(client, "3.1.23")["attributes"]
    assert set(attributes) == {"is_app_update_required", *DEFAULT_CLIENT_CONFIG}
    for name, value in DEFAULT_CLIENT_CONFIG.items():
        assert attributes[name] == value, name


def test_client_config_overrides_are_reflected(client, app, monkeypatch, database_url):
    overrides = {"is_live": True, "max_name_length": 12, "app_share_url": "https://x.test/a",
                 "default_reaction_emojis": ["\U0001f525", "\U0001f602"],
                 "in_app_post_message": "Hello"}
    monkeypatch.setenv("CLIENT_CONFIG", json.dumps(overrides))
    client_config = AppConfig(database_url).CLIENT_CONFIG
    assert client_config == {**DEFAULT_CLIENT_CONFIG, **overrides}
    monkeypatch.setitem(app.config, "CLIENT_CONFIG", client_config)

    attributes = config_of(client, "3.1.23")["attributes"]
    for name, value in overrides.items():
        assert attributes[name] == value, name
    assert attributes["snap_username"] == DEFAULT_CLIENT_CONFIG["snap_username"]


@pytest.mark.parametrize("raw", ['{"no_such_key": 1}', "[1, 2]", "not json", '"text"'])
def test_bad_client_config_refuses_to_start(monkeypatch, database_url, raw):
    monkeypatch.setenv("CLIENT_CONFIG", raw)
    with pytest.raises(ConfigurationError):
        AppConfig(database_url)


def test_minimum_version_comes_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("MINIMUM_BUNDLE_VERSION", "3.10.0")
    assert AppConfig(database_url).MINIMUM_BUNDLE_VERSION == "3.10.0"
