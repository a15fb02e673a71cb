"""``make fuzz``: schemathesis against the live service (gunicorn on PostgreSQL), once per
credential kind, every operation of /openapi.json, a fixed example budget and seed.

Passes when no answer is a 5xx, every answer conforms to the document (status, content
type, body schema) and gunicorn logged no error. The database is its own
(``<TEST_DATABASE_URL's database>_fuzz``, made afresh), so the suite's is untouched.

    python -m tests.fuzz_api [--max-examples N] [--seed N] [--only NAME]
"""

import argparse
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import jwt
import psycopg
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import make_url

from app.config import GENEROUS_TEST_RATE
from tests.identity_provider import jwks
from tests.live_server import (
    BIN,
    ROOT,
    LiveServer,
    PoparazziClient,
    code_from_outbox,
    flask_cli,
    service_environment,
)

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
ISSUER, AUDIENCE = "https://accounts.example.com", "com.example.pushreg"
GUNICORN_WORKERS = 2
# One schemathesis worker: CPython 3.11 can fail to parse in two threads at once ("AST
# constructor recursion depth mismatch"), a crash of the tool, not of the service.
FUZZ_WORKERS = 1
# Operations a run leaves out: they would revoke the very credential it presents.
SPARED = {"auth-token": ("delete_api_auth_tokens_token_id", "delete_api_v1_auth_tokens_token_id")}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fuzz_database(base_url):
    """A fresh PostgreSQL database beside ``base_url``'s, its URL."""
    url = make_url(base_url)
    if not url.drivername.startswith("postgresql"):
        sys.exit("make fuzz runs on PostgreSQL: set TEST_DATABASE_URL=postgresql://…")
    name = f"{url.database}_fuzz"
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False),
                         autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def identity_provider(directory):
    """A key the service trusts for ID tokens (a JWKS file), and the key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys_file = Path(directory) / "jwks.json"
    keys_file.write_text(json.dumps(jwks(("fuzz", key))))
    providers = [{"issuer": ISSUER, "audience": AUDIENCE, "keys_url": keys_file.as_uri()}]
    return json.dumps(providers), key


def id_token(key):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"fuzz-{uuid.uuid4()}", "iat": now,
              "exp": now + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "fuzz"})


class Person:
    """A logged-in user with an auth token and an access token, and a service's API key."""

    def __init__(self, server, env, key):
        self.url = server.url
        self.phone_number = f"+1415{uuid.uuid4().int % (8 * 10**6) + 2 * 10**6}"
        self.code_for = lambda phone: code_from_outbox(env, phone)
        self.client = PoparazziClient(server.url)
        self.user_id = self.client.log_in(self.phone_number, self.code_for)
        self.auth_token = self.new_auth_token(key)
        self.access_token = self.created("POST", "/api/access_tokens", {
            "data": {"type": "access_tokens"}})["attributes"]["value"]
        # every scope, so the audience, broadcast, topic and channel paths are fuzzed too
        self.api_key = json.loads(flask_cli(
            env, "keys", "create", "--name", "fuzz", "--scope", "notifications:send",
            "--scope", "notifications:broadcast", "--scope", "topics:manage",
            "--scope", "live_activities:manage"))["key"]

    def created(self, method, path, document, headers=None, status=201):
        response = self.client.request(method, path, document, extra_headers=headers)
        assert response.status_code == status, f"{method} {path}: {response.text[:500]}"
        return response.json()["data"]

    def new_auth_token(self, key):
        """An auth token, as its id and secret (for another user: the ID token's)."""
        data = self.created("POST", "/api/auth_tokens", {"data": {
            "type": "auth_tokens", "attributes": {"id_token": id_token(key),
                                                  "device_fingerprint": "fuzz-device"}}})
        return data["id"], data["attributes"]["value"]

    def credentials(self, anonymous_session):
        """One credential of each kind, as the headers that present it."""
        return {
            "none": {},
            "anonymous-session": {"Authorization": f"Bearer {anonymous_session}"},
            "user-session": {"Authorization": f"Bearer {self.client.session_id}"},
            "auth-token": {"Authentication": self.auth_token[1]},
            "access-token": {"Authorization": f"Bearer {self.access_token}"},
            "access-token-cookie": {"Cookie": f"access_token={self.access_token}"},
            "api-key": {"Authorization": f"Bearer {self.api_key}"},
        }

    def resources(self, key):
        """Fresh resources of every kind (the last run may have deleted its), as the path
        parameters that name them: schemathesis uses them for half of its cases."""
        token = self._apple_device_token()
        device = self._device()
        notification = self.created(
            "POST", "/api/notifications",
            {"data": {"type": "notifications", "attributes": {"alert": "fuzz"},
                      "relationships": {"users": {"data": [{"type": "users",
                                                            "id": self.user_id}]}}}},
            headers={"Authorization": f"Bearer {self.api_key}"}, status=202)
        deliveries = self.client.request(
            "GET", f"/api/notifications/{notification['id']}/deliveries",
            extra_headers={"Authorization": f"Bearer {self.api_key}"}).json()["data"]
        auth_token_id, _ = self.new_auth_token(key)
        return {"user_id": [self.user_id], "device_id": [device], "token": [token],
                "apple_device_token_id": [token], "notification_id": [notification["id"]],
                "apns_id": [each["id"] for each in deliveries] or ["none"],
                "token_id": [auth_token_id, self.auth_token[0]],
                "auth_token_id": [auth_token_id], "bundle_version": ["3.1.23"],
                "name": ["fuzz-topic"]}

    def _apple_device_token(self):
        """A token of this user's, registered by another of its sessions: a PATCH of it
        without a credential is a logout, which ends that session, not the one fuzzing."""
        holder = PoparazziClient(self.url)
        holder.log_in(self.phone_number, self.code_for)
        token = secrets.token_hex(32)
        holder.patch_token(token)
        holder.close()
        return token

    def _device(self):
        response = self.client.request("POST", "/api/devices", {"data": {
            "type": "devices", "attributes": {"channel": "ios_push",
                                              "token": secrets.token_hex(32),
                                              "fingerprint": f"fuzz-{uuid.uuid4()}"}}})
        assert response.status_code == 201, response.text[:500]
        return response.json()["data"]["id"]


