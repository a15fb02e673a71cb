"""django-push-notifications (DPN) under ``make bench``: its own virtual environment,
database and gunicorn, and a pool of users with Django REST framework tokens.

The virtual environment ``bench/.venv-dpn`` (git-ignored) is made on the first run and
reinstalled whenever ``bench/dpn/requirements.txt`` changes.
"""

import json
import os
import subprocess
import sys

from machine import BenchError, recreate_database
from servers import BENCH, RESULTS, Server, gunicorn_env

VENV = BENCH / ".venv-dpn"
REQUIREMENTS = BENCH / "dpn" / "requirements.txt"
STAMP = VENV / ".installed"
DATABASE = "pushreg_bench_dpn"  # named in bench/dpn/settings.py too
REGISTER_PATH = "/device/apns/"


def ensure_venv():
    wanted = REQUIREMENTS.read_text()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print(f"installing django-push-notifications into {VENV.relative_to(BENCH.parent)}",
          flush=True)
    python = VENV / "bin" / "python"
    if not python.exists():
        _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(VENV)])
    _run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)])
    STAMP.write_text(wanted)


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            timeout=900, **kwargs)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result


def _env(**extra):
    return gunicorn_env(os.environ, DJANGO_SETTINGS_MODULE="dpn.settings", **extra)


def prepare(users):
    """A fresh database, migrated, with ``users`` users and tokens: the credentials file
    for wrk.lua and the statements one registration runs."""
    recreate_database(DATABASE)
    credentials = RESULTS / "dpn.credentials"
    result = _run([str(VENV / "bin" / "python"), "-m", "dpn.prepare", "--users", str(users),
                   "--credentials", str(credentials)], cwd=BENCH, env=_env())
    return credentials, json.loads(result.stdout.strip().splitlines()[-1])


def start(workers, threads):
    """gunicorn with the settings the service gets from gunicorn.conf.py, as flags (that
    file imports the service)."""
    env = _env()
    command = [str(VENV / "bin" / "gunicorn"), "--workers", str(workers),
               "--threads", str(threads), "--keep-alive", "5", "--timeout", "30",
               "--graceful-timeout", env["GUNICORN_GRACEFUL_TIMEOUT"],
               "--max-requests", env["GUNICORN_MAX_REQUESTS"],
               "--access-logfile", env["GUNICORN_ACCESS_LOG"], "--error-logfile", "-",
               "--no-control-socket", "dpn.wsgi:application"]
    return Server("dpn", command, env=env, cwd=BENCH, database=DATABASE,
                  probe_path=REGISTER_PATH)
