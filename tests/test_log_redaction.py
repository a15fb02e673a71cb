"""Secrets never reach a log, and no client-controlled string can forge a log line."""

import hashlib
import json
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.observability.logs import (
    EscapingFormatter,
    format_atoms,
    json_formatter,
    loggable_atoms,
    loggable_path,
    loggable_url,
    text_formatter,
)
from tests.conftest import free_port
from tests.factories import new_token
from tests.jsonapi_helpers import cut_database_connections
from tests.live_server import LiveServer, PoparazziClient

SESSION_ID = "0b7c1c36-6f4b-4a3e-9d1e-2c1f6c9a0b11"
USER_ID = "5d0e8a1f-3c2b-4e7a-8f90-1a2b3c4d5e6f"
TOKEN = "ab12" * 16
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLWJ5dGVz"
FORGED = '127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET /forged HTTP/1.1" 200 0'
FORGED_APP_LINE = "2026-01-01 00:00:00,000 ERROR app: forged"


def sha8(value):
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:8]


@pytest.mark.parametrize(("path", "query", "expected"), [
    (f"/api/sessions/{SESSION_ID}", "", f"/api/sessions/{sha8(SESSION_ID)}"),
    (f"/api/sessions/{SESSION_ID}/relationships/user", "",
     f"/api/sessions/{sha8(SESSION_ID)}/relationships/user"),
    (f"/api/sessions/{SESSION_ID}/user", "include=devices",
     f"/api/sessions/{sha8(SESSION_ID)}/user?include=devices"),
    (f"/API/Sessions/{SESSION_ID}", "", f"/API/Sessions/{sha8(SESSION_ID)}"),
    (f"/api//sessions/{SESSION_ID}", "", f"/api//sessions/{sha8(SESSION_ID)}"),
    (f"/api/apple_device_tokens/{TOKEN}", "", f"/api/apple_device_tokens/{sha8(TOKEN)}"),
    (f"/api/apple_device_tokens/{TOKEN.upper()}", "",
     f"/api/apple_device_tokens/{sha8(TOKEN.upper())}"),
    (f"/api/apple_device_tokens/%3C{TOKEN[:32]}%20{TOKEN[32:]}%3E/relationships/session", "",
     f"/api/apple_device_tokens/{sha8(f'<{TOKEN[:32]} {TOKEN[32:]}>')}/relationships/session"),
    ("/api/apple_device_tokens/not-even-a-token", "",
     f"/api/apple_device_tokens/{sha8('not-even-a-token')}"),
    # a token-shaped segment or value wherever it is, even in a URL no template names
    (f"/api/apple_device_token/{TOKEN}", "", f"/api/apple_device_token/{sha8(TOKEN)}"),
    # query parameters: only those an allow-list names, their values still redacted
    ("/api/devices", f"filter[device]={TOKEN}&include={TOKEN}",
     f"/api/devices?include={sha8(TOKEN)}"),
    ("/api/users", "access_token=abc.def&api_key=k1&filter[username]=ann&page[size]=2",
     "/api/users?page[size]=2"),
    ("/api/users", "code=123456&password=hunter2&token=", "/api/users"),
    ("/api/users", "filter[phone_number]=%2B15551234567&sort=-created_at&fields%5Busers%5D=a",
     "/api/users?sort=-created_at&fields%5Busers%5D=a"),
    ("/api/users", f"bearer=pat_{'x' * 43}&sid={SESSION_ID}&x={JWT}", "/api/users"),
    ("/api/configs/3.1.23", "", "/api/configs/3.1.23"),
    # secrets by shape wherever they are: session ids (any UUID), pat_/psk_, JWTs
    (f"/api/users/{USER_ID}", "include=devices", f"/api/users/{sha8(USER_ID)}?include=devices"),
    (f"/api/users/{USER_ID}/relationships/devices", "",
     f"/api/users/{sha8(USER_ID)}/relationships/devices"),
    (f"/v1/devices/{SESSION_ID}", "", f"/v1/devices/{sha8(SESSION_ID)}"),
    (f"/api/auth_tokens/pat_{'x' * 43}", "", f"/api/auth_tokens/{sha8('pat_' + 'x' * 43)}"),
    (f"/api/x/%70at_{'y' * 43}", "", f"/api/x/{sha8('pat_' + 'y' * 43)}"),
    (f"/api/x/{JWT}/y", "", f"/api/x/{sha8(JWT)}/y"),
    (f"/api/x/a{JWT}", "", f"/api/x/{sha8('a' + JWT)}"),
    # not secrets: left alone
    ("/api/sessions", "", "/api/sessions"),
    ("/api/apple_device_tokens", "sort=-created_at", "/api/apple_device_tokens?sort=-created_at"),
    # control characters escaped
    ("/api/configs/1\n" + FORGED, "", "/api/configs/1\\n" + FORGED),
    ("/api/configs/1\r\x1b[2J\u2028", "sort=\x00", "/api/configs/1\\r\\x1b[2J\\u2028?sort=\\x00"),
    ("/api/configs/\u202e1\u2066\u200f", "", "/api/configs/\\u202e1\\u2066\\u200f"),
])
def test_loggable_path(path, query, expected):
    assert loggable_path(path, query) == expected


