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
import subprocess
import sys
import tempfile
import time
import uuid
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
WORKERS = 2
PORT = int(os.environ.get("FUZZ_PORT", "8611"))


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


def credentials(server, env, key):
    """One credential of each kind, as the headers that present it."""
    anonymous = PoparazziClient(server.url)
    anonymous.create_session()
    person = PoparazziClient(server.url)
    person.log_in(f"+1555{uuid.uuid4().int % 10**7:07d}",
                  lambda phone: code_from_outbox(env, phone))
    issued = person.request("POST", "/api/auth_tokens", {"data": {
        "type": "auth_tokens", "attributes": {"id_token": id_token(key),
                                              "device_fingerprint": "fuzz-device"}}},
        authorized=False)
    assert issued.status_code == 201, issued.text
    access = person.request("POST", "/api/access_tokens", {"data": {"type": "access_tokens"}})
    assert access.status_code == 201, access.text
    api_key = json.loads(flask_cli(env, "keys", "create", "--name", "fuzz", "--scope",
                                   "notifications:send"))["key"]
    auth_token = issued.json()["data"]["attributes"]["value"]
    access_token = access.json()["data"]["attributes"]["value"]
    for client in (anonymous, person):
        client.close()
    return {
        "none": {},
        "anonymous-session": {"Authorization": f"Bearer {anonymous.session_id}"},
        "user-session": {"Authorization": f"Bearer {person.session_id}"},
        "auth-token": {"Authentication": auth_token},
        "access-token": {"Authorization": f"Bearer {access_token}"},
        "access-token-cookie": {"Cookie": f"access_token={access_token}"},
        "api-key": {"Authorization": f"Bearer {api_key}"},
    }


def schemathesis(server, name, headers, args, report_dir):
    command = [str(BIN / "st"), "run", f"{server.url}/openapi.json", "--checks", CHECKS,
               "--max-examples", str(args.max_examples), "--seed", str(args.seed),
               "--phases", "examples,coverage,fuzzing", "--workers", str(WORKERS),
               "--generation-with-security-parameters", "false",
               "--generation-database", "none", "--request-timeout", "30",
               "--suppress-health-check", "all", "--no-color",
               "--report", "junit", "--report-junit-path", str(report_dir / f"{name}.xml")]
    for header, value in headers.items():
        command += ["--header", f"{header}: {value}"]
    print(f"=== schemathesis as {name}", flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL)
    print(f"=== {name}: exit {result.returncode} in {time.monotonic() - started:.0f} s",
          flush=True)
    return result.returncode == 0


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
        SMS_RATE_LIMIT_PER_ADDRESS="100000/hour", SESSION_CREATE_RATE_LIMIT=GENEROUS_TEST_RATE,
        ANONYMOUS_WRITE_RATE_LIMIT=GENEROUS_TEST_RATE, ID_TOKEN_PROVIDERS=providers,
        GUNICORN_THREADS="2")
    flask_cli(env, "db", "upgrade", timeout=120)
    server = LiveServer(PORT, env, work, workers=WORKERS)
    server.start(timeout=60)
    try:
        kinds = credentials(server, env, key)
        if args.only:
            kinds = {args.only: kinds[args.only]}
        passed = [schemathesis(server, name, headers, args, work)
                  for name, headers in kinds.items()]
        errors = server.server_errors()
    finally:
        server.stop()
    if errors:
        print("gunicorn logged errors:\n" + "\n".join(errors[:40]))
    print(f"schemathesis reports and gunicorn's log: {work}")
    if not all(passed) or errors:
        sys.exit(1)
    print(f"{len(passed)} passed, 0 failed")


if __name__ == "__main__":
    main()
