"""Seed 001, ``/api/v1/auth_tokens``: plain JSON over the same auth tokens as JSON:API's."""

import json

import pytest

from tests.test_credentials import (  # noqa: F401
    NOT_IDS,
    auth_token_document,
    id_token,
    key_server,
    provider,
)

PLAIN = {"Content-Type": "application/json", "Accept": "application/json"}
BASE = "/api/v1/auth_tokens"


def plain(headers=None):
    return {**PLAIN, "Authorization": None, **(headers or {})}


def create(client, **claims):
    body = {"id_token": id_token(**claims), "device_fingerprint": "b6f0c2a4e1d94b0e"}
    response = client.post(f"{BASE}/", data=json.dumps(body), headers=plain())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def error(response, status, name):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == name and isinstance(body["message"], str), body
    return body


def test_create_get_list_delete(client, provider):  # noqa: F811
    made = create(client)
    assert isinstance(made["id"], int) and made["id"] > 0 and made["value"].startswith("pat_")
    assert made["device_fingerprint"] == "b6f0c2a4e1d94b0e"
    headers = plain({"Authentication": made["value"]})
    listed = client.get(f"{BASE}/", headers=headers).get_json()
    assert [token["id"] for token in listed["tokens"]] == [made["id"]]
    one = client.get(f"{BASE}/{made['id']}", headers=headers).get_json()["token"]
    assert one["id"] == made["id"] and "value" not in one
    assert client.get(BASE, headers=plain({"Authorization": f"Bearer {made['value']}"})
                      ).status_code == 200
    deleted = client.delete(f"{BASE}/{made['id']}", headers=headers)
    assert deleted.status_code == 200 and deleted.get_json() == {}
    error(client.get(f"{BASE}/", headers=headers), 401, "NotAuthenticated")


def test_one_token_is_the_same_on_json_api(client, provider):  # noqa: F811
    made = create(client)
    document = client.get(f"/api/auth_tokens/{made['id']}",
                          headers={"Authorization": f"Bearer {made['value']}"}).get_json()
    assert document["data"]["id"] == str(made["id"])


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "name"), [
    ("POST", "/", {"id_token": "not-a-jwt", "device_fingerprint": "f"}, {}, 401,
     "NotAuthenticated"),
    ("POST", "/", {"device_fingerprint": "f"}, {}, 400, "InvalidRequest"),
    ("POST", "/", {"id_token": "x", "device_fingerprint": ""}, {}, 400, "InvalidRequest"),
    ("POST", "/", "{not json", {}, 400, "InvalidRequest"),
    ("POST", "/", [], {}, 400, "InvalidRequest"),
    ("POST", "/", {"id_token": "x"}, {"Content-Type": "text/plain"}, 415,
     "UnsupportedMediaType"),
    ("POST", "/", {"id_token": "x" * 70000}, {}, 413, "RequestTooLarge"),
    ("GET", "/", None, {}, 401, "NotAuthenticated"),
    ("GET", "/7", None, {"Authentication": "pat_unknown"}, 401, "NotAuthenticated"),
    ("PUT", "/7", {}, {}, 405, "MethodNotAllowed"),
    ("GET", "/7/more", None, {}, 404, "NotFound"),
])
def test_every_error_is_in_the_seeds_shape(client, app, provider, method, path, body,  # noqa: F811
                                           headers, status, name):
    data = body if isinstance(body, str) or body is None else json.dumps(body)
    response = client.open(BASE + path, method=method, data=data, headers=plain(headers))
    error(response, status, name)


def test_another_users_token_is_not_found(client, provider):  # noqa: F811
    mine, theirs = create(client, subject="a"), create(client, subject="b")
    headers = plain({"Authentication": mine["value"]})
    error(client.get(f"{BASE}/{theirs['id']}", headers=headers), 404, "NotFound")
    error(client.delete(f"{BASE}/{theirs['id']}", headers=headers), 404, "NotFound")
    error(client.get(f"{BASE}/not-a-number", headers=headers), 404, "NotFound")


@pytest.mark.parametrize("token_id", NOT_IDS)
def test_a_token_id_that_is_not_one_is_not_found(client, provider, token_id):  # noqa: F811
    made = create(client)
    headers = plain({"Authentication": made["value"]})
    for method in ("GET", "DELETE"):
        response = client.open(f"{BASE}/{token_id}", method=method, headers=headers)
        assert error(response, 404, "NotFound")["field"] == "id"
    assert client.get(f"{BASE}/{made['id']}", headers=headers).status_code == 200
