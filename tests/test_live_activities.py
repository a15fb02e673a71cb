"""Running Live Activities end to end: the app registers each with its push token, a
backend service reads them and sends updates and an end through the fake APNs, and an
activity that ended takes no more."""

import json
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy import select

from app.extensions import db
from app.models import Delivery, Device, LiveActivity, Notification
from app.models.types import utcnow
from app.security.crypto import unseal
from tests.compat_helpers import api_key
from tests.factories import bearer, new_token
from tests.fake_apns import Answer
from tests.jsonapi_helpers import Caller, body
from tests.push_rows import BUNDLE_ID
from tests.test_dispatch import apns_environ, fake, send_due  # noqa: F401

ACTIVITIES = "/api/live_activities"
TOPIC = f"{BUNDLE_ID}.push-type.liveactivity"


def register_device(client, caller, push_to_start=None):
    attributes = {"channel": "ios_push", "token": new_token(), "bundle_id": BUNDLE_ID,
                  "fingerprint": new_token()[:16]}
    if push_to_start:
        attributes["live_activity_push_to_start_token"] = push_to_start
    document = body(client.post("/api/devices", headers=caller.headers, json={
        "data": {"type": "devices", "attributes": attributes}}), 201)
    return document["data"]["id"], attributes["token"]


def activity_document(device_id, token=None, activity_id="match-42", **attributes):
    return {"data": {"type": "live_activities", "attributes": {
        "activity_id": activity_id, "attributes_type": "MatchAttributes",
        **({"token": token} if token else {}), **attributes},
        "relationships": {"device": {"data": {"type": "devices", "id": device_id}}}}}


def register(client, caller, device_id, token, status=201, **attributes):
    return body(client.post(ACTIVITIES, headers=caller.headers,
                            json=activity_document(device_id, token, **attributes)),
                status)["data"]


def stored(app, activity_id):
    with app.app_context():
        activity = db.session.get(LiveActivity, uuid.UUID(activity_id))
        db.session.expunge_all()
        db.session.remove()
    return activity


def send(client, service, attributes, status=202, **linkage):
    relationships = {name: {"data": [{"type": name, "id": id_} for id_ in ids]}
                     for name, ids in linkage.items()}
    return body(client.post("/api/notifications", headers=bearer(service), json={
        "data": {"type": "notifications", "attributes": attributes,
                 "relationships": relationships}}), status)


def refused_updates():
    """``pushreg_live_activity_updates_refused_total`` for updates, so far."""
    return REGISTRY.get_sample_value("pushreg_live_activity_updates_refused_total",
                                     {"event": "update"}) or 0


def update(eta, **more):
    return {"push_type": "liveactivity", "event": "update", "content_state": {"eta": eta},
            **more}


# -- the resource ---------------------------------------------------------------------


def test_an_activity_is_registered_rotated_read_and_deleted(client, app):
    owner, stranger = Caller(client, app), Caller(client, app)
    device_id, _ = register_device(client, owner)
    first, second = new_token(), new_token()

    created = register(client, owner, device_id, first)
    assert created["attributes"]["state"] == "running"
    assert "token" not in created["attributes"]  # write-only
    assert created["relationships"]["device"]["data"]["id"] == device_id
    rotated = register(client, owner, device_id, second, status=200)
    assert rotated["id"] == created["id"]
    with app.app_context():
        assert unseal(stored(app, created["id"]).token) == second

    path = f"{ACTIVITIES}/{created['id']}"
    assert body(client.get(path, headers=owner.headers), 200)["data"]["id"] == created["id"]
    assert [item["id"] for item in body(client.get(ACTIVITIES, headers=owner.headers),
                                        200)["data"]] == [created["id"]]
    body(client.get(path, headers=stranger.headers), 404)
    assert body(client.get(ACTIVITIES, headers=stranger.headers), 200)["data"] == []
    body(client.delete(path, headers=stranger.headers), 404)
    body(client.post(ACTIVITIES, headers=stranger.headers,
                     json=activity_document(device_id, new_token())), 404)

    service = bearer(api_key(app))
    listed = body(client.get(f"{ACTIVITIES}?filter[attributes_type]=MatchAttributes"
                             f"&filter[user]={owner.user_id}", headers=service), 200)
    assert [item["id"] for item in listed["data"]] == [created["id"]]
    assert body(client.get(f"{ACTIVITIES}?filter[activity_id]=other", headers=service),
                200)["data"] == []
    assert body(client.get(path, headers=service), 200)["data"]["id"] == created["id"]
    body(client.delete(path, headers=service), 403)  # deleting is the owner's

    assert client.delete(path, headers=owner.headers).status_code == 204
    body(client.get(path, headers=owner.headers), 404)


