"""The APNs transport against the fake APNs (tests/fake_apns.py) over real TLS and HTTP/2."""

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from app.config import Config
from app.push.apns import (
    Action,
    ApnsClient,
    ApnsSettings,
    Device,
    Notification,
    PushType,
    build_payload,
)
from app.push.provider_token import MemoryTokenStore, ProviderTokenCache, ProviderTokenSigner
from tests.fake_apns import Answer, FakeApns, FakeClock

TOKEN = "ab" * 32


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fake(public_key, clock):
    with FakeApns(public_key=public_key, clock=clock) as server:
        yield server


def settings_for(fake, key_file, sandbox=None, **overrides):
    values = {"bundle_id": fake.bundle_id, "key": str(key_file), "key_id": fake.key_id,
              "team_id": fake.team_id, "production_url": fake.url,
              "sandbox_url": (sandbox or fake).url, "ca_file": fake.ca_file}
    return ApnsSettings(**(values | overrides))


def token_cache(settings, clock, store=None):
    signer = ProviderTokenSigner.from_key(settings.key, settings.key_id, settings.team_id)
    return ProviderTokenCache(signer, store, clock=clock)


def new_id():
    return str(uuid.uuid4())


def batch(count, notification=None, device=None):
    return [(device or Device(f"{index:064x}"), notification or Notification(alert="hi"),
             new_id()) for index in range(count)]


async def send_all(settings, items, clock, tokens=None, during=None):
    """send_many; ``during(client)`` runs (in a thread) while the batch is in flight."""
    async with ApnsClient(settings, tokens or token_cache(settings, clock)) as client:
        sending = asyncio.ensure_future(client.send_many(items))
        if during is not None:
            await asyncio.to_thread(during)
        return await sending


def send(fake, key_file, clock, items, **overrides):
    return asyncio.run(send_all(settings_for(fake, key_file, **overrides), items, clock))


def sent_once_each(fake, items):
    accepted = Counter(entry.apns_id for entry in fake.log if entry.status == 200)
    return all(accepted[apns_id] == 1 for _, _, apns_id in items)


def test_a_push_is_sent_with_its_headers(fake, key_file, clock):
    [(device, _, apns_id)] = items = batch(1)
    [outcome] = send(fake, key_file, clock, items)
    assert (outcome.action, outcome.status, outcome.apns_id) == (Action.SENT, 200, apns_id)
    [entry] = fake.log
    assert (entry.apns_id, entry.token, entry.topic, entry.push_type) == (
        apns_id, device.token, fake.bundle_id, "alert")


@pytest.mark.parametrize(("status", "reason", "action"), [
    (410, "Unregistered", Action.INVALIDATE),
    (410, "ExpiredToken", Action.INVALIDATE),
    (400, "BadDeviceToken", Action.INVALIDATE),
    (400, "DeviceTokenNotForTopic", Action.INVALIDATE),
    (429, "TooManyRequests", Action.RETRY),
    (500, "InternalServerError", Action.RETRY),
    (503, "ServiceUnavailable", Action.RETRY),
    (503, "Shutdown", Action.RETRY),
    (403, "InvalidProviderToken", Action.CONFIG_ERROR),
    (403, "BadCertificate", Action.CONFIG_ERROR),
    (403, "BadCertificateEnvironment", Action.CONFIG_ERROR),
    (403, "Forbidden", Action.CONFIG_ERROR),
    (403, "UnrelatedKeyIdInToken", Action.CONFIG_ERROR),
    (403, "BadEnvironmentKeyIdInToken", Action.CONFIG_ERROR),
    (400, "BadTopic", Action.CONFIG_ERROR),
    (400, "TopicDisallowed", Action.CONFIG_ERROR),
    (400, "MissingTopic", Action.CONFIG_ERROR),
    (400, "BadPriority", Action.CONFIG_ERROR),
    (400, "InvalidPushType", Action.CONFIG_ERROR),
    (413, "PayloadTooLarge", Action.CONFIG_ERROR),
    (400, "SomethingNew", Action.CONFIG_ERROR),
    (404, "BadPath", Action.CONFIG_ERROR),
])
def test_each_answer_maps_to_its_action(fake, key_file, clock, status, reason, action):
    fake.answer(TOKEN, Answer(status, reason, timestamp=1_700_000_000_000))
    [outcome] = send(fake, key_file, clock, batch(1, device=Device(TOKEN)))
    assert (outcome.status, outcome.reason, outcome.action) == (status, reason, action)
    assert outcome.outcome_unknown is False


