"""``pushreg``: the installed command is ``flask`` with the app named, plus serve, migrate and
worker; its version is the one /healthz and the OpenAPI document show."""

import json

import pytest
from flask.cli import ScriptInfo

from app.ops.command import Pushreg
from app.version import __version__


@pytest.fixture
def pushreg(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        result = runner.invoke(Pushreg(), args, obj=ScriptInfo(create_app=lambda: app))
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def test_the_version_is_the_one_every_surface_shows(pushreg, client):
    assert pushreg("--version") == f"pushreg {__version__}\n"
    assert client.get("/healthz").get_json()["version"] == __version__
    assert client.get("/openapi.json").get_json()["info"]["version"] == __version__


def test_every_operator_command_is_there(pushreg):
    listed = {line.split()[0] for line in pushreg("--help").split("Commands:")[1].splitlines()
              if line.strip()}
    assert {"serve", "migrate", "worker", "doctor", "keys", "push", "prune", "sms",
            "db"} <= listed


def test_the_commands_are_flasks_own(pushreg):
    created = json.loads(pushreg("keys", "create", "--name", "backend", "--scope",
                                 "notifications:send"))
    listed = [json.loads(line) for line in pushreg("keys", "list").splitlines()]
    assert [key["id"] for key in listed] == [created["id"]]
    assert json.loads(pushreg("prune"))["sessions"] == 0

