"""The ledger's claims and outcomes on real connections: chunks, leases, disjoint claims,
and a late outcome that must not overwrite a newer attempt."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.notification import Delivery, DeliveryState
from app.models.types import utcnow
from app.push import ledger
from tests.push_rows import make_deliveries, make_devices, make_notification

pytestmark = pytest.mark.committed


@pytest.fixture
def engine(app):
    with app.app_context():
        yield db.engine


@pytest.fixture
def pending(engine):
    """Ten pending deliveries of one notification, in id order."""
    with engine.begin() as connection:
        devices = make_devices(connection, 10)
        make_deliveries(connection, make_notification(connection), devices)
        return [row.id for row in connection.execute(
            select(Delivery.id).order_by(Delivery.id))]


def claim(engine, limit, lease=60, now=None):
    with engine.begin() as connection:
        return ledger.claim(connection, limit=limit, lease=lease, now=now or utcnow())


def states(engine):
    with engine.connect() as connection:
        return dict(connection.execute(select(Delivery.id, Delivery.state)).all())


def test_claims_take_chunks_and_never_the_same_row_twice(engine, pending):
    first, second, third = claim(engine, 4), claim(engine, 4), claim(engine, 4)

    assert (len(first), len(second), len(third)) == (4, 4, 2)
    assert sorted(c.id for c in first + second + third) == pending
    assert {c.attempts for c in first + second + third} == {1}
    assert set(states(engine).values()) == {DeliveryState.SENDING}
    assert claim(engine, 4) == []


@pytest.mark.skipif("config.getoption('--db') != 'postgresql'")
def test_concurrent_claims_skip_each_others_rows(engine, pending):
    with engine.connect() as first, engine.connect() as second, first.begin():
        mine = ledger.claim(first, limit=6, lease=60, now=utcnow())
        with second.begin():  # while the first claim's rows are still locked
            theirs = ledger.claim(second, limit=6, lease=60, now=utcnow())
    assert len(mine) == 6 and len(theirs) == 4
    assert not {c.id for c in mine} & {c.id for c in theirs}


def test_a_lease_that_ran_out_is_claimed_again_with_its_apns_id(engine, pending):
    taken = claim(engine, 10, lease=30)
    assert claim(engine, 10, now=utcnow() + timedelta(seconds=29)) == []

    again = claim(engine, 10, now=utcnow() + timedelta(seconds=31))

    assert [(c.id, c.apns_id) for c in again] == [(c.id, c.apns_id) for c in taken]
    assert {c.attempts for c in again} == {2}


def test_a_late_retry_does_not_overwrite_a_newer_attempt(engine, pending):
    (slow,) = claim(engine, 1, lease=30)
    (newer,) = claim(engine, 1, now=utcnow() + timedelta(seconds=31))
    now = utcnow()
    with engine.begin() as connection:
        ledger.record(connection, [ledger.Result(newer.id, DeliveryState.SENT, 200)], now,
                      {newer.id: newer})
        ledger.record(connection, [ledger.Result(slow.id, DeliveryState.PENDING, 503,
                                                 next_attempt_at=now)], now,
                      {slow.id: slow})

    assert states(engine)[slow.id] == DeliveryState.SENT


def test_release_hands_rows_back_without_counting_the_attempt(engine, pending):
    taken = claim(engine, 3)
    with engine.begin() as connection:
        ledger.release(connection, taken, utcnow())

    again = claim(engine, 10)
    assert sorted(c.id for c in again) == pending
    assert {c.attempts for c in again} == {1}


def test_retries_back_off_exponentially_and_stop_at_the_deadline():
    policy = ledger.RetryPolicy(base=10, maximum=100, max_attempts=5)
    now = utcnow()

    def claimed(attempts):
        return ledger.Claimed(1, None, None, None, attempts)

    first = policy.retry(claimed(1), None, now)
    third = policy.retry(claimed(3), None, now)
    assert first.state is third.state is DeliveryState.PENDING
    assert timedelta(seconds=5) <= first.next_attempt_at - now <= timedelta(seconds=10)
    assert timedelta(seconds=20) <= third.next_attempt_at - now <= timedelta(seconds=40)
    assert policy.retry(claimed(1), now + timedelta(seconds=4), now).state is \
        DeliveryState.EXPIRED
    assert policy.retry(claimed(5), None, now).state is DeliveryState.FAILED
