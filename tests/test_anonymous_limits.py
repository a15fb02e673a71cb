"""Anonymous writes are limited per client address: creating a session
(SESSION_CREATE_RATE_LIMIT) and the token PATCH without a session
(ANONYMOUS_WRITE_RATE_LIMIT). Refusals are 429 RATE_LIMITED with Retry-After."""

import secrets

import pytest

from tests.factories import bearer, create_session, new_token, register_token, token_document
from tests.test_rate_limit import assert_limited, random_address

TIGHT = "2/day"  # a window of a day: a test does not straddle a window boundary


def _create_session(client, address):
    return client.post("/api/sessions", environ_base={"REMOTE_ADDR": address}, json={
        "data": {"type": "sessions", "attributes": {"is_cookie_based": False}}})


def _anonymous_token_patch(client, address, token=None):
    token = token or new_token()
    return client.patch(f"/api/apple_device_tokens/{token}", json=token_document(token),
                        environ_base={"REMOTE_ADDR": address})


def _malformed_token_patch(client, address):
    return _anonymous_token_patch(client, address, "not-a-token")


ANONYMOUS_WRITES = {
    "session creation": ("SESSION_CREATE_RATE_LIMIT", _create_session, 201),
    "token PATCH without a session": ("ANONYMOUS_WRITE_RATE_LIMIT", _anonymous_token_patch,
                                      401),
    "the same, with a malformed token": ("ANONYMOUS_WRITE_RATE_LIMIT",
                                         _malformed_token_patch, 401),
}


@pytest.mark.parametrize("setting, write, status", ANONYMOUS_WRITES.values(),
                         ids=ANONYMOUS_WRITES)
def test_anonymous_writes_are_limited_per_address(client, app, monkeypatch, setting, write,
                                                  status):
    monkeypatch.setitem(app.config, setting, TIGHT)
    address, other_address = random_address(), random_address()

    assert [write(client, address).status_code for _ in range(2)] == [status, status]
    assert_limited(write(client, address), 86400)
    assert write(client, other_address).status_code == status
    ipv6 = f"2001:db8:{secrets.randbelow(65536):x}:{secrets.randbelow(65536):x}"
    assert [write(client, f"{ipv6}::{n}").status_code for n in (1, 2)] == [status, status]
    assert_limited(write(client, f"{ipv6}::3"), 86400)  # the same /64


def test_a_refused_logout_changes_nothing(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "ANONYMOUS_WRITE_RATE_LIMIT", "0/day")
    session_id = create_session(client)
    token = register_token(client, session_id)

    assert_limited(client.patch(f"/api/apple_device_tokens/{token}",
                                json=token_document(token)), 86400)

    assert client.get(f"/api/apple_device_tokens/{token}",
                      headers=bearer(session_id)).status_code == 200


def test_writes_with_a_session_are_not_anonymous(client, app, monkeypatch):
    session_id = create_session(client)
    monkeypatch.setitem(app.config, "ANONYMOUS_WRITE_RATE_LIMIT", "0/day")
    monkeypatch.setitem(app.config, "SESSION_CREATE_RATE_LIMIT", "0/day")

    for _ in range(3):
        register_token(client, session_id)
    assert_limited(_create_session(client, "127.0.0.1"), 86400)
