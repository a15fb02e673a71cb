"""app/push/http2_codec.py overrides private parts of h2 and hpack, pinned in setup.cfg to
the minor versions tested. When either moves, this fails by name, before a push does."""

import inspect

import h2.connection
import h2.events
from h2.config import H2Configuration
from hpack import Decoder, NeverIndexedHeaderTuple
from hpack.hpack import Encoder, encode_integer
from hpack.table import HeaderTable

from app.push.http2_codec import H2_CONFIG, GoawayTolerantH2, MemoEncoder, unindexed


def _parameters(function):
    return list(inspect.signature(function).parameters)


def test_the_h2_methods_overridden_are_still_there_with_their_signatures():
    assert _parameters(h2.connection.H2Connection._receive_goaway_frame) == ["self", "frame"]
    assert _parameters(h2.connection.H2Connection._open_streams) == ["self", "remainder"]
    connection = h2.connection.H2Connection(H2Configuration(client_side=True))
    assert isinstance(connection._closed_streams, dict)
    event = h2.events.ConnectionTerminated()
    assert {"error_code", "last_stream_id", "additional_data"} <= set(dir(event))


def test_the_hpack_parts_used_are_still_there():
    assert isinstance(Encoder.header_table_size, property)
    assert callable(Encoder._encode_table_size_change)
    assert _parameters(Encoder.add) == ["self", "to_add", "sensitive", "huffman"]
    assert HeaderTable.STATIC_TABLE[0] == (b":authority", b"")
    assert hasattr(Encoder().header_table, "resized")
    assert isinstance(encode_integer(5, 7), bytearray)


def test_what_the_memo_encoder_writes_decodes_to_what_it_was_given():
    encoder, decoder = MemoEncoder(), Decoder()
    headers = [(":method", "POST"), (":path", "/3/device/abc"), ("authorization", "bearer x"),
               unindexed("apns-id", "1"), ("x-custom", "v")]
    for round_ in range(3):
        if round_ == 2:
            encoder.header_table_size = 256  # a resize invalidates what was remembered
        block = encoder.encode(headers)
        decoded = decoder.decode(block, raw=False)
        assert [tuple(header) for header in decoded] == [tuple(header) for header in headers]
        assert isinstance(decoded[3], NeverIndexedHeaderTuple)


def test_a_goaway_keeps_the_connection_state():
    connection = GoawayTolerantH2(H2_CONFIG)
    connection.initiate_connection()
    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, [(":method", "GET"), (":path", "/"),
                                     (":scheme", "https"), (":authority", "x")])
    server = h2.connection.H2Connection(H2Configuration(client_side=False))
    server.initiate_connection()
    server.receive_data(connection.data_to_send())
    server.close_connection(last_stream_id=stream)
    events = connection.receive_data(server.data_to_send())
    assert any(isinstance(event, h2.events.ConnectionTerminated) for event in events)
    assert stream in connection.streams  # still open for its answer
