"""A notification from a backend service to a user's phones, end to end: accepted over
JSON:API into the ledger, sent by the push worker through the fake APNs, and counted."""

import pytest

from tests.compat_helpers import api_key
from tests.factories import bearer, register_token
from tests.jsonapi_helpers import Caller, body
from tests.push_rows import BUNDLE_ID
from tests.test_dispatch import apns_environ, fake, send_due  # noqa: F401

pytestmark = pytest.mark.committed  # the worker reads the ledger on its own connection


@pytest.mark.parametrize("queue", ["embedded", "procrastinate"])
def test_a_users_phones_each_get_the_notification_once(
        client, app, fake, key_file, queue, request, monkeypatch):  # noqa: F811
    if queue == "procrastinate" and request.config.getoption("--db") != "postgresql":
        pytest.skip("procrastinate runs on PostgreSQL only")
    monkeypatch.setitem(app.config, "PUSH_QUEUE", queue)  # accepting enqueues its jobs
    caller = Caller(client, app)
    tokens = {register_token(client, caller.session_id, bundle_id=BUNDLE_ID)
              for _ in range(2)}
    headers = {**bearer(api_key(app)), "Idempotency-Key": "order-42"}
    document = {"data": {"type": "notifications",
                         "attributes": {"alert": {"title": "Hi", "body": "Your order shipped"},
                                        "data": {"order": "42"}},
                         "relationships": {"users": {"data": [
                             {"type": "users", "id": caller.user_id}]}}}}
    accepted = body(client.post("/api/notifications", json=document, headers=headers), 202)
    again = body(client.post("/api/notifications", json=document, headers=headers), 202)
    assert again["data"]["id"] == accepted["data"]["id"]  # a retried POST sends nothing new
    assert accepted["data"]["attributes"]["status"] == "queued"

    assert send_due(app, apns_environ(fake, key_file), PUSH_QUEUE=queue)["sent"] == 2

    assert sorted(entry.token for entry in fake.log) == sorted(tokens)  # each once
    assert {(entry.topic, entry.push_type, entry.status) for entry in fake.log} == {
        (BUNDLE_ID, "alert", 200)}
    shown = body(client.get(f"/api/notifications/{accepted['data']['id']}",
                            headers=headers), 200)["data"]["attributes"]
    assert shown["status"] == "done" and shown["counts"]["sent"] == 2
