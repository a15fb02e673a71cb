"""Verification texts are limited per client address, per phone number from one address,
per phone number in all and for the whole service, in sliding windows whose counts every
worker shares: the database by default, Redis when REDIS_URL is set."""

import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app import create_app
from app.config import TestConfig as AppConfig  # not "Test*": pytest would collect it
from app.extensions import db
from app.formats.rates import Rate
from app.models import RateLimitCounter, SmsMessage
from app.security import ratelimit
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
    # the previous window's hits weigh on a sliding window until the end of the next one
    assert 0 < int(retry_after) <= 2 * period


LIMIT_SETTINGS = {"per_phone": "SMS_RATE_LIMIT_PER_PHONE",
                  "per_address": "SMS_RATE_LIMIT_PER_ADDRESS",
                  "per_phone_total": "SMS_RATE_LIMIT_PER_PHONE_TOTAL",
                  "everyone": "SMS_GLOBAL_RATE_LIMIT"}


def set_limits(config, **rates):
    for name, setting in LIMIT_SETTINGS.items():
        config[setting] = rates.get(name, GENEROUS)


@pytest.fixture
def limits(app, monkeypatch):
    """Set the session app's limits for one test; those not named are generous."""
    def set_(**rates):
        for name, setting in LIMIT_SETTINGS.items():
            monkeypatch.setitem(app.config, setting, rates.get(name, GENEROUS))
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
    patterns = [f"pushreg:rate:sms:*:{value}:*" for value in marks]
    for pattern in [*patterns, "pushreg:rate:sms:global:*", "pushreg:rate:test:*"]:
        for key in client.scan_iter(match=pattern):
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


# -- the sliding window, at chosen times -------------------------------------------------

@pytest.fixture(params=["database", "redis"])
def backend(request, app, monkeypatch):
    """Each rate-limit backend in turn, inside an app context."""
    if request.param == "redis":
        request.getfixturevalue("redis_keys")
        monkeypatch.setitem(app.config, "REDIS_URL", request.getfixturevalue("redis_url"))
    with app.app_context():
        yield request.param
        db.session.remove()


def test_a_burst_across_a_window_boundary_is_one_burst(backend):
    rate = Rate(3, 10)
    key = f"test:{secrets.token_hex(4)}"
    for now in (9.8, 9.9, 9.95):
        assert ratelimit.hit(key, rate, now=now) == ratelimit.Verdict(True, 0)
    # fixed windows let three more through at 10.0; the sliding window still sees three
    # hits in the last ten seconds, and the previous window's weight must fall to 2/3
    assert ratelimit.hit(key, rate, now=10.0) == ratelimit.Verdict(False, 4)
    assert ratelimit.hit(key, rate, now=10.26) == ratelimit.Verdict(False, 4)
    assert ratelimit.hit(key, rate, now=13.3) == ratelimit.Verdict(False, 1)
    assert ratelimit.hit(key, rate, now=13.4).allowed  # refused hits did not count
    assert ratelimit.hit(key, rate, now=13.5) == ratelimit.Verdict(False, 4)
    assert ratelimit.hit(key, rate, now=16.7).allowed
    assert ratelimit.hit(f"{key}:other", rate, now=13.5).allowed


def test_a_full_window_waits_for_the_next_one_to_outweigh_it(backend):
    rate = Rate(2, 60)
    key = f"test:{secrets.token_hex(4)}"
    assert ratelimit.hit(key, rate, now=120.5).allowed
    assert ratelimit.hit(key, rate, now=150.0).allowed
    assert ratelimit.hit(key, rate, now=179.2) == ratelimit.Verdict(False, 31)
    assert not ratelimit.hit(key, rate, now=209.9).allowed
    assert ratelimit.hit(key, rate, now=210.0).allowed  # 2 hits weighing 1/2, plus this one


def test_windows_are_kept_while_they_weigh_and_pruned_after(app_context):
    rate = Rate(1, 60)
    key = f"test:{secrets.token_hex(4)}"
    ratelimit.hit(key, rate, now=30)
    row = db.session.scalar(select(RateLimitCounter).where(RateLimitCounter.key == key))
    assert row.expires_at == 120  # it weighs on the window after it until that one ends
    ratelimit.hit(key, rate, now=90)  # refused: its window is opened with no hit in it
    ratelimit.hit(key, rate, now=150)
    windows = db.session.execute(select(RateLimitCounter.window_start, RateLimitCounter.count)
                                 .where(RateLimitCounter.key == key)).all()
    assert sorted(windows) == [(60, 0), (120, 1)]  # older than the previous one: gone


# -- keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize("address, key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"),
    ("2001:DB8:AA:BB::ffff", "2001:db8:aa:bb::/64"),
    ("2001:db8:aa:bc::1", "2001:db8:aa:bc::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
])
def test_addresses_are_keyed_by_client_network(address, key):
    assert ratelimit.address_key(address) == key


