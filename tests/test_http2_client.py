"""The generic HTTP/2 client core against the fake APNs: connection health."""

import asyncio

import pytest
from hpack import Decoder

from app.push.http2 import (
    ClientSettings,
    Http2Client,
    InvalidHeaderError,
    MemoEncoder,
    NotProcessedError,
    OutcomeUnknownError,
    RequestTimeout,
    make_ssl_context,
    unindexed,
)
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


@pytest.mark.parametrize("value", ["secret\r\nx-injected: 1", "secret\n", "secret\r",
                                   "secret\0", " secret", "secret\t"])
def test_a_malformed_header_value_fails_only_its_own_request(fake, value):
    async def a_bad_request_between_good_ones():
        async with client_for(fake) as client:
            first = await client.request("GET", "/", timeout=5)
            with pytest.raises(InvalidHeaderError, match="x-topic") as refused:
                await client.request("GET", "/", [("x-topic", value)], timeout=5)
            second = await client.request("GET", "/", [("x-topic", "a b")], timeout=5)
            return first.status, second.status, str(refused.value)

    *statuses, message = asyncio.run(a_bad_request_between_good_ones())
    assert statuses == [405, 405]
    assert "secret" not in message  # a header value may be a credential
    assert [entry.connection for entry in fake.log] == [1, 1]  # nothing sent, nothing lost


def test_requests_time_out_waiting_for_a_stream_and_for_the_answer(fake):
    one_stream = ClientSettings(connections=1, max_streams_per_connection=1,
                                not_processed_retries=0)

    async def two_requests_on_one_stream():
        async with Http2Client(fake.url, one_stream, make_ssl_context(fake.ca_file)) as client:
            fake.hold()
            answered = asyncio.ensure_future(client.request("GET", "/", timeout=2))
            await asyncio.sleep(0.3)  # the first request holds the only stream
            with pytest.raises(NotProcessedError, match="waiting for a free stream"):
                await client.request("GET", "/", timeout=0.5)
            with pytest.raises(RequestTimeout):
                await answered
            fake.release()
            return (await client.request("GET", "/", timeout=5)).status

    assert asyncio.run(two_requests_on_one_stream()) == 405
    assert len(fake.log) == 2  # the one that waited was never sent


def test_header_blocks_decode_to_what_was_sent_while_the_table_changes():
    encoder, decoder = MemoEncoder(), Decoder()
    for number in range(600):
        if number in (200, 400):  # the peer shrinks the table, then sets the same size again
            encoder.header_table_size = decoder.header_table_size = 120
            encoder.header_table_size = 120
        headers = [(":method", "POST"), (":authority", "api.push.apple.com"),
                   unindexed(":path", f"/3/device/{number:064x}"),
                   ("authorization", f"bearer token-{number // 150}"),
                   ("apns-topic", "com.example.app"), ("x-varying", str(number % 7)),
                   unindexed("apns-id", f"id-{number}")]
        assert decoder.decode(encoder.encode(headers)) == [tuple(h) for h in headers]
