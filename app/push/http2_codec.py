"""The h2 and HPACK pieces under ``http2.py``'s connections: h2's configuration, a
connection state that survives GOAWAY, and an HPACK encoder that remembers what it encoded.
"""

import h2.config
import h2.connection
import h2.events
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hpack.hpack import Encoder, encode_integer
from hpack.table import HeaderTable

# Callers send lowercase, well-formed headers, so h2's outbound normalization and checks are
# off: they cost a tenth of the CPU of a request, and normalization marks ``authorization``
# never-indexed, which makes both ends Huffman-code the same bearer token on every request
# (these connections carry only our own requests: there is nothing to learn from the table).
# The answers' headers are not checked against RFC 9113's rules either (another tenth): a
# response without a usable ``:status`` is refused here, and callers read only what they
# know.
H2_CONFIG = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                      normalize_outbound_headers=False,
                                      validate_outbound_headers=False,
                                      validate_inbound_headers=False)

def unindexed(name: str, value: str) -> tuple[str, str]:
    """A header kept out of the HPACK table: values unique to one request (ids) would push
    the shared ones (a bearer token) out of it, and both ends would Huffman-code them anew."""
    # hpack types its header tuples as bytes pairs; they hold str ones too (as here)
    return NeverIndexedHeaderTuple(name, value)  # type: ignore[return-value]


# The first static-table index of each header name (RFC 7541 appendix A).
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_NAMES.setdefault(_name, _index)


class MemoEncoder(Encoder):
    """HPACK encoding that remembers what it computed.

    A header already in the table encodes to the same index until the table changes (a new
    entry shifts the others), so those bytes are kept until then: the headers every request
    repeats (the bearer token, the topic …) cost a dictionary look-up. Never-indexed headers
    (values unique to one request) are sent as raw literals with a static name index, not
    Huffman-coded: cheaper for both ends, at a few bytes more.
    """

    def __init__(self):
        super().__init__()
        self._indexed: dict[tuple, bytes] = {}
        self._literal_names: dict[bytes, bytes] = {}

    # mypy sees a property with a setter, read on its class, as its overloaded accessors
    def _resize(self, value: int):
        Encoder.header_table_size.fset(self, value)  # type: ignore[attr-defined]
        self._indexed.clear()  # evicted entries: their indexes now point elsewhere

    header_table_size = property(Encoder.header_table_size.fget,  # type: ignore[attr-defined]
                                 _resize)

    def encode(self, headers, huffman=True):
        block = []
        if self.header_table.resized:
            block.append(self._encode_table_size_change())
            self.header_table.resized = False
            self._indexed.clear()
        indexed = self._indexed
        for header in headers:
            encoded = indexed.get(header)
            if encoded is None:
                encoded = self._encode_one(header, huffman)
            block.append(encoded)
        return b"".join(block)

    def _encode_one(self, header, huffman) -> bytes:
        name, value = _as_bytes(header[0]), _as_bytes(header[1])
        if (isinstance(header, HeaderTuple) and not header.indexable) or \
                (len(header) > 2 and header[2]):
            return self._never_indexed(name, value)
        encoded = self.add((name, value), False, huffman)
        if encoded[0] & 0x80:  # an index: stays right while the table stays as it is
            self._indexed[header] = encoded
        else:  # a new table entry: every dynamic index moved
            self._indexed.clear()
        return encoded

    def _never_indexed(self, name: bytes, value: bytes) -> bytes:
        prefix = self._literal_names.get(name)
        if prefix is None:
            index = _STATIC_NAMES.get(name)
            if index is None:
                prefix = b"\x10" + bytes(encode_integer(len(name), 7)) + name
            else:
                field = encode_integer(index, 4)
                field[0] |= 0x10
                prefix = bytes(field)
            self._literal_names[name] = prefix
        return prefix + bytes(encode_integer(len(value), 7)) + value


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


class GoawayTolerantH2(h2.connection.H2Connection):
    # h2 moves the whole connection to CLOSED on GOAWAY and then refuses the frames of the
    # streams the server still answers (those at or below last_stream_id). Report the
    # GOAWAY and keep the connection state; the client opens no new stream on it.
    def _receive_goaway_frame(self, frame):
        event = h2.events.ConnectionTerminated()
        event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]

    # h2 walks every stream each time one opens, to count the open ones and drop the closed;
    # the client drops each stream as it closes (``forget``), so what is left is open.
    def _open_streams(self, remainder: int) -> int:
        if remainder == int(self.config.client_side):
            return len(self.streams)
        return super()._open_streams(remainder)

    def forget(self, stream_id: int):
        stream = self.streams.get(stream_id)
        if stream is not None and stream.closed:
            del self.streams[stream_id]
            self._closed_streams[stream_id] = stream.closed_by