def anonymous_session(server):
    client = PoparazziClient(server.url)
    client.create_session()
    client.close()
    return client.session_id


def config_file(path, resources):
    """A schemathesis.toml whose path parameters are these ids half of the time (and no
    cache: each run is the seed's alone, not a replay of the last run's finds)."""
    lines = ["[cache]", "enabled = false", "", "[dictionaries]"]
    lines += [f"{name} = {{ values = {json.dumps(values)} }}"
              for name, values in resources.items()]
    lines += ["", "[parameters]"]
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}'
              for name in resources]
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis(server, name, headers, args, work, resources):
    config = config_file(work / f"{name}.toml", resources)
    command = [str(BIN / "st"), "--config-file", str(config), "--no-color", "run",
               f"{server.url}/openapi.json", "--checks", CHECKS,
               "--max-examples", str(args.max_examples), "--seed", str(args.seed),
               "--phases", "examples,coverage,fuzzing", "--workers", str(FUZZ_WORKERS),
               "--generation-with-security-parameters", "false",
               "--generation-database", "none", "--request-timeout", "30",
               "--suppress-health-check", "all",
               "--report", "junit", "--report-junit-path", str(work / f"{name}.xml")]
    for header, value in headers.items():
        command += ["--header", f"{header}: {value}"]
    for operation_id in SPARED.get(name, ()):
        command += ["--exclude-operation-id", operation_id]
    print(f"=== schemathesis as {name}", flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL)
    print(f"=== {name}: exit {result.returncode} in {time.monotonic() - started:.0f} s",
          flush=True)
    return result.returncode == 0


def statuses(access_log):
    """How many answers had each status (gunicorn's access log: status after the request)."""
    counts = Counter(match.group(1) for match in
                     re.finditer(r'" (\d{3}) ', access_log.read_text(errors="replace")))
    return dict(sorted(counts.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--only", help="one credential kind, e.g. user-session")
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    work = Path(tempfile.mkdtemp(prefix="pushreg-fuzz-"))
    providers, key = identity_provider(work)
    env = service_environment(
        DATABASE_URL=fuzz_database(base), SECRET_KEY="fuzz-" + "x" * 40, SMS_SENDER="outbox",
        SMS_RATE_LIMIT_PER_ADDRESS="100000/hour", SMS_RATE_LIMIT_PER_PHONE="1000/hour",
        SMS_RATE_LIMIT_PER_PHONE_TOTAL="1000/hour", SESSION_CREATE_RATE_LIMIT=GENEROUS_TEST_RATE,
        ANONYMOUS_WRITE_RATE_LIMIT=GENEROUS_TEST_RATE, ID_TOKEN_PROVIDERS=providers,
        GUNICORN_THREADS="2", GUNICORN_ACCESS_LOG=str(work / "access.log"))
    flask_cli(env, "db", "upgrade", timeout=120)
    server = LiveServer(free_port(), env, work, workers=GUNICORN_WORKERS)
    server.start(timeout=60)
    try:
        person = Person(server, env, key)
        kinds = person.credentials(anonymous_session(server))
        if args.only:
            kinds = {args.only: kinds[args.only]}
        passed = [schemathesis(server, name, headers, args, work, person.resources(key))
                  for name, headers in kinds.items()]
        errors = server.server_errors()
    finally:
        server.stop()
    if errors:
        print("gunicorn logged errors:\n" + "\n".join(errors[:40]))
    print(f"answers by status: {statuses(work / 'access.log')}")
    print(f"schemathesis reports and gunicorn's logs: {work}")
    if not all(passed) or errors:
        sys.exit(1)
    print(f"{len(passed)} passed, 0 failed")


if __name__ == "__main__":
    main()