def test_a_decoded_path_and_its_raw_form_give_one_digest():
    raw = f"/api/apple_device_tokens/%3C{TOKEN}%3E"
    decoded = f"/api/apple_device_tokens/<{TOKEN}>"
    assert loggable_path(raw) == loggable_path(decoded)


@pytest.mark.parametrize(("url", "expected"), [
    (f"/api/sessions/{SESSION_ID}?token=t", f"/api/sessions/{sha8(SESSION_ID)}"),
    (f"https://app.example/api/sessions/{SESSION_ID}",
     f"https://app.example/api/sessions/{sha8(SESSION_ID)}"),
    (f"https://pat_{'z' * 43}@app.example/x?include=a", f"https://{sha8('pat_' + 'z' * 43)}"
     "@app.example/x?include=a"),
    ("/api/configs/3.1.23%0Afake", "/api/configs/3.1.23%0Afake"),
])
def test_loggable_url(url, expected):
    assert loggable_url(url) == expected


def test_access_log_atoms_hide_credentials_and_secret_urls():
    raw_uri = f"/api/sessions/{SESSION_ID}?include=user"
    atoms = loggable_atoms({
        "m": "GET", "H": "HTTP/1.1", "r": f"GET {raw_uri} HTTP/1.1", "u": "basic-user",
        "U": f"/api/sessions/{SESSION_ID}", "q": "include=user&api_key=k",
        "{raw_uri}e": raw_uri, "f": f"https://x.example/api/apple_device_tokens/{TOKEN}",
        "a": "curl\n" + FORGED, "{authorization}i": f"Bearer {SESSION_ID}",
        "{cookie}i": "s=1", "{http_authorization}e": f"Bearer {SESSION_ID}",
        "{device-check}i": "secret-check", "{location}o": f"http://h/api/sessions/{SESSION_ID}",
        "{user-agent}i": "curl\x1b", "s": "200", "B": 12,
    })
    assert SESSION_ID not in str(atoms) and TOKEN not in str(atoms)
    assert atoms["r"] == f"GET /api/sessions/{sha8(SESSION_ID)}?include=user HTTP/1.1"
    assert atoms["U"] == f"/api/sessions/{sha8(SESSION_ID)}"
    assert atoms["q"] == "include=user"
    assert atoms["f"] == f"https://x.example/api/apple_device_tokens/{sha8(TOKEN)}"
    assert atoms["a"] == "curl\\n" + FORGED
    assert atoms["{user-agent}i"] == "curl\\x1b"
    for header in ("{authorization}i", "{cookie}i", "{http_authorization}e", "{device-check}i",
                   "u"):
        assert atoms[header] == "-"
    assert (atoms["s"], atoms["B"]) == ("200", 12)


def test_only_the_atoms_the_format_shows_are_kept_and_they_are_redacted():
    shown = format_atoms('%(h)s "%(r)s" %(s)s "%(f)s" %({X-Forwarded-For}i)s')
    raw_uri = f"/api/sessions/{SESSION_ID}"
    atoms = loggable_atoms({
        "h": "10.0.0.1", "m": "GET", "H": "HTTP/1.1", "r": f"GET {raw_uri} HTTP/1.1",
        "{raw_uri}e": raw_uri, "s": "200", "f": f"https://x.example{raw_uri}",
        "{x-forwarded-for}i": "10.9.9.9\n", "a": "curl", "U": raw_uri}, shown)
    assert atoms == {"h": "10.0.0.1", "r": f"GET /api/sessions/{sha8(SESSION_ID)} HTTP/1.1",
                     "s": "200", "f": f"https://x.example/api/sessions/{sha8(SESSION_ID)}",
                     "{x-forwarded-for}i": "10.9.9.9\\n", "u": "-"}


def test_the_formatter_escapes_the_message_and_keeps_a_tracebacks_lines():
    formatter = EscapingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "error on %s",
                               ("/x\n" + FORGED,), exc_info)
    lines = formatter.format(record).split("\n")
    assert lines[0] == "ERROR error on /x\\n" + FORGED
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


