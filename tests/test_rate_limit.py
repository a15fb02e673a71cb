"""Verification texts are limited per phone number and per client address, in counts every
worker shares: the database by default, Redis when REDIS_URL is set."""

import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app import create_app, ratelimit
from app.config import TestConfig as AppConfig  # not "Test*": pytest would collect it
from app.extensions import db
from app.models import RateLimitCounter, SmsMessage
from app.ratelimit import Rate
from tests.conftest import JsonApiClient
from tests.factories import (
    bearer,
    create_session,
    last_code,
    random_phone,
    session_patch,
)

# Windows of a day, so a test does not straddle a window boundary (one chance in 86,400).
GENEROUS = "1000/day"


def random_address():
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def ask(client, phone, address="127.0.0.1", session_id=None):
    session_id = session_id or create_session(client)
    return client.patch(f"/api/sessions/{session_id}",
                        json=session_patch(session_id, phone_number=phone),
                        headers=bearer(session_id), environ_base={"REMOTE_ADDR": address})


def assert_limited(response, period):
    assert response.status_code == 429, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["code"] == "RATE_LIMITED"
    assert error["status"] == "429"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    assert 0 < int(retry_after) <= period


def set_limits(config, per_phone=GENEROUS, per_address=GENEROUS):
    config["SMS_RATE_LIMIT_PER_PHONE"] = per_phone
    config["SMS_RATE_LIMIT_PER_ADDRESS"] = per_address


@pytest.fixture
def limits(app, monkeypatch):
    """Set the session app's limits for one test."""
    def set_(per_phone=GENEROUS, per_address=GENEROUS):
        monkeypatch.setitem(app.config, "SMS_RATE_LIMIT_PER_PHONE", per_phone)
        monkeypatch.setitem(app.config, "SMS_RATE_LIMIT_PER_ADDRESS", per_address)
    return set_


@pytest.fixture
def second_app(app, database_url):
    """Another app on the same database, as another gunicorn worker or machine would be."""
    other = create_app(AppConfig(database_url))
    other.test_client_class = JsonApiClient
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def redis_url():
    """TEST_REDIS_URL, reachable; skipped without it, except under CI=true."""
    url = os.environ.get("TEST_REDIS_URL")
    problem = None if url else "TEST_REDIS_URL is not set"
    if url:
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            problem = f"Redis at {url} is unreachable ({type(exc).__name__})"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the Redis tests are mandatory: {problem}")
        pytest.skip(f"Redis rate-limit tests skipped: {problem}")
    return url


