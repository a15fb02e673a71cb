"""iOS 18 broadcast channels end to end through the fake APNs: a backend service makes a
channel at the channel management API (its own port), broadcasts on it (one request, one
delivery, whatever the audience), and deletes it; a channel APNs no longer knows ends."""

import json
import uuid

import pytest

from app.extensions import db
from app.models import Delivery, LiveActivityChannel
from tests.compat_helpers import api_key
from tests.factories import bearer
from tests.jsonapi_helpers import Caller, body
from tests.push_rows import BUNDLE_ID
from tests.test_credentials import _create_key
from tests.test_dispatch import apns_config, apns_environ, fake, send_due  # noqa: F401
from tests.test_live_activities import register, register_device, send, update

CHANNELS = "/api/live_activity_channels"
MANAGE = "live_activities:manage"


def manager_key(app):
    return json.loads(_create_key(app, "--name", f"m-{uuid.uuid4()}", "--scope", MANAGE,
                                  "--scope", "notifications:send").output)["key"]


@pytest.fixture
def environ(app, fake, key_file, monkeypatch):  # noqa: F811
    """APNs configured in the app (the API makes channels) and for the worker, the
    management hosts pointing at the fake's management port."""
    environ = apns_environ(fake, key_file, APNS_BROADCAST_MANAGE_PRODUCTION_URL=fake.manage_url,
                           APNS_BROADCAST_MANAGE_SANDBOX_URL=fake.manage_url)
    for name, value in apns_config(environ).items():
        monkeypatch.setitem(app.config, name, value)
    return environ


def create(client, key, status=201, **attributes):
    return body(client.post(CHANNELS, headers=bearer(key), json={
        "data": {"type": "live_activity_channels", "attributes": attributes}}), status)


def broadcast(client, service, channel_id, attributes, status=202):
    return body(client.post("/api/notifications", headers=bearer(service), json={
        "data": {"type": "notifications", "attributes": attributes, "relationships": {
            "channel": {"data": {"type": "live_activity_channels", "id": channel_id}}}}}),
        status)


def stored_channel(app, channel_id):
    with app.app_context():
        channel = db.session.get(LiveActivityChannel, uuid.UUID(channel_id))
        db.session.expunge_all()
        db.session.remove()
    return channel


@pytest.mark.committed
def test_a_channel_is_made_broadcast_on_and_deleted(client, app, fake, environ):  # noqa: F811
    key = manager_key(app)
    made = create(client, key, message_storage_policy="most_recent_message_stored")["data"]
    channel_id = made["attributes"]["channel_id"]
    assert made["attributes"]["state"] == "open"
    assert made["attributes"]["environment"] == "production"
    request = fake.manage_log[0]
    assert (request.headers[":method"], request.headers[":path"]) == (
        "POST", f"/1/apps/{BUNDLE_ID}/channels")
    assert request.payload == {"message-storage-policy": 1, "push-type": "LiveActivity"}
    assert fake.channels == {channel_id: 1}
    listed = body(client.get(CHANNELS, headers=bearer(key)), 200)["data"]
    assert [item["id"] for item in listed] == [made["id"]]

    # activities on the channel: however many, the broadcast is one request
    for _ in range(3):
        caller = Caller(client, app)
        device_id, _ = register_device(client, caller)
        register(client, caller, device_id, None, channel_id=channel_id)
    accepted = broadcast(client, key, made["id"], update(7, priority=10))
    assert accepted["data"]["attributes"]["counts"]["pending"] == 1
    assert send_due(app, environ)["sent"] == 1
    [sent] = fake.log
    assert sent.headers[":path"] == f"/4/broadcasts/apps/{BUNDLE_ID}"
    assert sent.headers["apns-channel-id"] == channel_id
    assert sent.headers["apns-push-type"] == "liveactivity"
    assert sent.headers["apns-priority"] == "10"
    assert "apns-topic" not in sent.headers and sent.status == 200
    assert sent.payload["aps"]["event"] == "update"
    assert sent.payload["aps"]["content-state"] == {"eta": 7}

    assert client.delete(f"{CHANNELS}/{made['id']}", headers=bearer(key)).status_code == 204
    deleted = fake.manage_log[-1]
    assert (deleted.headers[":method"], deleted.headers["apns-channel-id"]) == (
        "DELETE", channel_id)
    assert fake.channels == {}
    body(client.get(f"{CHANNELS}/{made['id']}", headers=bearer(key)), 404)
    broadcast(client, key, made["id"], update(8), status=404)


