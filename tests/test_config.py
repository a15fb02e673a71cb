"""Configuration: safe development defaults; production refuses to start without secrets."""

import logging
import multiprocessing
import stat

import pytest

from app import create_app
from app.config import (
    PUBLISHED_DEVELOPMENT_SECRET,
    Config,
    ConfigurationError,
    development_secret_key,
)
from app.formats.settings import DEFAULT_CLIENT_CONFIG

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "x" * 40,
    "DATABASE_URL": "postgresql://db.internal/pushreg",
    "SMS_SENDER": "http",
    "SMS_GATEWAY_URL": "https://sms.example.com/send",
    "PUBLIC_URL": "https://push.example.com",
}


def _config(monkeypatch, **environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Config()


def test_a_complete_production_environment_is_accepted(monkeypatch):
    _config(monkeypatch, **PRODUCTION).validate()


@pytest.mark.parametrize("name, value, complaint", [
    ("SECRET_KEY", "", "SECRET_KEY"),
    ("SECRET_KEY", "short", "SECRET_KEY"),
    ("DATABASE_URL", "sqlite:///prod.db", "PostgreSQL"),
    ("SMS_SENDER", "outbox", "SMS"),
    ("SMS_GATEWAY_URL", "", "SMS_GATEWAY_URL"),
    ("PUBLIC_URL", "", "PUBLIC_URL"),
])
def test_production_refuses_to_start_without_its_secrets(monkeypatch, name, value, complaint):
    config = _config(monkeypatch, **{**PRODUCTION, name: value})
    with pytest.raises(ConfigurationError, match=complaint):
        create_app(config)


def test_postgres_urls_use_psycopg_3(monkeypatch):
    config = _config(monkeypatch, DATABASE_URL="postgres://u@h/d")
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@h/d"


@pytest.mark.parametrize("raw", ["[1]", "{", '{"no_such_key": 1}'])
def test_client_config_must_be_an_object_of_known_keys(monkeypatch, raw):
    with pytest.raises(ConfigurationError, match="CLIENT_CONFIG"):
        _config(monkeypatch, CLIENT_CONFIG=raw)


def test_numbers_in_the_environment_are_checked(monkeypatch):
    with pytest.raises(ConfigurationError, match="PAGE_SIZE_MAX"):
        _config(monkeypatch, PAGE_SIZE_MAX="lots")


@pytest.mark.parametrize("name, value", [
    ("SMS_RATE_LIMIT_PER_PHONE", "lots"),
    ("SMS_RATE_LIMIT_PER_ADDRESS", "5/0 minutes"),
    ("SMS_RATE_LIMIT_PER_PHONE_TOTAL", "5"),
    ("SMS_GLOBAL_RATE_LIMIT", "1000 an hour"),
    ("VERIFICATION_MAX_WRONG_PER_PHONE", "ten/hour"),
    ("SMS_ALLOWED_COUNTRY_CODES", "+1,44"),
    ("SMS_ALLOWED_COUNTRY_CODES", "044"),
    ("SMS_ALLOWED_COUNTRY_CODES", "1;44"),
    ("MINIMUM_BUNDLE_VERSION", "three"),
    ("SMS_SENDER", "pigeon"),
    ("SESSION_CREATE_RATE_LIMIT", "lots"),
    ("ANONYMOUS_WRITE_RATE_LIMIT", "60"),
    ("SESSION_IDLE_TIMEOUT", "0"),
    ("SESSION_MAX_AGE", "-5"),
    ("SESSION_ANONYMOUS_MAX_AGE", "a day"),
    ("PUBLIC_URL", "push.example.com"),
    ("PUBLIC_URL", "ftp://push.example.com"),
    ("PUBLIC_URL", "https://push.example.com/?x=1"),
    ("PUBLIC_URL", "https://push.example.com/#top"),
    ("PUBLIC_URL", "https://user:secret@push.example.com"),
    ("PUBLIC_URL", "https://push.example.com:https"),
    ("PUSH_QUEUE", "redis"),
    ("PUSH_INVALIDATION_POLICY", "forget"),
    ("PUSH_CHUNK_SIZE", "0"),
    ("PUSH_CONCURRENCY", "two"),
    ("PUSH_LEASE", "0"),
    ("PUSH_QUARANTINE_RATIO", "1.5"),
])
def test_malformed_settings_stop_the_start_not_a_later_request(monkeypatch, name, value):
    with pytest.raises(ConfigurationError, match=name):
        create_app(_config(monkeypatch, **{name: value}))


def test_allowed_country_codes_are_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("SMS_ALLOWED_COUNTRY_CODES", " 1, 44,,90 ")
    assert Config().SMS_ALLOWED_COUNTRY_CODES == ("1", "44", "90")
    monkeypatch.setenv("SMS_ALLOWED_COUNTRY_CODES", "")
    assert Config().SMS_ALLOWED_COUNTRY_CODES == ()


@pytest.mark.parametrize("name, value", [
    ("DATABASE_CONNECT_TIMEOUT", "soon"),
    ("DATABASE_STATEMENT_TIMEOUT", "0"),
    ("DATABASE_LOCK_TIMEOUT", "-1"),
    # a wait gunicorn's worker timeout would cut short with an HTML 500
    ("DATABASE_STATEMENT_TIMEOUT", "30"),
    ("DATABASE_LOCK_TIMEOUT", "45"),
])
def test_database_timeouts_end_before_gunicorns(monkeypatch, name, value):
    with pytest.raises(ConfigurationError, match=name):
        create_app(_config(monkeypatch, **{name: value}))


@pytest.mark.parametrize("given, kept", [
    ("https://push.example.com", "https://push.example.com"),
    ("https://push.example.com/", "https://push.example.com"),
    ("https://example.com:8443/push/", "https://example.com:8443/push"),
])
def test_public_url_is_kept_without_its_trailing_slash(monkeypatch, given, kept):
    public_url = _config(monkeypatch, PUBLIC_URL=given).PUBLIC_URL
    assert public_url == kept


@pytest.mark.parametrize("name, value", [
    ("PAGE_SIZE_MAX", "lots"),
    ("PUSH_LEASE", "two minutes"),
    ("DATABASE_POOL_PRE_PING", "perhaps"),
    ("CLIENT_CONFIG", "{"),
    ("SMS_ALLOWED_COUNTRY_CODES", "+1"),
    ("PUBLIC_URL", "ftp://push.internal"),
])
def test_a_value_that_does_not_parse_is_refused_by_name(monkeypatch, name, value):
    with pytest.raises(ConfigurationError) as refusal:
        _config(monkeypatch, **{name: value})
    assert f'"{name}"' in str(refusal.value)
    assert value not in str(refusal.value)  # the value may be a secret


def test_a_variable_set_empty_takes_its_default(monkeypatch):
    config = _config(monkeypatch, PAGE_SIZE_MAX="", DATABASE_POOL_PRE_PING="", CLIENT_CONFIG="",
                     PUSH_LEASE="", PUBLIC_URL="")
    assert config.PAGE_SIZE_MAX == 100
    assert config.SQLALCHEMY_ENGINE_OPTIONS["pool_pre_ping"] is False
    assert config.CLIENT_CONFIG == DEFAULT_CLIENT_CONFIG
    assert config.PUSH_LEASE == 120.0
    assert config.PUBLIC_URL is None


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("on", True),
                                             ("false", False), ("0", False), ("off", False)])