# The live service: gunicorn's access log and its error log (where the service logs too).

def _read(path):
    return path.read_text(errors="replace") if path.exists() else ""


def _access_log(live_server):
    return Path(live_server.env["GUNICORN_ACCESS_LOG"])


def _wait_for_access_line(live_server, marker, timeout=10.0):
    """gunicorn writes a request's access line after sending the response."""
    deadline = time.monotonic() + timeout
    while marker not in _read(_access_log(live_server)):
        assert time.monotonic() < deadline, f"no access-log line with {marker}"
        time.sleep(0.05)


def _all_logs(live_server):
    return _read(_access_log(live_server)) + _read(live_server.stderr_path)


def _assert_clean(logs, secrets):
    for secret in secrets:
        assert secret not in logs and secret.upper() not in logs
    assert not [line for line in logs.splitlines()
                if line.startswith((FORGED[:20], FORGED_APP_LINE))]


@pytest.mark.slow
def test_the_live_logs_hold_no_secret_and_no_forged_line(live):
    iphone = PoparazziClient(live.url)
    iphone.create_session()
    token = new_token()
    assert iphone.patch_token(token).status_code == 200
    assert iphone.request("GET", f"/api/sessions/{iphone.session_id}/relationships/user",
                          extra_headers={"Referer": f"https://x.example/api/sessions/"
                                                    f"{iphone.session_id}",
                                         "User-Agent": "Poparazzi\x85"}).status_code == 200
    forged = "/api/configs/3.1.23%0D%0A" + FORGED.replace(" ", "%20")
    http = requests.Session()
    http.trust_env = False
    http.get(live.url + forged, headers={"Accept": "application/vnd.api+json"}, timeout=10)
    marker = f"/api/configs/{uuid.uuid4().hex}"  # a UUID would be redacted
    http.get(live.url + marker, timeout=10)
    http.close()
    iphone.close()
    _wait_for_access_line(live, marker)

    logs = _all_logs(live)
    _assert_clean(logs, [iphone.session_id, token])
    assert sha8(iphone.session_id) in logs and sha8(token) in logs
    assert "Authorization" not in logs and "Bearer" not in logs
    assert "Poparazzi\\x85" in logs  # NEL: a line break to some readers


