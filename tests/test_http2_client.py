"""The generic HTTP/2 client core against the fake APNs: connection health."""

import asyncio

import pytest

from app.push.http2 import ClientSettings, Http2Client, OutcomeUnknownError, make_ssl_context
from tests.fake_apns import FakeApns, make_key

PINGING = ClientSettings(connections=1, idle_ping_interval=0.05, ping_timeout=0.2)


@pytest.fixture
def fake():
    with FakeApns(public_key=make_key().public_key()) as server:
        yield server


def client_for(fake):
    return Http2Client(fake.url, PINGING, make_ssl_context(fake.ca_file))


def test_an_idle_connection_answering_pings_is_kept(fake):
    async def two_requests_apart():
        async with client_for(fake) as client:
            first = await client.request("GET", "/", timeout=5)
            await asyncio.sleep(0.5)  # several PINGs go out and are answered meanwhile
            second = await client.request("GET", "/", timeout=5)
            return first.status, second.status

    assert asyncio.run(two_requests_apart()) == (405, 405)
    assert [entry.connection for entry in fake.log] == [1, 1]


def test_a_connection_that_stops_answering_pings_is_dropped(fake):
    async def request_on_a_stalled_connection():
        async with client_for(fake) as client:
            await client.request("GET", "/", timeout=5)
            fake.stall()
            with pytest.raises(OutcomeUnknownError, match="PING"):
                await client.request("GET", "/", timeout=5)
            fake.close_abruptly()
            return (await client.request("GET", "/", timeout=5)).status

    assert asyncio.run(request_on_a_stalled_connection()) == 405