def test_an_unregistered_answer_carries_its_timestamp(fake, key_file, clock):
    fake.answer(TOKEN, Answer(410, "Unregistered", timestamp=1_700_000_000_123))
    [outcome] = send(fake, key_file, clock, batch(1, device=Device(TOKEN)))
    assert outcome.unregistered_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def test_a_provider_key_apns_does_not_know_is_a_configuration_error(fake, key_file, clock):
    [outcome] = send(fake, key_file, clock, batch(1), key_id="OTHERKEYID")
    assert (outcome.status, outcome.reason, outcome.action) == (
        403, "InvalidProviderToken", Action.CONFIG_ERROR)


def test_a_topic_apns_does_not_allow_is_a_configuration_error(fake, key_file, clock):
    [outcome] = send(fake, key_file, clock, batch(1), bundle_id="com.example.other")
    assert (outcome.reason, outcome.action) == ("TopicDisallowed", Action.CONFIG_ERROR)


def test_sandbox_devices_go_to_the_sandbox_host(fake, public_key, key_file, clock):
    with FakeApns(public_key=public_key, clock=clock, ca=fake.ca) as sandbox:
        sandbox_item = batch(1, device=Device("cd" * 32, "sandbox"))[0]
        production_item = batch(1, device=Device("ef" * 32, "production"))[0]
        settings = settings_for(fake, key_file, sandbox=sandbox)
        outcomes = asyncio.run(send_all(settings, [sandbox_item, production_item], clock))
        assert [o.action for o in outcomes] == [Action.SENT, Action.SENT]
        assert [e.token for e in sandbox.log] == ["cd" * 32]
        assert [e.token for e in fake.log] == ["ef" * 32]


@pytest.mark.parametrize(("push_type", "topic_suffix"), [
    (PushType.VOIP, ".voip"),
    (PushType.LIVEACTIVITY, ".push-type.liveactivity"),
    (PushType.BACKGROUND, ""),
])
def test_push_types_use_their_topics(fake, key_file, clock, push_type, topic_suffix):
    notification = Notification(push_type=push_type, event="update",
                                content_state={"score": 1}, timestamp=1_700_000_000,
                                content_available=push_type is PushType.BACKGROUND)
    [outcome] = send(fake, key_file, clock, batch(1, notification))
    assert outcome.action is Action.SENT
    assert (fake.log[0].topic, fake.log[0].push_type) == (
        fake.bundle_id + topic_suffix, push_type.value)


def test_a_background_push_with_high_priority_is_refused_unsent(fake, key_file, clock):
    notification = Notification(push_type=PushType.BACKGROUND, priority=10)
    [outcome] = send(fake, key_file, clock, batch(1, notification))
    assert outcome.action is Action.CONFIG_ERROR
    assert fake.log == []


def test_a_payload_too_large_is_refused_before_sending(fake, key_file, clock):
    too_big = Notification(alert="x" * 4100)
    voip_sized = Notification(push_type=PushType.VOIP, custom={"blob": "x" * 5000})
    refused, voip = send(fake, key_file, clock, batch(1, too_big) + batch(1, voip_sized))
    assert (refused.action, refused.reason) == (Action.CONFIG_ERROR, "PayloadTooLarge")
    assert voip.action is Action.SENT
    assert [entry.push_type for entry in fake.log] == ["voip"]


def test_large_bodies_on_one_connection_respect_flow_control(fake, key_file, clock):
    items = batch(200, Notification(push_type=PushType.VOIP, custom={"blob": "x" * 5000}))
    outcomes = send(fake, key_file, clock, items, connections=1)
    assert {o.action for o in outcomes} == {Action.SENT}


def test_the_payload_holds_aps_and_custom_keys_beside_it():
    notification = Notification(
        alert={"title": "T", "subtitle": "S", "body": "B", "loc_key": "K", "loc_args": ["a"]},
        badge=3, sound="ping.caf", thread_id="th", category="cat", mutable_content=True,
        interruption_level="time-sensitive", relevance_score=0.5, custom={"post": "p1"})
    assert json.loads(build_payload(notification)) == {
        "post": "p1",
        "aps": {"alert": {"title": "T", "subtitle": "S", "body": "B", "loc-key": "K",
                          "loc-args": ["a"]},
                "badge": 3, "sound": "ping.caf", "thread-id": "th", "category": "cat",
                "mutable-content": 1, "interruption-level": "time-sensitive",
                "relevance-score": 0.5}}