@pytest.fixture
def redis_keys(redis_url):
    """A Redis client, and ``mark(value)``: at teardown the keys naming each marked phone
    number or address are deleted, so Redis keeps nothing of the test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    marks = []

    def mark(value):
        marks.append(value)
        return value

    yield client, mark
    for value in marks:
        for key in client.scan_iter(match=f"pushreg:rate:sms:*:{value}:*"):
            client.delete(key)
    client.close()


def counter_rows(app):
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(RateLimitCounter))
        db.session.remove()
    return count


# -- Rate.parse --------------------------------------------------------------------------

@pytest.mark.parametrize("text, rate", [
    ("5/hour", Rate(5, 3600)),
    ("10/15 minutes", Rate(10, 900)),
    ("10/15minutes", Rate(10, 900)),
    ("1/second", Rate(1, 1)),
    ("3/seconds", Rate(3, 1)),
    ("20/day", Rate(20, 86400)),
    ("5 / hours", Rate(5, 3600)),
    (" 5/2 days ", Rate(5, 172800)),
])
def test_rate_parse(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", [
    "", None, "5", "hour", "/hour", "5/", "five/hour", "5/fortnight", "5 per hour",
    "-1/hour", "5/-1 hours", "5.5/hour", "5/hour/day", "5/0 minutes", "5/0 hours",
])
def test_rate_parse_refuses_bad_strings(text):
    with pytest.raises(ValueError):
        Rate.parse(text)


# -- the fixed window, at a chosen time ---------------------------------------------------

def test_hit_counts_in_fixed_windows(app_context):
    rate = Rate(2, 60)
    key = f"test:{secrets.token_hex(4)}"
    first = ratelimit.hit(key, rate, now=120.5)
    assert first == ratelimit.Verdict(True, 60)
    assert ratelimit.hit(key, rate, now=150.0) == ratelimit.Verdict(True, 30)
    assert ratelimit.hit(key, rate, now=179.2) == ratelimit.Verdict(False, 1)
    assert ratelimit.hit(key, rate, now=180.0).allowed  # the next window starts afresh
    assert ratelimit.hit(f"{key}:other", rate, now=179.9).allowed


# -- per phone number ---------------------------------------------------------------------

def test_per_phone_limit(client, app, limits):
    limits(per_phone="3/day")
    phone = random_phone()
    for _ in range(3):
        assert ask(client, phone).status_code == 200
    code = last_code(app, phone)

    session_id = create_session(client)
    response = ask(client, phone, session_id=session_id)
    assert_limited(response, 86400)
    # another session, another address: the number is what is limited
    assert_limited(ask(client, phone, address=random_address()), 86400)

    assert ask(client, random_phone()).status_code == 200  # other numbers still get texts
    with app.app_context():
        texts = db.session.scalar(select(func.count()).select_from(SmsMessage)
                                  .where(SmsMessage.to == phone))
    assert texts == 3
    assert last_code(app, phone) == code


def test_refused_request_leaves_the_pending_code_usable(client, app, limits):
    limits(per_phone="1/day")
    phone = random_phone()
    session_id = create_session(client)
    assert ask(client, phone, session_id=session_id).status_code == 200
    assert_limited(ask(client, phone, session_id=session_id), 86400)
    response = client.patch(
        f"/api/sessions/{session_id}",
        json=session_patch(session_id, verification_code=last_code(app, phone)),
        headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()


def test_default_limits(app):
    assert Rate.parse(app.config["SMS_RATE_LIMIT_PER_PHONE"]) == Rate(5, 3600)
    assert Rate.parse(app.config["SMS_RATE_LIMIT_PER_ADDRESS"]).period == 3600


def test_limits_come_from_the_environment(monkeypatch, database_url):
    monkeypatch.setenv("SMS_RATE_LIMIT_PER_PHONE", "2/10 minutes")
    monkeypatch.setenv("SMS_RATE_LIMIT_PER_ADDRESS", "7/day")
    config = AppConfig(database_url)
    assert Rate.parse(config.SMS_RATE_LIMIT_PER_PHONE) == Rate(2, 600)
    assert Rate.parse(config.SMS_RATE_LIMIT_PER_ADDRESS) == Rate(7, 86400)


# -- per client address -------------------------------------------------------------------

def test_per_address_limit(client, app, limits):
    limits(per_address="2/day")
    address = random_address()
    assert ask(client, random_phone(), address).status_code == 200
    assert ask(client, random_phone(), address).status_code == 200
    assert_limited(ask(client, random_phone(), address), 86400)
    assert ask(client, random_phone(), random_address()).status_code == 200


# -- across workers: two app instances on one database -----------------------------------

def test_limit_holds_across_app_instances(client, app, second_app, limits):
    limits(per_phone="3/day")
    set_limits(second_app.config, per_phone="3/day")
    other = second_app.test_client()
    phone = random_phone()

    assert ask(client, phone).status_code == 200
    assert ask(other, phone).status_code == 200
    assert ask(client, phone).status_code == 200
    assert_limited(ask(other, phone), 86400)
    assert_limited(ask(client, phone), 86400)
    assert counter_rows(app) > 0


def test_address_limit_holds_across_app_instances(client, app, second_app, limits):
    limits(per_address="2/day")
    set_limits(second_app.config, per_address="2/day")
    other = second_app.test_client()
    address = random_address()

    assert ask(client, random_phone(), address).status_code == 200
    assert ask(other, random_phone(), address).status_code == 200
    assert_limited(ask(client, random_phone(), address), 86400)
    assert_limited(ask(other, random_phone(), address), 86400)


# -- Redis --------------------------------------------------------------------------------

def test_limit_holds_across_app_instances_with_redis(client, app, second_app, limits,
                                                     monkeypatch, redis_url, redis_keys):
    redis_client, new_mark = redis_keys
    phone, other_phone, address = new_mark(random_phone()), new_mark(random_phone()), \
        new_mark(random_address())
    limits(per_phone="3/day")
    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    set_limits(second_app.config, per_phone="3/day")
    second_app.config["REDIS_URL"] = redis_url
    other = second_app.test_client()

    assert ask(client, phone, address).status_code == 200
    assert ask(other, phone, address).status_code == 200
    assert ask(client, phone, address).status_code == 200
    assert_limited(ask(other, phone, address), 86400)
    assert_limited(ask(client, phone, address), 86400)
    assert ask(other, other_phone, address).status_code == 200

    assert counter_rows(app) == 0  # the counts are in Redis, not the database
    [key] = list(redis_client.scan_iter(match=f"pushreg:rate:sms:phone:{phone}:*"))
    assert int(redis_client.get(key)) >= 3
    assert 0 < redis_client.ttl(key) <= 86400 + 60


def test_address_limit_with_redis(client, app, limits, monkeypatch, redis_url, redis_keys):
    _, new_mark = redis_keys
    address, other_address = new_mark(random_address()), new_mark(random_address())
    limits(per_address="2/day")
    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)

    assert ask(client, new_mark(random_phone()), address).status_code == 200
    assert ask(client, new_mark(random_phone()), address).status_code == 200
    assert_limited(ask(client, new_mark(random_phone()), address), 86400)
    assert ask(client, new_mark(random_phone()), other_address).status_code == 200


@pytest.mark.committed  # threads, each on its own connection
def test_parallel_requests_do_not_slip_past_the_limit(app, limits):
    limits(per_phone="3/day")
    phone = random_phone()
    sessions = [create_session(app.test_client()) for _ in range(10)]
    barrier = threading.Barrier(10)

    def request(session_id):
        barrier.wait()
        return ask(app.test_client(), phone, session_id=session_id).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(request, sessions))
    assert sorted(statuses) == [200] * 3 + [429] * 7
    with app.app_context():
        texts = db.session.scalar(select(func.count()).select_from(SmsMessage))
    assert texts == 3