@pytest.mark.parametrize(("attributes", "status", "pointer"), [
    ({"token": "not hex"}, 400, "/data/attributes/token"),
    ({}, 400, "/data/attributes/token"),  # neither a token nor a channel
    ({"token": "ab" * 32, "channel_id": "c29tZQ=="}, 400, "/data/attributes/token"),
    ({"token": "ab" * 32, "activity_id": "x" * 129}, 400, "/data/attributes/activity_id"),
    ({"token": "ab" * 32, "channel_id": "not base64!"}, 400, "/data/attributes/channel_id"),
])
def test_a_bad_registration_is_refused_and_nothing_is_written(client, app, attributes,
                                                              status, pointer):
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    document = activity_document(device_id)
    document["data"]["attributes"].update(attributes)
    errors = body(client.post(ACTIVITIES, headers=caller.headers, json=document),
                  status)["errors"]
    assert errors[0]["source"]["pointer"] == pointer
    with app.app_context():
        assert db.session.scalars(select(LiveActivity)).all() == []


# -- sending to activities --------------------------------------------------------------


@pytest.mark.committed
def test_start_then_three_updates_then_end_then_an_update_is_refused(
        client, app, fake, key_file):  # noqa: F811
    caller = Caller(client, app)
    push_to_start, activity_token = new_token(), new_token()
    device_id, _ = register_device(client, caller, push_to_start=push_to_start)
    service = api_key(app)
    environ = apns_environ(fake, key_file)

    send(client, service, {"alert": None, "push_type": "liveactivity", "event": "start",
                           "timestamp": 1_900_000_000, "attributes_type": "MatchAttributes",
                           "attributes": {"home": "A", "away": "B"},
                           "content_state": {"score": "0-0"}},
         users=[caller.user_id])
    assert send_due(app, environ)["sent"] == 1
    activity = register(client, caller, device_id, activity_token)  # ActivityKit's token

    before = int(time.time())
    for eta in (10, 20, 30):  # each sent before the next is accepted: none collapses
        send(client, service, update(eta), live_activities=[activity["id"]])
        assert send_due(app, environ)["sent"] == 1
    send(client, service, {"push_type": "liveactivity", "event": "end", "priority": 10,
                           "timestamp": 1_900_000_060,  # given: kept, not the acceptance's
                           "content_state": {"eta": 0}, "dismissal_date": 1_900_000_100,
                           "stale_date": 1_900_000_050, "relevance_score": 0.5},
         live_activities=[activity["id"]])
    assert send_due(app, environ)["sent"] == 1

    start, *updates, end = fake.log
    assert (start.token, start.topic, start.push_type) == (push_to_start, TOPIC,
                                                           "liveactivity")
    assert start.payload["aps"]["event"] == "start"
    assert start.payload["aps"]["timestamp"] == 1_900_000_000
    for entry, eta in zip(updates, (10, 20, 30), strict=True):
        assert entry.token == activity_token and entry.status == 200
        assert entry.headers["apns-topic"] == TOPIC
        assert entry.headers["apns-push-type"] == "liveactivity"
        assert entry.headers["apns-priority"] == "5"  # Apple budgets priority 10
        aps = entry.payload["aps"]
        assert set(aps) == {"event", "content-state", "timestamp"}
        assert aps["event"] == "update" and aps["content-state"] == {"eta": eta}
        assert before <= aps["timestamp"] <= int(time.time())  # when it was accepted
    assert end.token == activity_token and end.headers["apns-priority"] == "10"
    assert end.payload["aps"] == {"event": "end", "content-state": {"eta": 0},
                                  "timestamp": 1_900_000_060,
                                  "stale-date": 1_900_000_050,
                                  "dismissal-date": 1_900_000_100, "relevance-score": 0.5}

    assert stored(app, activity["id"]).ended_reason == "End"
    counted = refused_updates()
    refused = send(client, service, update(40), status=422,
                   live_activities=[activity["id"]])
    assert refused["errors"][0]["code"] == "ACTIVITY_ENDED"
    assert refused_updates() == counted + 1
    send(client, service, update(41), status=404, live_activities=[str(uuid.uuid4())])
    assert refused_updates() == counted + 1  # no such activity: not an ended one
    assert refused["errors"][0]["source"]["pointer"] == "/data/relationships/live_activities/data/0"
    assert send_due(app, environ)["sent"] == 0 and len(fake.log) == 5
    body(client.post(ACTIVITIES, headers=caller.headers,  # an ended activity stays ended
                     json=activity_document(device_id, new_token())), 422)