def test_a_live_activity_payload():
    notification = Notification(
        push_type=PushType.LIVEACTIVITY, event="start", content_state={"score": 2},
        timestamp=1, stale_date=2, dismissal_date=3, attributes_type="Match",
        attributes={"home": "A"}, alert={"title": "Kick-off"})
    assert json.loads(build_payload(notification))["aps"] == {
        "event": "start", "content-state": {"score": 2}, "timestamp": 1, "stale-date": 2,
        "dismissal-date": 3, "attributes-type": "Match", "attributes": {"home": "A"},
        "alert": {"title": "Kick-off"}}


@pytest.mark.parametrize("notification", [
    Notification(custom={"aps": {}}),
    Notification(collapse_id="c" * 65),
])
def test_malformed_notifications_are_refused_unsent(fake, key_file, clock, notification):
    [outcome] = send(fake, key_file, clock, batch(1, notification))
    assert outcome.action is Action.CONFIG_ERROR
    assert fake.log == []


def test_a_malformed_apns_id_or_token_is_refused_unsent(fake, key_file, clock):
    items = [(Device(TOKEN), Notification(), new_id().upper()),
             (Device("xyz"), Notification(), new_id())]
    assert [o.action for o in send(fake, key_file, clock, items)] == [Action.CONFIG_ERROR] * 2
    assert fake.log == []


@pytest.mark.parametrize("topic", ["com.example.app\r\nx-injected: 1", "com.example.app ",
                                   "com.example.app\n"])
def test_a_header_value_http2_forbids_fails_only_its_own_push(fake, key_file, clock, topic):
    good = batch(5)
    poisoned = (Device("cd" * 32, bundle_id=topic), Notification(alert="hi"), new_id())
    items = [poisoned, *good]

    outcomes = send(fake, key_file, clock, items, connections=1)

    assert (outcomes[0].action, outcomes[0].reason) == (Action.CONFIG_ERROR, "InvalidHeader")
    assert "apns-topic" in outcomes[0].detail
    assert [outcome.action for outcome in outcomes[1:]] == [Action.SENT] * 5
    assert sorted(entry.apns_id for entry in fake.log) == sorted(id_ for *_, id_ in good)
    assert {entry.connection for entry in fake.log} == {1}  # the connection survived


def test_an_expired_provider_token_is_reminted_once_for_a_burst(fake, key_file, clock):
    settings = settings_for(fake, key_file)
    client_clock = FakeClock(clock.now)
    tokens = token_cache(settings, client_clock)
    first = asyncio.run(send_all(settings, batch(1), clock, tokens))
    clock.advance(61 * 60)  # APNs's clock says the token is over an hour old,
    client_clock.advance(21 * 60)  # ours that it is old enough to renew
    outcomes = first + asyncio.run(send_all(settings, batch(50), clock, tokens))
    assert {o.action for o in outcomes} == {Action.SENT}
    assert (tokens.mints, fake.provider_tokens_seen) == (2, 2)
    assert Counter(e.status for e in fake.log) == {200: 51, 403: 50}


def test_a_token_younger_than_20_minutes_is_never_reminted(fake, key_file, clock):
    settings = settings_for(fake, key_file)
    tokens = token_cache(settings, FakeClock(clock.now))
    clock.advance(61 * 60)  # APNs calls even a fresh token expired: a clock problem
    outcomes = asyncio.run(send_all(settings, batch(20), clock, tokens))
    assert {o.action for o in outcomes} == {Action.REMINT_AND_RETRY}
    assert (tokens.mints, fake.provider_tokens_seen) == (1, 1)


def test_the_token_is_renewed_at_50_minutes_and_shared_through_the_store(key_file, clock):
    store = MemoryTokenStore()
    signer = ProviderTokenSigner.from_key(str(key_file), "KEYID12345", "TEAMID1234")
    one, other = (ProviderTokenCache(signer, store, clock=clock) for _ in range(2))
    first = one.current()
    clock.advance(49 * 60)
    assert other.current() == one.current() == first
    clock.advance(60)
    renewed = one.current()
    assert renewed != first and other.current() == renewed
    assert one.mints + other.mints == 2


def test_workers_minting_their_own_tokens_are_told_too_many_updates(fake, key_file, clock):
    settings = settings_for(fake, key_file)
    first = asyncio.run(send_all(settings, batch(1), clock))
    second = asyncio.run(send_all(settings, batch(1), clock))  # its own cache: a new token
    assert first[0].action is Action.SENT
    assert (second[0].reason, second[0].action) == ("TooManyProviderTokenUpdates", Action.RETRY)