@pytest.mark.slow
def test_a_503_log_line_names_no_secret_and_forges_nothing(live_server, app):
    """Last in this module: cutting the database connections makes each worker's next
    request 503 (the pool then reconnects)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("only PostgreSQL connections can be cut from outside")
    iphone = PoparazziClient(live_server.url)
    iphone.create_session()
    since = live_server.log_size()
    cut_database_connections(app)
    secret_segment = f"{iphone.session_id}\n{FORGED_APP_LINE}"
    path = f"/api/sessions/{iphone.session_id}%0A{FORGED_APP_LINE.replace(' ', '%20')}"
    statuses = [iphone.request("GET", path).status_code for _ in range(live_server.workers * 2)]
    iphone.close()
    assert 503 in statuses

    errors = live_server.logs(since, limit=10**7)
    assert f"on GET /api/sessions/{sha8(secret_segment)}: " in errors
    _assert_clean(errors, [iphone.session_id])


def _unique_violation(app, token):
    """The IntegrityError the database raises for a second row with ``token`` (on
    PostgreSQL its DETAIL names the token; the engine hides the bound parameters)."""
    insert = sa.text("INSERT INTO devices (id, channel, token, environment, is_voip, "
                     "is_invalidated, created_at, updated_at, last_seen_at) VALUES (:id, "
                     "'ios_push', :token, 'production', false, false, :now, :now, :now)")
    now = datetime.now(UTC)
    with app.app_context():
        with db.session.begin_nested():
            db.session.execute(insert, {"id": uuid.uuid4().hex, "token": token, "now": now})
        try:
            with db.session.begin_nested():
                db.session.execute(insert, {"id": uuid.uuid4().hex, "token": token,
                                            "now": now})
        except sa.exc.IntegrityError:
            return sys.exc_info()
    raise AssertionError("the second row was accepted")


@pytest.mark.parametrize("formatter", [text_formatter(), json_formatter()],
                         ids=["text", "json"])
def test_a_database_errors_details_reach_no_log_line(app, formatter):
    token = new_token()
    exc_info = _unique_violation(app, token)
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "error on %s: %s",
                               ("/api/devices", f"{exc_info[1]}\n[parameters: ('{token}',)]"),
                               exc_info)
    line = formatter.format(record)
    assert token not in line.lower() and "IntegrityError" in line
    assert "[parameters: [redacted]]" in line
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert token in str(exc_info[1])  # PostgreSQL's DETAIL: Key (channel, token)=(...)
        assert "DETAIL: [redacted]" in line


@pytest.mark.parametrize("formatter", [text_formatter(), json_formatter()],
                         ids=["text", "json"])
def test_every_kind_of_secret_is_redacted_in_a_line(formatter):
    secrets = [SESSION_ID, f"pat_{'q' * 43}", f"psk_{'r' * 43}", JWT, TOKEN, "+15551234567"]
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "%s \u202e %s",
                               (" ".join(secrets), f"<{TOKEN[:32]} {TOKEN[32:]}>"), None)
    line = formatter.format(record)
    for secret in [*secrets, TOKEN[:32]]:
        assert secret not in line
    assert "\u202e" not in line and "\\u202e" in line


@pytest.fixture(scope="module", params=["text", "json"])
def logged_server(request, service_env, tmp_path_factory):
    """gunicorn (2 workers) logging in one format, its access log in a file."""
    log_dir = tmp_path_factory.mktemp(f"logs-{request.param}")
    env = {**service_env, "LOG_FORMAT": request.param,
           "GUNICORN_ACCESS_LOG": str(log_dir / "access.log")}
    server = LiveServer(free_port(), env, log_dir, workers=2)
    server.start(timeout=90)
    yield server
    server.stop()


def _every_place(session_id, secrets):
    """(method, target, headers, body): each secret in the path, the query, the headers
    and the body, answered 2xx, 400, 401, 404 and 405."""
    pat, psk, jwt, token, phone = secrets
    body = json.dumps({"data": {"type": "devices", "attributes": {
        "channel": "ios_push", "token": token, "phone_number": phone, "key": psk}}})
    return [
        ("DELETE", f"/api/auth_tokens/{pat}", {}, None),
        ("GET", f"/api/users/{session_id}", {}, None),
        ("GET", f"/v1/devices/{session_id}", {}, None),
        ("GET", f"/api/users/{jwt}/devices", {}, None),
        ("GET", f"/api/users?bearer={pat}&sid={session_id}&x={jwt}&include={token}", {}, None),
        ("GET", f"/api/users?filter[phone_number]=%2B{phone[1:]}&page[size]={psk}", {}, None),
        ("GET", f"/api/users?filter[phone_number]={phone}", {}, None),
        ("GET", "/api/configs/3.1.23", {"Referer": f"https://x.example/{pat}?s={session_id}",
                                        "User-Agent": f"Poparazzi {jwt} \u202e".encode(),
                                        "X-Request-ID": pat}, None),
        ("PUT", f"/api/apple_device_tokens/{token}", {"X-Api-Key": psk}, None),
        ("POST", "/api/devices", {"Authorization": f"Bearer {session_id}"}, body),
        ("POST", "/api/devices", {"Authorization": f"Bearer {pat}"}, body[:-3]),
        ("GET", f"/nowhere/{psk}/{phone}", {"Authorization": f"Bearer {jwt}"}, None),
    ]


@pytest.mark.slow
def test_no_secret_from_any_place_reaches_either_log_format(logged_server):
    iphone = PoparazziClient(logged_server.url)
    iphone.create_session()
    secrets = [f"pat_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}",
               f"psk_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}",
               f"eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiI{uuid.uuid4().hex}In0.{uuid.uuid4().hex}",
               new_token(), f"+1555{str(uuid.uuid4().int)[:7]}"]
    http = requests.Session()
    http.trust_env = False
    statuses = set()
    for method, target, headers, body in _every_place(iphone.session_id, secrets):
        headers = {"Accept": "application/vnd.api+json",
                   "Content-Type": "application/vnd.api+json", **headers}
        statuses.add(http.request(method, logged_server.url + target, headers=headers,
                                  data=body, timeout=10).status_code)
    marker = f"/api/configs/{uuid.uuid4().hex}"
    http.get(logged_server.url + marker, timeout=10)
    http.close()
    iphone.close()
    assert {200, 400, 401, 404, 405} <= statuses, statuses
    _wait_for_access_line(logged_server, marker if logged_server.env["LOG_FORMAT"] == "text"
                          else "/api/configs/<bundle_version>")

    logs = _all_logs(logged_server)
    assert "/api/users" in logs
    for secret in [iphone.session_id, *secrets[:4], secrets[4][1:]]:
        assert secret not in logs and secret.upper() not in logs, secret
    assert "\u202e" not in logs
