"""The package as an operator gets it: the wheel built from a copy of the checkout, installed
with [postgres] into a fresh virtual environment in another directory, then ``pushreg
migrate`` against an empty PostgreSQL database, ``pushreg serve`` on a free port, one
session over HTTP, ``pushreg doctor``. Nothing is run from the checkout. It runs once, in
the PostgreSQL run (pip fetches the dependencies, through pip's own configuration)."""

import os
import secrets
import shutil
import subprocess
import sys
import time
import venv

import pytest
import requests
import sqlalchemy as sa

from app.config import normalise_database_url
from app.version import __version__
from tests.conftest import free_port
from tests.live_server import ROOT, PoparazziClient, service_environment

pytestmark = pytest.mark.slow
NOT_SHIPPED = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "site",
                                     "instance", "*.egg-info", "__pycache__", ".*_cache",
                                     ".hypothesis", "bench")
# PYTHONPATH may name the checkout: it must not be importable, nor its egg-info count as
# pushreg already installed
OUTSIDE = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


@pytest.fixture(scope="module")
def installed(request, tmp_path_factory):
    """The ``pushreg`` command of a fresh virtual environment holding only the wheel."""
    if request.config.getoption("--db") != "postgresql":
        pytest.skip("the wheel test runs in the PostgreSQL run")
    where = tmp_path_factory.mktemp("operator")
    source = where / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SHIPPED)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
          str(where / "dist"), str(source)], cwd=where)
    (wheel,) = (where / "dist").glob("pushreg-*.whl")
    venv.create(where / "venv", with_pip=True)
    _run([str(where / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet",
          f"{wheel}[postgres]"], cwd=where, timeout=600)
    return where


@pytest.fixture(scope="module")
def empty_database(database_url):
    server = sa.create_engine(normalise_database_url(database_url),
                              isolation_level="AUTOCOMMIT")
    name = f"pushreg_wheel_{secrets.token_hex(4)}"
    with server.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.engine.make_url(database_url).set(database=name).render_as_string(
        hide_password=False)
    with server.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    server.dispose()


def test_the_installed_wheel_migrates_serves_and_checks(installed, empty_database):
    pushreg = str(installed / "venv" / "bin" / "pushreg")
    env = service_environment(DATABASE_URL=empty_database,
                              SECRET_KEY=secrets.token_urlsafe(48), SMS_SENDER="outbox",
                              WEB_CONCURRENCY=2)
    env.pop("PYTHONPATH", None)

    assert _run([pushreg, "--version"], installed, env).strip() == f"pushreg {__version__}"
    _run([pushreg, "migrate"], installed, env)
    port = free_port()
    log = open(installed / "serve.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([pushreg, "serve", "--bind", f"127.0.0.1:{port}"],
                              cwd=installed, env=env, stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        health = _wait_for_health(url, server, installed / "serve.log")
        assert health["version"] == __version__
        PoparazziClient(url).create_session()
        doctor = _run([pushreg, "doctor"], installed, env)
        assert "migrations: the database is at the head" in doctor, doctor
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _wait_for_health(url, server, log_path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, log_path.read_text(errors="replace")[-4000:]
        try:
            return requests.get(f"{url}/healthz", timeout=2).json()
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"pushreg serve did not answer:\n{log_path.read_text()[-4000:]}")


def _run(argv, cwd, env=None, timeout=300):
    result = subprocess.run(argv, cwd=cwd, env=env or OUTSIDE, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout[-2000:]}" \
                                   f"{result.stderr[-4000:]}"
    return result.stdout
