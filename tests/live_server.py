"""The real thing for tests: ``wsgi:app`` under gunicorn in a subprocess, a ``flask`` CLI
runner, and an HTTP client that sends exactly the headers Poparazzi's iOS app sends."""

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.jsonapi_schema import JSONAPI, assert_valid_jsonapi

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONTRACT = Path(__file__).parent / "contract" / "poparazzi"
CODE_IN_TEXT = re.compile(r"\b(\d{6})\b")

# Settings the service reads from the environment that must not leak from the developer's
# shell into the server under test; the fixture sets the ones it needs.
SERVICE_SETTINGS = (
    "APP_ENV", "SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "REDIS_URL", "CLIENT_CONFIG",
    "MINIMUM_BUNDLE_VERSION", "PROXY_FIX_X_FOR", "LOG_LEVEL", "APP_NAME", "PORT",
    "WEB_CONCURRENCY", "FLASK_APP", "MAX_CONTENT_LENGTH", "VERIFICATION_CODE_TTL",
    "VERIFICATION_MAX_ATTEMPTS", "ANONYMOUS_WRITE_RATE_LIMIT", "PUBLIC_URL",
    "PROXY_FIX_X_PROTO", "LOG_FORMAT", "PROMETHEUS_MULTIPROC_DIR",
)
SERVICE_PREFIXES = ("METRICS_", "SMS_", "GUNICORN_", "PAGE_SIZE_", "INCLUDE_DEPTH_", "DATABASE_",
                    "SESSION_", "DEVICES_", "PUSH_", "APNS_")


def service_environment(**settings):
    """This process's environment without the service's settings, plus ``settings``."""
    env = {name: value for name, value in os.environ.items()
           if name not in SERVICE_SETTINGS and not name.startswith(SERVICE_PREFIXES)}
    env.update({name: str(value) for name, value in settings.items()})
    return env


class LiveServer:
    """``gunicorn --config gunicorn.conf.py wsgi:app`` on 127.0.0.1:``port``."""

    def __init__(self, port, env, log_dir, workers=3):
        self.port = port
        self.workers = workers
        self.url = f"http://127.0.0.1:{port}"
        self.stdout_path = Path(log_dir) / "gunicorn.stdout.log"
        self.stderr_path = Path(log_dir) / "gunicorn.stderr.log"
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)}
        self.process = None

    def start(self, timeout=30.0):
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        try:
            self._wait_until_serving(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_serving(self, timeout):
        """Until every worker has booted and one has answered a request."""
        deadline = time.monotonic() + timeout
        probe = requests.Session()
        probe.trust_env = False
        answered = False
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n"
                                   f"{self.logs()}")
            if not answered:
                try:
                    response = probe.get(f"{self.url}/api/configs/3.1.23", timeout=2,
                                         headers={"Accept": JSONAPI})
                    answered = response.status_code == 200
                except requests.RequestException:
                    pass
            if answered and self.logs().count("Booting worker") >= self.workers:
                probe.close()
                return
            time.sleep(0.1)
        probe.close()
        raise RuntimeError(f"gunicorn did not serve {self.url} within {timeout:.0f} s:\n"
                           f"{self.logs()}")

    def stop(self, timeout=15.0):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: gunicorn's graceful shutdown
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def logs(self, since=0, limit=8000):
        """gunicorn's error log (the service logs there too) from byte ``since``, its tail."""
        if not self.stderr_path.exists():
            return ""
        with open(self.stderr_path, "rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")[-limit:]

    def log_size(self):
        return self.stderr_path.stat().st_size if self.stderr_path.exists() else 0

    def server_errors(self, since=0):
        """Lines logged since byte ``since`` that show a crash, a timeout or a 5xx."""
        return [line for line in self.logs(since, limit=10**7).splitlines()
                if re.search(r"\b(ERROR|CRITICAL|Traceback|WORKER TIMEOUT)\b", line)]


def flask_cli(env, *args, timeout=30.0):
    """``flask --app wsgi <args>`` in a subprocess; its stdout."""
    result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"flask {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result.stdout


def code_from_outbox(env, phone_number):
    """The verification code of the newest text to ``phone_number``, read with the CLI."""
    lines = flask_cli(env, "sms", "outbox", "--phone", phone_number, "--last", "1").splitlines()
    assert len(lines) == 1, lines
    message = json.loads(lines[0])
    assert message["to"] == phone_number
    return CODE_IN_TEXT.search(message["body"]).group(1)


def contract(name):
    return json.loads((CONTRACT / name).read_text())


CLIENT_HEADERS = contract("client.headers.json")


def device_check():
    return secrets.token_hex(128)


class PoparazziClient:
    """One iPhone: its own connection pool, its session once created, the app's headers.

    Every answer's Content-Type is checked, and every JSON:API body is validated against
    the JSON:API schema.
    """

    def __init__(self, base_url, timeout=30.0):
        self.base_url = base_url
        self.timeout = timeout
        self.session_id = None
        self.http = requests.Session()
        self.http.trust_env = False  # never through a proxy: traffic stays on 127.0.0.1

    def close(self):
        self.http.close()

    def headers(self, authorized=True, extra=None):
        headers = dict(CLIENT_HEADERS["all_requests"])
        if authorized and self.session_id is not None:
            headers["Authorization"] = f"Bearer {self.session_id}"
        headers.update(extra or {})
        return headers

    def request(self, method, path, document=None, authorized=True, extra_headers=None):
        body = None if document is None else json.dumps(document).encode()
        response = self.http.request(method, self.base_url + path, data=body,
                                     headers=self.headers(authorized, extra_headers),
                                     timeout=self.timeout, allow_redirects=False)
        if response.status_code != 204:
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            assert media_type == JSONAPI, (
                f"{method} {path}: Content-Type {response.headers.get('Content-Type')!r}, "
                f"status {response.status_code}: {response.text[:500]}")
            assert_valid_jsonapi(response.json())
        return response

    # The calls of Poparazzi's client, in the order it makes them (WIRE.md §1).

    def create_session(self):
        response = self.request("POST", "/api/sessions", contract("sessions.post.request.json"))
        assert response.status_code == 201, response.text
        self.session_id = response.json()["data"]["id"]
        return response

    def patch_token(self, token, authorized=True, **attributes):
        document = contract("apple_device_tokens.patch.request.json")
        document["data"]["id"] = token
        document["data"]["attributes"].update(attributes)
        return self.request("PATCH", f"/api/apple_device_tokens/{token}", document,
                            authorized=authorized,
                            extra_headers=CLIENT_HEADERS["apple_device_tokens_patch_extra"])

    def patch_session(self, **attributes):
        name = "phone_number" if "phone_number" in attributes else "verification_code"
        document = contract(f"sessions.patch.{name}.request.json")
        document["data"]["id"] = self.session_id
        document["data"]["attributes"] = attributes
        return self.request("PATCH", f"/api/sessions/{self.session_id}", document,
                            extra_headers={"Device-Check": device_check()})

    def log_in(self, phone_number, code_for):
        """A new session logged in as ``phone_number``, reading the texted code with
        ``code_for(phone_number)``; the user's id."""
        self.create_session()
        response = self.patch_session(phone_number=phone_number)
        assert response.status_code == 200, response.text
        response = self.patch_session(verification_code=code_for(phone_number))
        assert response.status_code == 200, response.text
        return response.json()["data"]["relationships"]["user"]["data"]["id"]
