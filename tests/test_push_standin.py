"""The development stand-in (``PUSH_STANDIN=outbox``): without APNs or FCM credentials a
development worker records each push in the outbox instead of sending it, and
``flask push outbox`` prints them; production refuses it."""

import json

import pytest
from sqlalchemy import select

from app import create_app
from app.config import ConfigurationError
from app.extensions import db
from app.models import Device
from app.push.settings import PushSettings
from tests.jsonapi_helpers import insert_devices, insert_users
from tests.test_config import PRODUCTION, _config
from tests.test_dispatch import finished, worker_process

pytestmark = pytest.mark.committed


def device_id_of(app, token):
    with app.app_context():
        device_id = db.session.scalar(select(Device.id).where(Device.token == token))
        db.session.remove()
    return device_id


def test_a_push_sent_in_development_without_credentials_reaches_the_outbox(app, service_env):
    (alice,) = insert_users(app, 1)
    tokens = insert_devices(app, 2, user_id=alice)
    runner = app.test_cli_runner()
    sent = json.loads(runner.invoke(args=["push", "send", "--user", alice,
                                          "--alert", "Hello from development"]).output)

    totals = finished(worker_process(service_env, {}, "--burst"))  # APP_ENV unset: development

    assert sent["deliveries"] == 2 and totals["sent"] == 2
    printed = [json.loads(line) for line in
               runner.invoke(args=["push", "outbox"]).output.splitlines()]
    assert {line["device_id"] for line in printed} == {
        str(device_id_of(app, token)) for token in tokens}
    assert {line["token_tail"] for line in printed} == {token[-8:] for token in tokens}
    assert printed[0]["payload"] == {"aps": {"alert": "Hello from development"}}
    assert printed[0]["channel"] == "ios_push"


def test_the_outbox_prints_one_device_and_the_newest(app, service_env):
    (alice,) = insert_users(app, 1)
    _first, second = insert_devices(app, 2, user_id=alice)
    runner = app.test_cli_runner()
    for alert in ("one", "two"):
        runner.invoke(args=["push", "send", "--user", alice, "--alert", alert])
    finished(worker_process(service_env, {}, "--burst"))

    device = str(device_id_of(app, second))
    printed = runner.invoke(args=["push", "outbox", "--device", device]).output.splitlines()
    assert [json.loads(line)["payload"]["aps"]["alert"] for line in printed] == ["one", "two"]
    (newest,) = runner.invoke(args=["push", "outbox", "--last", "1"]).output.splitlines()
    assert json.loads(newest)["payload"]["aps"]["alert"] == "two"


def test_the_stand_in_logs_one_line_a_push_without_the_token(app, service_env):
    (alice,) = insert_users(app, 1)
    (token,) = insert_devices(app, 1, user_id=alice)
    app.test_cli_runner().invoke(args=["push", "send", "--user", alice, "--alert", "Hi"])

    process = worker_process(service_env, {}, "--burst")
    _stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    (line,) = [line for line in stderr.splitlines() if "nothing left this machine" in line]
    assert "development stand-in" in line and "INFO" in line and token[-8:] in line
    assert token not in stderr


def test_production_refuses_the_stand_in(monkeypatch):
    config = _config(monkeypatch, **PRODUCTION, PUSH_STANDIN="outbox")
    with pytest.raises(ConfigurationError, match="PUSH_STANDIN"):
        create_app(config)


@pytest.mark.parametrize("environment, expected", [
    ({"APP_ENV": "development"}, "outbox"),
    ({"APP_ENV": "development", "FCM_CREDENTIALS_FILE": "/keys/sa.json"}, "off"),
    ({"APP_ENV": "development", "PUSH_STANDIN": "off"}, "off"),
    ({"APP_ENV": "test"}, "off"),
    ({**PRODUCTION}, "off"),
])
def test_the_stand_in_is_on_by_default_only_in_development_without_credentials(
        monkeypatch, environment, expected):
    for name in ("APNS_KEY", "FCM_CREDENTIALS_FILE", "PUSH_STANDIN"):
        monkeypatch.delenv(name, raising=False)
    config = _config(monkeypatch, **environment)
    assert PushSettings.from_config(vars(config)).standin == expected


def test_a_stand_in_setting_that_is_neither_is_refused(monkeypatch):
    with pytest.raises(ConfigurationError, match="PUSH_STANDIN"):
        _config(monkeypatch, PUSH_STANDIN="on").validate()