@pytest.mark.committed
@pytest.mark.parametrize("answer", [Answer(410, "Unregistered"),
                                    Answer(400, "BadDeviceToken")])
def test_a_refused_activity_token_ends_that_activity_only(
        client, app, fake, key_file, answer):  # noqa: F811
    caller = Caller(client, app)
    push_to_start, activity_token = new_token(), new_token()
    device_id, device_token = register_device(client, caller, push_to_start=push_to_start)
    activity = register(client, caller, device_id, activity_token)
    other = register(client, caller, device_id, new_token(), activity_id="other")
    fake.answer(activity_token, answer)
    service = api_key(app)

    send(client, service, update(1), live_activities=[activity["id"], other["id"]])
    counts = send_due(app, apns_environ(fake, key_file))
    assert (counts["invalidated"], counts["sent"]) == (1, 1)

    assert stored(app, activity["id"]).ended_reason == answer.reason
    assert stored(app, other["id"]).ended_at is None
    with app.app_context():
        device = db.session.get(Device, uuid.UUID(device_id))
        assert (device.token, device.is_invalidated) == (device_token, False)
        assert unseal(device.live_activity_token) == push_to_start
    assert send(client, service, update(2), status=422,
                live_activities=[activity["id"]])["errors"][0]["code"] == "ACTIVITY_ENDED"


@pytest.mark.committed
def test_an_update_made_obsolete_before_it_was_sent_is_not_sent(
        client, app, fake, key_file):  # noqa: F811
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    activity = register(client, caller, device_id, new_token())
    service = api_key(app)
    first = send(client, service, update(1), live_activities=[activity["id"]])
    send(client, service, update(2), live_activities=[activity["id"]])

    counts = send_due(app, apns_environ(fake, key_file))
    assert (counts["sent"], counts["expired"]) == (1, 1)
    assert [entry.payload["aps"]["content-state"] for entry in fake.log] == [{"eta": 2}]
    shown = body(client.get(f"/api/notifications/{first['data']['id']}/deliveries",
                            headers=bearer(service)), 200)["data"]
    assert [(item["attributes"]["state"], item["attributes"]["reason"]) for item in shown] \
        == [("expired", "Superseded")]


@pytest.mark.committed
@pytest.mark.parametrize("chunk_size", [
    1,  # the end is sent before the update is looked at
    100,  # both in one chunk: they would leave together
])
def test_an_update_accepted_before_the_end_was_sent_is_not_sent_after_it(
        client, app, fake, key_file, chunk_size):  # noqa: F811
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    activity = register(client, caller, device_id, new_token())
    service = api_key(app)
    send(client, service, {"push_type": "liveactivity", "event": "end",
                           "content_state": {"eta": 0}}, live_activities=[activity["id"]])
    late = send(client, service, update(5), live_activities=[activity["id"]])

    counts = send_due(app, apns_environ(fake, key_file), PUSH_CHUNK_SIZE=chunk_size,
                      PUSH_CONCURRENCY=1)
    assert (counts["sent"], counts["failed"]) == (1, 1)
    assert [entry.payload["aps"]["event"] for entry in fake.log] == ["end"]
    shown = body(client.get(f"/api/notifications/{late['data']['id']}/deliveries",
                            headers=bearer(service)), 200)["data"]
    assert [(item["attributes"]["state"], item["attributes"]["reason"]) for item in shown] \
        == [("failed", "ActivityEnded")]


@pytest.mark.committed
def test_an_update_is_not_sent_while_an_end_accepted_before_it_is_being_sent_elsewhere(
        client, app, fake, key_file):  # noqa: F811
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    activity = register(client, caller, device_id, new_token())
    service = api_key(app)
    ending = send(client, service, {"push_type": "liveactivity", "event": "end",
                                    "content_state": {"eta": 0}},
                  live_activities=[activity["id"]])
    with app.app_context():  # another worker has claimed the end and is sending it
        db.session.execute(sa.update(Delivery).where(
            Delivery.notification_id == uuid.UUID(ending["data"]["id"])).values(
            state="sending", attempts=1, lease_until=utcnow() + timedelta(minutes=5)))
        db.session.commit()
    late = send(client, service, update(5), live_activities=[activity["id"]])

    counts = send_due(app, apns_environ(fake, key_file))
    assert (counts["sent"], counts["failed"]) == (0, 1)
    assert fake.log == []
    shown = body(client.get(f"/api/notifications/{late['data']['id']}/deliveries",
                            headers=bearer(service)), 200)["data"]
    assert [(item["attributes"]["state"], item["attributes"]["reason"]) for item in shown] \
        == [("failed", "ActivityEnded")]