def test_the_stream_limit_followed_down_to_1_and_back_up(fake, key_file, clock):
    items = batch(300)

    def squeeze():
        fake.wait_for_requests(100)
        fake.set_max_concurrent_streams(1)
        fake.release()
        fake.wait_for_requests(120)
        fake.hold()
        received = len(fake.log)
        fake.set_max_concurrent_streams(100)
        fake.wait_for_requests(received + 50)
        fake.release()

    fake.hold()
    outcomes = asyncio.run(send_all(settings_for(fake, key_file, connections=1), items,
                                    clock, during=squeeze))
    assert {o.action for o in outcomes} == {Action.SENT}
    assert len(fake.log) == 300 and sent_once_each(fake, items)
    before, squeezed, after = fake.open_stream_peaks
    assert (before, squeezed) == (100, 1) and 50 <= after <= 100


def test_goaway_mid_batch_retries_only_the_unprocessed_streams(fake, key_file, clock):
    items = batch(20)

    def goaway():
        fake.wait_for_requests(20)
        fake.goaway(last_stream_id=sorted(e.stream_id for e in fake.log)[9])
        fake.release()

    fake.hold()
    outcomes = asyncio.run(send_all(settings_for(fake, key_file, connections=1), items,
                                    clock, during=goaway))
    assert {o.action for o in outcomes} == {Action.SENT}
    unanswered = [e for e in fake.log if e.status is None]
    assert len(unanswered) == 10 and {e.connection for e in unanswered} == {1}
    assert len(fake.log) == 30 and sent_once_each(fake, items)
    assert fake.twice_accepted() == []


def test_an_abrupt_close_leaves_the_outcome_unknown(fake, key_file, clock):
    def close():
        fake.wait_for_requests(5)
        fake.close_abruptly()

    fake.hold()
    outcomes = asyncio.run(send_all(settings_for(fake, key_file), batch(5), clock, during=close))
    assert {(o.action, o.outcome_unknown) for o in outcomes} == {(Action.RETRY, True)}


def test_a_timeout_leaves_the_outcome_unknown(fake, key_file, clock):
    fake.answer(TOKEN, Answer(hang=True))
    items = batch(1, device=Device(TOKEN)) + batch(1)
    hung, answered = send(fake, key_file, clock, items, request_timeout=0.5)
    assert (hung.action, hung.outcome_unknown) == (Action.RETRY, True)
    assert answered.action is Action.SENT


def test_an_unreachable_host_is_not_processed(fake, key_file, clock):
    settings = settings_for(fake, key_file, production_url="https://127.0.0.1:9")
    [outcome] = asyncio.run(send_all(settings, batch(1), clock))
    assert (outcome.action, outcome.outcome_unknown) == (Action.RETRY, False)


def test_settings_come_from_apns_variables_with_defaults(monkeypatch):
    for name, value in {
            "APNS_BUNDLE_ID": "com.example.app", "APNS_KEY": "/keys/AuthKey.p8",
            "APNS_KEY_ID": "KEY", "APNS_TEAM_ID": "TEAM", "APNS_CONNECTIONS": "4",
            "APNS_REQUEST_TIMEOUT": "2.5", "APNS_SANDBOX_URL": ""}.items():
        monkeypatch.setenv(name, value)
    settings = ApnsSettings.from_config(vars(Config()))
    assert (settings.bundle_id, settings.key, settings.key_id, settings.team_id) == (
        "com.example.app", "/keys/AuthKey.p8", "KEY", "TEAM")
    assert (settings.connections, settings.request_timeout, settings.max_streams) == (4, 2.5, 100)
    assert (settings.production_url, settings.sandbox_url) == (
        "https://api.push.apple.com", "https://api.sandbox.push.apple.com")


LIVE = {"push_type": PushType.LIVEACTIVITY, "timestamp": 1_700_000_000}


@pytest.mark.parametrize("notification", [
    Notification(**LIVE, event="update"),  # no content-state
    Notification(**LIVE, event="update", content_state={}, dismissal_date=1_700_000_100),
    Notification(**LIVE, event="end", content_state={}, attributes_type="Match",
                 attributes={}),
    Notification(**LIVE, event="start", content_state={}),  # no attributes
    Notification(push_type=PushType.LIVEACTIVITY, event="update", content_state={}),
    Notification(**LIVE, content_state={}),  # no event
], ids=["update without content-state", "update with a dismissal date", "end with attributes",
        "start without attributes", "no timestamp", "no event"])
def test_the_fake_refuses_a_live_activity_push_a_device_would_drop(fake, key_file, clock,
                                                                   notification):
    """APNs answers 200 and the device drops it: the fake refuses it so a test sees it."""
    [outcome] = send(fake, key_file, clock, batch(1, notification))
    assert (outcome.status, outcome.reason) == (400, "BadLiveActivityPayload")
    assert fake.log[0].push_type == "liveactivity"
