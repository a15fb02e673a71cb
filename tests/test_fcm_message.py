"""What the FCM channel refuses before anything is sent, and how FCM's answers read:
reserved data keys at POST (with a pointer), a too-large payload, the reason table's
reading of an answer."""

import json

import pytest

from app.push import fcm
from app.push.http2 import Response
from app.push.message import Action, Notification, PushType
from tests.fake_fcm import BAD_TOKEN_MESSAGE, Reply
from tests.jsonapi_helpers import error_of, insert_users
from tests.test_notifications_api import document, send, service  # noqa: F401


@pytest.mark.parametrize("key", ["from", "gcm", "message_type", "google.c.a.e", "gcm.n.e"])
def test_reserved_data_keys_are_refused_at_post(client, app, service, key):  # noqa: F811
    (alice,) = insert_users(app, 1)
    error = error_of(send(client, service, document(users=[alice], data={key: "x"})), 400)
    assert error["source"] == {"pointer": "/data/attributes/data"}
    assert error["code"] == "FCM_RESERVED_DATA_KEY" and repr(key) in error["detail"]


def test_other_data_keys_pass(client, app, service):  # noqa: F811
    (alice,) = insert_users(app, 1)
    response = send(client, service, document(users=[alice], data={
        "googly": 1, "from_user": "bob", "message": "hi", "gc": "x"}))
    assert response.status_code == 202, response.get_json()


def test_too_large_a_payload_for_fcm_is_refused_naming_the_bulkiest_part():
    notification = Notification(alert="a", custom={"blob": "x" * 4100})
    with pytest.raises(fcm.PayloadTooLarge):
        fcm.build_message(notification, 0)


def test_data_values_become_strings_and_expiration_a_ttl():
    message = fcm.build_message(Notification(
        alert="Hi", custom={"n": 1, "flag": True, "none": None, "s": "t"}, expiration=0,
        priority=10), now=1000)
    assert message["data"] == {"n": "1", "flag": "true", "none": "null", "s": "t"}
    assert message["android"] == {"priority": "high", "ttl": "0s"}
    assert fcm.build_message(Notification(expiration=10**10), now=0)["android"]["ttl"] == \
        f"{fcm.MAX_TTL}s"
    body = json.loads(fcm.request_body(b'{"android":{}}', 'to"ken'))
    assert body == {"message": {"token": 'to"ken', "android": {}}}


def test_background_pushes_carry_no_notification():
    message = fcm.build_message(Notification(push_type=PushType.BACKGROUND, alert="x",
                                             badge=1, custom={"a": "b"}), now=0)
    assert set(message) == {"data", "android"}


def answer(reply: Reply, headers=None) -> Response:
    return Response(reply.status, headers or {}, reply.body("p"))


@pytest.mark.parametrize(("reply", "action"), [
    (Reply(200), Action.SENT),
    (Reply(404, "UNREGISTERED"), Action.INVALIDATE),
    (Reply(404), Action.CONFIG_ERROR),  # a wrong project: never a dead token
    (Reply(400, "INVALID_ARGUMENT", BAD_TOKEN_MESSAGE), Action.INVALIDATE),
    (Reply(400, "INVALID_ARGUMENT", "bad", field="message.token"), Action.INVALIDATE),
    (Reply(400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'",
           field="message.data[0].value"), Action.CONFIG_ERROR),
    (Reply(403, "SENDER_ID_MISMATCH"), Action.CONFIG_ERROR),
    (Reply(403), Action.CONFIG_ERROR),
    (Reply(401, "THIRD_PARTY_AUTH_ERROR"), Action.CONFIG_ERROR),
    (Reply(401), Action.REMINT_AND_RETRY),
    (Reply(429, "QUOTA_EXCEEDED"), Action.RETRY),
    (Reply(503, "UNAVAILABLE"), Action.RETRY),
    (Reply(500, "INTERNAL"), Action.RETRY),
])
def test_answers_map_onto_actions(reply, action):
    assert fcm.outcome_of("id", answer(reply)).action is action


def test_retry_after_is_read_as_seconds_or_a_date():
    assert fcm.outcome_of("id", answer(Reply(429), {"retry-after": "30"})).retry_after == 30
    dated = fcm.outcome_of("id", answer(Reply(503), {
        "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert dated.retry_after == 0  # a date in the past: no wait
    assert fcm.outcome_of("id", Response(500, {}, b"<html>")).reason == "HTTP_500"