@pytest.mark.parametrize("address", ["", None, "unknown", "1.2.3.4.5", "x" * 5000,
                                     "<script>", "192.0.2.1, 192.0.2.2"])
def test_anything_else_is_keyed_by_a_short_digest(address):
    key = ratelimit.address_key(address)
    assert key.startswith("invalid-") and len(key) <= 40
    assert key == ratelimit.address_key(address)
    assert key != ratelimit.address_key(f"{address}!")


def test_long_keys_fit_the_column():
    width = RateLimitCounter.__table__.c.key.type.length
    short = "sms:phone:+14155550123"
    assert ratelimit.bounded_key(short) == short
    long_keys = ["a" * width + "1", "a" * width + "2", "b" * 10_000]
    bounded = [ratelimit.bounded_key(key) for key in long_keys]
    assert all(len(key) <= width for key in bounded)
    assert len(set(bounded)) == 3
    assert bounded[0].startswith("a" * 100)


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
    # another session from the same address: the number is what is limited
    assert_limited(ask(client, phone), 86400)

    assert ask(client, random_phone()).status_code == 200  # other numbers still get texts
    with app.app_context():
        texts = db.session.scalar(select(func.count()).select_from(SmsMessage)
                                  .where(SmsMessage.to == phone))
    assert texts == 3
    assert last_code(app, phone) == code


def test_strangers_do_not_lock_the_owner_out(client, app, limits):
    """Codes asked for someone else's number spend the asker's budget for that number;
    only the higher cap for the number from any address is shared."""
    limits(per_phone="3/day", per_phone_total="5/day")
    phone, stranger, owner = random_phone(), random_address(), random_address()
    for _ in range(3):
        assert ask(client, phone, stranger).status_code == 200
    assert_limited(ask(client, phone, stranger), 86400)

    assert ask(client, phone, owner).status_code == 200
    assert ask(client, phone, owner).status_code == 200
    # five texts to one number a day, whoever asks
    assert_limited(ask(client, phone, owner), 86400)
    assert_limited(ask(client, phone, random_address()), 86400)


def test_global_limit_caps_all_texts(client, app, limits):
    limits(everyone="3/day")
    for _ in range(3):
        assert ask(client, random_phone(), random_address()).status_code == 200
    response = ask(client, random_phone(), random_address())
    assert_limited(response, 86400)
    assert "too many codes right now" in response.get_json()["errors"][0]["detail"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SmsMessage)) == 3


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
    assert Rate.parse(app.config["SMS_RATE_LIMIT_PER_PHONE_TOTAL"]) == Rate(10, 3600)
    assert Rate.parse(app.config["SMS_GLOBAL_RATE_LIMIT"]) == Rate(1000, 3600)
    assert Rate.parse(app.config["VERIFICATION_MAX_WRONG_PER_PHONE"]) == Rate(10, 3600)
    assert app.config["SMS_ALLOWED_COUNTRY_CODES"] == ()


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


def test_ipv6_clients_are_limited_by_their_64(client, app, limits):
    limits(per_address="2/day")
    network = f"2001:db8:{secrets.randbelow(65536):x}:{secrets.randbelow(65536):x}"
    assert ask(client, random_phone(), f"{network}::1").status_code == 200
    assert ask(client, random_phone(), f"{network}:0:0:0:2").status_code == 200
    assert_limited(ask(client, random_phone(), f"{network}:ffff:1:2:3"), 86400)
    assert ask(client, random_phone(), f"{network}1::1").status_code == 200  # another /64


@pytest.fixture
def proxied_client(app, database_url):
    """A client of an app behind one trusted proxy, on the same database."""
    config = AppConfig(database_url)
    config.PROXY_FIX_X_FOR = 1
    proxied = create_app(config)
    proxied.test_client_class = JsonApiClient
    yield proxied.test_client(), proxied
    with proxied.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("forwarded", ["10.0.0.1" + "0" * 400, "x" * 300, "not an address",
                                       "2001:db8::" + ":1" * 200])
def test_any_forwarded_address_is_keyed_safely(proxied_client, forwarded):
    client, proxied = proxied_client
    set_limits(proxied.config, per_address="1/day")
    headers = {"X-Forwarded-For": forwarded}
    session_id = create_session(client)
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, phone_number=random_phone()),
                            headers={**bearer(session_id), **headers})
    assert response.status_code == 200, response.get_json()
    session_id = create_session(client)
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, phone_number=random_phone()),
                            headers={**bearer(session_id), **headers})
    assert_limited(response, 86400)


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
    assert int(redis_client.get(key)) == 3  # refused hits are not counted
    assert 86400 < redis_client.ttl(key) <= 2 * 86400 + 60  # it weighs on the next window


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