@pytest.mark.committed
def test_an_audience_reaches_every_running_activity_it_matches(
        client, app, fake, key_file):  # noqa: F811
    service = api_key(app)
    tokens = []
    for _ in range(3):
        caller = Caller(client, app)
        device_id, _ = register_device(client, caller)
        tokens.append(new_token())
        register(client, caller, device_id, tokens[-1], activity_id="final")
        register(client, caller, device_id, new_token(), activity_id="semi")
    accepted = send(client, service, update(3, live_activity_audience={
        "attributes_type": "MatchAttributes", "activity_id": "final"}))
    assert accepted["data"]["attributes"]["counts"]["pending"] == 3
    assert send_due(app, apns_environ(fake, key_file))["sent"] == 3
    assert sorted(entry.token for entry in fake.log) == sorted(tokens)


def test_prune_deletes_ended_and_too_old_activities(client, app, monkeypatch):
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    kept = register(client, caller, device_id, new_token(), activity_id="kept")
    deleted = register(client, caller, device_id, new_token(), activity_id="old")
    with app.app_context():
        db.session.get(LiveActivity, uuid.UUID(deleted["id"])).created_at -= \
            timedelta(hours=13)
        db.session.commit()
    assert body(client.get(f"{ACTIVITIES}/{deleted['id']}", headers=caller.headers),
                200)["data"]["attributes"]["state"] == "ended"
    refused = send(client, api_key(app), update(1), status=422,
                   live_activities=[deleted["id"]])  # too old: no target any more
    assert refused["errors"][0]["code"] == "ACTIVITY_ENDED"
    result = app.test_cli_runner().invoke(args=["prune"])
    assert json.loads(result.output)["live_activities"] == 1
    with app.app_context():
        assert [activity.id for activity in db.session.scalars(select(LiveActivity))] == [
            uuid.UUID(kept["id"])]


# -- flask push send --live-activity-event ------------------------------------------------


def push_send(app, *args, exit_code=0):
    result = app.test_cli_runner().invoke(args=["push", "send", *args])
    assert result.exit_code == exit_code, result.output
    return json.loads(result.output) if exit_code == 0 else result.output


def test_push_send_updates_named_activities_and_an_audience(client, app):
    caller = Caller(client, app)
    device_id, _ = register_device(client, caller)
    named = register(client, caller, device_id, new_token(), activity_id="named")
    register(client, caller, device_id, new_token(), activity_id="final")
    register(client, caller, device_id, new_token(), activity_id="semi")

    sent = push_send(app, "--live-activity-event", "update", "--live-activity", named["id"],
                     "--content-state", '{"eta": 5}', "--priority", "10")
    assert sent["deliveries"] == 1
    with app.app_context():
        content = db.session.get(Notification, uuid.UUID(sent["id"])).content
        db.session.remove()
    assert (content["event"], content["content_state"], content["priority"]) == (
        "update", {"eta": 5}, 10)
    assert push_send(app, "--live-activity-event", "end", "--attributes-type",
                     "MatchAttributes", "--activity-id", "final", "--content-state",
                     "{}")["deliveries"] == 1
    assert push_send(app, "--live-activity-event", "update", "--attributes-type",
                     "MatchAttributes", "--content-state", "{}")["deliveries"] == 3


def test_push_send_starts_an_activity_on_push_to_start_tokens(client, app):
    caller = Caller(client, app)
    register_device(client, caller, push_to_start=new_token())
    sent = push_send(app, "--live-activity-event", "start", "--user", caller.user_id,
                     "--attributes-type", "MatchAttributes", "--attributes", '{"home": "A"}',
                     "--content-state", '{"score": "0-0"}')
    assert sent["deliveries"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--live-activity-event", "update", "--content-state", "[1]"], "not a JSON object"),
    (["--live-activity-event", "update", "--content-state", "{}"], "at least one recipient"),
    (["--live-activity-event", "update", "--content-state", "{}", "--live-activity",
      str(uuid.uuid4())], "There is no live activity"),
    (["--live-activity-event", "start", "--user", str(uuid.uuid4())], "content_state"),
    (["--user", str(uuid.uuid4())], "Give --alert"),
])
def test_push_send_refuses_a_live_activity_push_that_cannot_be_sent(app, args, message):
    output = push_send(app, *args, exit_code=1 if "recipient" in message or "There is"
                       in message or "content_state" in message else 2)
    assert message in output
    with app.app_context():
        assert db.session.scalars(select(Notification)).all() == []
