"""The provider token shared through the database: two workers (two stores, each on its
own engine and connections) mint one token a period between them."""

import pytest
import sqlalchemy as sa

from app.config import normalise_database_url
from app.push.provider_token import ProviderTokenCache, ProviderTokenSigner, StoredToken
from app.push.token_store import DatabaseTokenStore
from tests.fake_apns import FakeClock, make_key

pytestmark = pytest.mark.committed


@pytest.fixture
def engines(app, database_url):
    made = [sa.create_engine(normalise_database_url(database_url)) for _ in range(2)]
    yield made
    for engine in made:
        engine.dispose()


@pytest.fixture(scope="module")
def signer():
    return ProviderTokenSigner(make_key(), "KEYID12345", "TEAMID1234")


def stores(engines):
    return [DatabaseTokenStore(engine, "TEAMID1234", "KEYID12345") for engine in engines]


def test_compare_and_set_keeps_the_first_writer(engines):
    first, second = stores(engines)
    one, two, three, four = (StoredToken(f"t{n}", n) for n in range(1, 5))

    assert first.get() is None
    assert first.put(one, replacing=None) == one
    assert second.put(two, replacing=None) == one  # lost the race: adopts the winner's
    assert second.put(three, replacing=one) == three
    assert first.put(four, replacing=one) == three  # stale view: no overwrite
    assert first.get() == second.get() == three


def test_two_workers_mint_one_token_a_period(engines, signer):
    clock = FakeClock()
    first, second = (ProviderTokenCache(signer, store, clock=clock) for store in stores(engines))

    token = first.current()
    assert second.current() == token
    clock.advance(30 * 60)
    assert first.current() == second.current() == token  # not yet 50 minutes old
    clock.advance(21 * 60)
    renewed = second.current()
    assert renewed != token
    assert first.current() == renewed
    assert first.mints + second.mints == 2


def test_expired_provider_token_renews_once_for_every_worker(engines, signer):
    clock = FakeClock()
    first, second = (ProviderTokenCache(signer, store, clock=clock) for store in stores(engines))
    token = first.current()
    assert second.current() == token

    clock.advance(10 * 60)
    assert not first.expired(token)  # younger than 20 minutes: a clock problem, no mint
    clock.advance(15 * 60)
    assert first.expired(token)
    assert second.expired(token)  # adopts the first worker's new token
    assert first.current() == second.current() != token
    assert first.mints + second.mints == 2