def test_switches_read_the_usual_spellings(monkeypatch, value, expected):
    config = _config(monkeypatch, DATABASE_POOL_PRE_PING=value)
    assert config.SQLALCHEMY_ENGINE_OPTIONS["pool_pre_ping"] is expected


def test_the_procrastinate_queue_needs_postgresql(monkeypatch):
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        _config(monkeypatch, PUSH_QUEUE="procrastinate",
                DATABASE_URL="sqlite:////tmp/pushreg.db").validate()
    _config(monkeypatch, PUSH_QUEUE="procrastinate",
            DATABASE_URL="postgresql://db.internal/pushreg").validate()


# -- SECRET_KEY: never a published one --------------------------------------------------


@pytest.fixture
def key_file(monkeypatch, tmp_path):
    """No SECRET_KEY: the development key is kept in a fresh instance folder."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    path = tmp_path / "instance" / "secret_key"
    monkeypatch.setenv("SECRET_KEY_FILE", str(path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    return path


@pytest.mark.parametrize("environment", ["development", "test", "production"])
def test_the_published_development_key_is_refused_everywhere(monkeypatch, environment):
    config = _config(monkeypatch, **{**PRODUCTION, "APP_ENV": environment,
                                     "SECRET_KEY": PUBLISHED_DEVELOPMENT_SECRET})
    with pytest.raises(ConfigurationError, match="published"):
        create_app(config)


def test_without_a_secret_key_development_makes_a_random_one_and_keeps_it(key_file):
    first, second = Config(), Config()
    assert first.SECRET_KEY == second.SECRET_KEY == key_file.read_text().strip()
    assert len(first.SECRET_KEY) >= 32 and first.SECRET_KEY != PUBLISHED_DEVELOPMENT_SECRET
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in key_file.parent.iterdir()] == ["secret_key"]  # no leftovers


def test_processes_starting_at_once_agree_on_one_development_key(tmp_path):
    path = tmp_path / "instance" / "secret_key"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        keys = pool.map(development_secret_key, [path] * 32)
    assert len(set(keys)) == 1


def test_a_damaged_development_key_stops_the_start(key_file):
    key_file.parent.mkdir()
    key_file.write_text("")
    with pytest.raises(ConfigurationError, match="does not hold a key"):
        Config()


def test_production_makes_no_key_of_its_own(monkeypatch, key_file):
    config = _config(monkeypatch, **{**PRODUCTION, "SECRET_KEY": ""})
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app(config)
    assert not key_file.exists()


def test_the_development_key_is_warned_of_at_start(key_file, caplog):
    with caplog.at_level(logging.WARNING, logger="app"):
        create_app(Config())
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING and "SECRET_KEY" in record.getMessage()]
    assert warnings and str(key_file) in warnings[0]
    assert Config().SECRET_KEY not in warnings[0]


def test_a_configured_key_is_not_warned_of(monkeypatch, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="app"):
        create_app(_config(monkeypatch, SECRET_KEY="y" * 40,
                           DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}"))
    assert not [record for record in caplog.records if "SECRET_KEY" in record.getMessage()]