@pytest.mark.committed
def test_a_broadcast_to_a_channel_deleted_at_apns_ends_the_channel(client, app, fake,  # noqa: F811
                                                                   environ):
    key = manager_key(app)
    made = create(client, key)["data"]  # no message stored: apns-expiration 0
    fake.delete_channel(made["attributes"]["channel_id"])

    broadcast(client, key, made["id"], update(1))
    assert send_due(app, environ)["invalidated"] == 1
    [refused] = fake.log
    assert refused.headers["apns-expiration"] == "0"
    assert refused.status == 400
    channel = stored_channel(app, made["id"])
    assert (channel.ended_reason, channel.ended_at is not None) == ("ChannelNotRegistered",
                                                                    True)
    shown = body(client.get(f"{CHANNELS}/{made['id']}", headers=bearer(key)), 200)["data"]
    assert shown["attributes"]["state"] == "ended"

    refused_again = broadcast(client, key, made["id"], update(2), status=422)
    assert refused_again["errors"][0]["code"] == "CHANNEL_ENDED"
    assert refused_again["errors"][0]["source"]["pointer"] == "/data/relationships/channel"
    # deleting it here needs no APNs call: APNs has forgotten it already
    calls = len(fake.manage_log)
    assert client.delete(f"{CHANNELS}/{made['id']}", headers=bearer(key)).status_code == 204
    assert len(fake.manage_log) == calls


@pytest.mark.committed
def test_channels_need_the_manage_scope_and_are_their_makers(client, app, fake, environ):  # noqa: F811
    sender = api_key(app)  # notifications:send only
    errors = create(client, sender, status=403)["errors"]
    assert errors[0]["code"] == "INSUFFICIENT_SCOPE"
    body(client.get(CHANNELS, headers=bearer(sender)), 403)
    assert fake.manage_log == []

    owner, stranger = manager_key(app), manager_key(app)
    made = create(client, owner)["data"]
    body(client.get(f"{CHANNELS}/{made['id']}", headers=bearer(stranger)), 404)
    body(client.delete(f"{CHANNELS}/{made['id']}", headers=bearer(stranger)), 404)
    assert body(client.get(CHANNELS, headers=bearer(stranger)), 200)["data"] == []
    assert len(fake.channels) == 1
    person = Caller(client, app)
    body(client.get(CHANNELS, headers=person.headers), 403)


@pytest.mark.committed
@pytest.mark.parametrize(("attributes", "status", "pointer"), [
    ({"message_storage_policy": "forever"}, 400, "/data/attributes/message_storage_policy"),
    ({"environment": "staging"}, 400, "/data/attributes/environment"),
    ({"channel_id": "Y2hhbm5lbA=="}, 403, "/data/attributes/channel_id"),  # APNs's to give
])
def test_a_bad_channel_is_refused_before_apns_is_asked(client, app, fake, environ,  # noqa: F811
                                                       attributes, status, pointer):
    errors = create(client, manager_key(app), status=status, **attributes)["errors"]
    assert errors[0]["source"]["pointer"] == pointer
    assert fake.manage_log == [] and fake.channels == {}


@pytest.mark.committed
def test_apns_refusing_a_channel_keeps_nothing(client, app, fake, environ):  # noqa: F811
    fake.channel_limit = 0
    errors = create(client, manager_key(app), status=502)["errors"]
    assert "CannotCreateChannelConfig" in errors[0]["detail"]
    with app.app_context():
        assert db.session.query(LiveActivityChannel).count() == 0


@pytest.mark.committed
def test_a_broadcast_takes_no_other_recipients(client, app, fake, environ):  # noqa: F811
    key = manager_key(app)
    made = create(client, key)["data"]
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    activity = register(client, caller, device_id, "ab" * 32)
    document = {"data": {"type": "notifications", "attributes": update(1), "relationships": {
        "channel": {"data": {"type": "live_activity_channels", "id": made["id"]}},
        "live_activities": {"data": [{"type": "live_activities", "id": activity["id"]}]}}}}
    errors = body(client.post("/api/notifications", headers=bearer(key), json=document),
                  422)["errors"]
    assert errors[0]["code"] == "WRONG_RECIPIENTS"
    start = {"push_type": "liveactivity", "event": "start", "timestamp": 1,
             "attributes_type": "T", "attributes": {}, "content_state": {}}
    assert broadcast(client, key, made["id"], start, status=422)["errors"][0]["code"] == \
        "WRONG_RECIPIENTS"
    broadcast(client, key, str(uuid.uuid4()), update(1), status=404)
    with app.app_context():
        assert db.session.query(Delivery).count() == 0
    send(client, key, update(2), live_activities=[activity["id"]])  # still works alone


@pytest.mark.committed
def test_without_apns_a_channel_is_refused_and_nothing_kept(client, app):
    """No retry helps until an operator configures APNs: a 422, not a 5xx."""
    errors = create(client, manager_key(app), status=422)["errors"]
    assert errors[0]["code"] == "APNS_NOT_CONFIGURED"
    with app.app_context():
        assert db.session.query(LiveActivityChannel).count() == 0
