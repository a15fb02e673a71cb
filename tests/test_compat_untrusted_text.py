"""The seed APIs refuse what the JSON:API surface refuses in a body — nesting too deep, NUL,
lone surrogates, control characters in names — each in its own error shape, storing
nothing (PostgreSQL cannot store NUL; SQLite would: the two must agree)."""

import json

import pytest

from tests.compat_helpers import access_token, devices_table, send
from tests.jsonapi_helpers import Caller

TOKEN = "ab" * 32
DEEP = "[" * 1000 + "]" * 1000

ALLMINE = {"token": TOKEN, "platform": "ios", "deviceId": "phone-1", "timezone": "UTC"}
DEVICES_V1 = {"channel": "ios_push", "token": TOKEN, "os_version": "iOS 18.2"}


def _raw(body):
    """JSON text for ``body``, with any lone surrogate written as an escape."""
    return json.dumps(body)


@pytest.mark.parametrize("path, valid, status_of", [
    ("/api/v1/notifications/device-token", ALLMINE,
     lambda response: response.get_json()["statusCode"]),
    ("/v1/devices", DEVICES_V1, lambda response: response.status_code),
])
@pytest.mark.parametrize("spoil", [
    lambda body: {**body, "timezone" if "timezone" in body else "os_version": "a\x00b"},
    lambda body: {**body, "timezone" if "timezone" in body else "os_version": "\ud800"},
    lambda body: {**body, "bad\x1bname": 1},
    lambda body: DEEP,
], ids=["nul", "lone-surrogate", "control-in-name", "deep"])
def test_untrusted_text_is_refused_in_each_seeds_shape(client, app, path, valid, status_of,
                                                       spoil):
    caller = Caller(client, app)
    headers = {"Authorization": f"Bearer {access_token(client, caller.session_id)}"}
    before = devices_table(app)
    body = spoil(valid)
    response = send(client, "POST", path, body if isinstance(body, str) else _raw(body),
                    headers)
    assert response.status_code == 400 and status_of(response) == 400, response.get_json()
    assert response.mimetype == "application/json"
    assert devices_table(app) == before
