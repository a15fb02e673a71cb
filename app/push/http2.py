"""An asyncio HTTP/2 client on the ``h2`` package, for long-lived provider connections.

One ``Http2Client`` talks to one origin over a small pool of TLS connections (ALPN ``h2``).
Each connection carries up to ``min(server's SETTINGS_MAX_CONCURRENT_STREAMS, cap)``
concurrent streams, following the server's limit down and up; a request waits for a free
stream. Frames are written once per event-loop tick. Failures come in two kinds a caller
must tell apart: ``NotProcessedError`` (the server never processed the request: send it
again) and ``OutcomeUnknownError`` (it may have been processed).

Nothing here knows about APNs or FCM.
"""

import asyncio
import re
import ssl
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h2.events
import h2.exceptions
from h2.errors import ErrorCodes

from app.push.http2_codec import H2_CONFIG, GoawayTolerantH2, MemoEncoder, unindexed

__all__ = ["ClientSettings", "Http2Client", "MemoEncoder", "NotProcessedError",
           "OutcomeUnknownError", "RequestTimeout", "Response", "TransportError",
           "make_ssl_context", "unindexed"]

Headers = Iterable[tuple[str, str]]

_PING_PAYLOAD = b"pushping"
# What RFC 9113 (8.2.1) forbids in a field value. With h2's checks off, this one check keeps
# a value made from stored input (a bundle id in a topic) from reaching the wire malformed:
# the server would end the whole connection, and every other request on it.
_MALFORMED_VALUE = re.compile(r"[\0\r\n]|\A[ \t]|[ \t]\Z")


class TransportError(Exception):
    """The request got no HTTP answer."""


class InvalidHeaderError(ValueError):
    """A request header's value is not allowed by HTTP/2: the request was not sent."""


class NotProcessedError(TransportError):
    """The server did not process the request: sending it again is safe."""


class OutcomeUnknownError(TransportError):
    """The request may or may not have been processed by the server."""


class RequestTimeout(OutcomeUnknownError):
    """The request was sent but not answered in time."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class ClientSettings:
    """How one client uses its origin.

    ``connections``: pool size. ``max_streams_per_connection``: our cap on concurrent
    streams per connection (the server's limit applies when lower). ``idle_ping_interval``:
    seconds without any frame from the server before a PING checks the connection;
    ``ping_timeout``: seconds the PING may take before the connection is dropped.
    ``not_processed_retries``: how often a request refused unprocessed (GOAWAY, REFUSED_STREAM,
    no connection) is sent again before ``NotProcessedError`` reaches the caller.
    """

    connections: int = 2
    max_streams_per_connection: int = 100
    connect_timeout: float = 10.0
    idle_ping_interval: float = 60.0
    ping_timeout: float = 10.0
    not_processed_retries: int = 2


def make_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The system's trust store (plus ``ca_file`` when given), TLS 1.2+, ALPN ``h2``."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    return context


def _check_values(*headers: tuple[str, str]):
    """``InvalidHeaderError`` naming the first header whose value HTTP/2 does not allow
    (never showing the value: it may be a credential)."""
    for name, value in headers:
        if _MALFORMED_VALUE.search(value):
            raise InvalidHeaderError(f"the {name} header's value has a NUL, CR or LF, or "
                                     "whitespace at either end; the request was not sent")


def _give_up_waiting(waiter: asyncio.Future):
    if not waiter.done():
        waiter.set_exception(NotProcessedError("timed out waiting for a free stream"))


class _Stream:
    __slots__ = ("body", "future", "headers")

    def __init__(self, future):
        self.future = future
        self.headers = None
        self.body = []


class _Connection(asyncio.Protocol):
    """One TLS connection: h2 state, its open streams, flushing, health."""

    def __init__(self, pool, authority: str, settings: ClientSettings):
        self._pool = pool
        self._authority = authority
        self._settings = settings
        self._loop = asyncio.get_running_loop()
        self._h2 = GoawayTolerantH2(config=H2_CONFIG)
        self._h2.encoder = MemoEncoder()
        self._streams: dict[int, _Stream] = {}
        self._unsent: dict[int, memoryview] = {}
        self._transport: asyncio.Transport | None = None
        self._flush_scheduled = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self._last_heard = self._loop.time()
        self._lost_reason = "connection lost"
        self.ready = self._loop.create_future()
        self.lost = self._loop.create_future()
        self.limit = 0
        self.draining = False
        self.closed = False

    # -- capacity ----------------------------------------------------------------------

    def free_streams(self) -> int:
        if self.draining or self.closed or not self.ready.done():
            return 0
        return max(self.limit - len(self._streams), 0)

    @property
    def in_flight(self) -> int:
        return len(self._streams)

    def _update_limit(self):
        remote = self._h2.remote_settings.max_concurrent_streams
        self.limit = min(remote, self._settings.max_streams_per_connection)

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport):
        self._transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            self._abort("the server did not negotiate HTTP/2 (ALPN h2)")
            return
        self._h2.initiate_connection()
        self._schedule_flush()
        self._arm_idle_timer(self._settings.idle_ping_interval)

    def data_received(self, data):
        self._last_heard = self._loop.time()
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._abort(f"HTTP/2 protocol error: {exc}")
            return
        for event in events:
            handler = self._HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)
        self._schedule_flush()

    def connection_lost(self, exc):
        self.closed = True
        self.lost.set_result(None)
        self._cancel_timers()
        error = OutcomeUnknownError(self._lost_reason)
        if not self.ready.done():
            self.ready.set_exception(NotProcessedError(self._lost_reason))
        for stream_id in list(self._streams):
            self._finish(stream_id, error=error)
        self._pool._connection_unusable(self)

    # -- streams -----------------------------------------------------------------------

    def open_stream(self, method: str, path: tuple[str, str], headers: Headers, body: bytes):
        """Send one request now; returns ``(stream_id, future of Response)``."""
        try:
            stream_id = self._h2.get_next_available_stream_id()
            self._h2.send_headers(stream_id, [
                (":method", method), (":scheme", "https"),
                (":authority", self._authority), path, *headers,
            ], end_stream=not body)
        except h2.exceptions.NoAvailableStreamIDError:
            self._start_draining()
            raise NotProcessedError("stream ids exhausted on this connection") from None
        future = self._loop.create_future()
        self._streams[stream_id] = _Stream(future)
        if body and len(body) <= min(self._h2.local_flow_control_window(stream_id),
                                     self._h2.max_outbound_frame_size):  # the usual case
            self._h2.send_data(stream_id, body, end_stream=True)
        elif body:
            self._unsent[stream_id] = memoryview(body)
            self._send_body(stream_id)
        self._schedule_flush()
        return stream_id, future

    def cancel_stream(self, stream_id: int):
        if stream_id in self._streams and not self.closed:
            self._h2.reset_stream(stream_id, ErrorCodes.CANCEL)
            self._schedule_flush()
        self._finish(stream_id, error=RequestTimeout("no answer in time"))

    def _send_body(self, stream_id: int):
        view = self._unsent.pop(stream_id)
        window = self._h2.local_flow_control_window(stream_id)
        frame_size = self._h2.max_outbound_frame_size
        while view and window > 0:
            size = min(window, frame_size, len(view))
            self._h2.send_data(stream_id, bytes(view[:size]), end_stream=size == len(view))
            view = view[size:]
            window -= size
        if view:
            self._unsent[stream_id] = view

    def _finish(self, stream_id: int, response=None, error=None):
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        if self._unsent.pop(stream_id, None) is not None and not self.closed:
            self._h2.reset_stream(stream_id, ErrorCodes.NO_ERROR)
        self._h2.forget(stream_id)
        if not stream.future.done():
            if error is None:
                stream.future.set_result(response)
            else:
                stream.future.set_exception(error)
        if self.draining and not self._streams:
            self.close()
        self._pool._stream_closed()

    # -- h2 events ---------------------------------------------------------------------

    def _on_response(self, event):
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream.headers = event.headers

    def _on_data(self, event):
        if event.flow_controlled_length:
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream.body.append(event.data)

    def _on_stream_ended(self, event):
        stream = self._streams.get(event.stream_id)
        if stream is None:
            return
        if stream.headers is None:
            self._finish(event.stream_id, error=OutcomeUnknownError("stream ended without headers"))
            return
        headers = dict(stream.headers)
        try:
            status = int(headers.pop(":status"))
        except (KeyError, ValueError):
            self._finish(event.stream_id, error=OutcomeUnknownError("an answer without status"))
            return
        self._finish(event.stream_id, Response(status, headers, b"".join(stream.body)))

    def _on_stream_reset(self, event):
        error: TransportError
        if event.error_code == ErrorCodes.REFUSED_STREAM:
            error = NotProcessedError("the server refused the stream")
        else:
            error = OutcomeUnknownError(f"the server reset the stream ({event.error_code!r})")
        self._finish(event.stream_id, error=error)

    def _on_settings(self, _event):
        self._update_limit()
        if not self.ready.done():
            self.ready.set_result(None)
        else:
            self._pool._capacity_changed(self)

    def _on_window_updated(self, event):
        waiting = list(self._unsent) if event.stream_id == 0 else [event.stream_id]
        for stream_id in waiting:
            if stream_id in self._unsent:
                self._send_body(stream_id)

    def _on_goaway(self, event):
        last_processed = event.last_stream_id
        for stream_id in [s for s in self._streams if s > last_processed]:
            self._finish(stream_id, error=NotProcessedError("GOAWAY: stream not processed"))
        self._start_draining()

    def _on_ping_ack(self, _event):
        if self._ping_deadline is not None:
            self._ping_deadline.cancel()
            self._ping_deadline = None
        self._arm_idle_timer(self._settings.idle_ping_interval)

    _HANDLERS = {
        h2.events.ResponseReceived: _on_response,
        h2.events.DataReceived: _on_data,
        h2.events.StreamEnded: _on_stream_ended,
        h2.events.StreamReset: _on_stream_reset,
        h2.events.RemoteSettingsChanged: _on_settings,
        h2.events.WindowUpdated: _on_window_updated,
        h2.events.ConnectionTerminated: _on_goaway,
        h2.events.PingAckReceived: _on_ping_ack,
    }

    # -- writing, health, closing ------------------------------------------------------

    def _schedule_flush(self):
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self):
        self._flush_scheduled = False
        data = self._h2.data_to_send()
        if data and not self.closed:
            assert self._transport is not None  # flushes follow connection_made
            self._transport.write(data)

    def _arm_idle_timer(self, delay: float):
        self._idle_timer = self._loop.call_later(delay, self._on_idle_timer)

    def _on_idle_timer(self):
        quiet_for = self._loop.time() - self._last_heard
        interval = self._settings.idle_ping_interval
        if quiet_for < interval:
            self._arm_idle_timer(interval - quiet_for)
            return
        self._h2.ping(_PING_PAYLOAD)
        self._schedule_flush()
        self._ping_deadline = self._loop.call_later(
            self._settings.ping_timeout, self._abort, "no answer to PING")

    def _cancel_timers(self):
        for timer in (self._idle_timer, self._ping_deadline):
            if timer is not None:
                timer.cancel()

    def _start_draining(self):
        if not self.draining:
            self.draining = True
            self._pool._connection_unusable(self)
        if not self._streams:
            self.close()

    def _abort(self, reason: str):
        self._lost_reason = reason
        if self._transport is not None:
            self._transport.abort()

    def close(self):
        """Close politely: GOAWAY, then the socket; in-flight streams fail as unknown."""
        if self.closed or self._transport is None:
            return
        self.draining = True
        self._h2.close_connection()
        self._flush()
        self._transport.close()


class Http2Client:
    """Requests to one ``https://host[:port]`` origin over a pool of HTTP/2 connections."""

    def __init__(self, origin: str, settings: ClientSettings | None = None,
                 ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(origin)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"an https origin is required, not {origin!r}")
        self._host = parts.hostname
        self._port = parts.port or 443
        self._authority = self._host if self._port == 443 else f"{self._host}:{self._port}"
        self._settings = settings or ClientSettings()
        self._ssl = ssl_context or make_ssl_context()
        self._connections: list[_Connection] = []
        self._connecting: set[asyncio.Task] = set()
        self._waiters: deque[asyncio.Future] = deque()
        self._closed = False

    @property
    def origin(self) -> str:
        return f"https://{self._authority}"

    @property
    def in_flight(self) -> int:
        return sum(conn.in_flight for conn in self._connections)

    async def request(self, method: str, path: str, headers: Headers = (),
                      body: bytes = b"", timeout: float | None = None, *,
                      index_path: bool = True) -> Response:
        """Send one request and return its response.

        ``headers`` may hold ``unindexed(...)`` ones; ``index_path=False`` does the same for
        a path unique to this request.

        ``timeout`` bounds each attempt (waiting for a stream, then the answer). Raises
        ``NotProcessedError`` when it was never processed (after the configured retries)
        and ``OutcomeUnknownError`` (``RequestTimeout`` on timeout) when it may have been;
        ``InvalidHeaderError`` (sending nothing) for a header value HTTP/2 does not allow.
        """
        path_header = (":path", path) if index_path else unindexed(":path", path)
        headers = tuple(headers)
        _check_values(path_header, *headers)
        retries = self._settings.not_processed_retries
        for attempt in range(retries + 1):
            try:
                return await self._attempt(method, path_header, headers, body, timeout)
            except NotProcessedError:
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")

    async def _attempt(self, method, path, headers, body, timeout) -> Response:
        # Timed with plain timers (one while waiting for a stream, one for the answer):
        # an asyncio.timeout block per request costs more than the rest of the waiting.
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        conn = None if self._waiters or self._closed else self._freest_connection()
        if conn is None:
            conn = await self._acquire(deadline)
        stream_id, future = conn.open_stream(method, path, headers, body)
        if deadline is None:
            return await future
        timer = loop.call_at(deadline, conn.cancel_stream, stream_id)
        try:
            return await future
        finally:
            timer.cancel()

    async def close(self):
        """Fail what waits for a stream, close every connection and wait (1 s) for them."""
        self._closed = True
        for task in list(self._connecting):
            task.cancel()
        self._fail_waiters(NotProcessedError("the client is closed"))
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        if connections:
            await asyncio.wait([conn.lost for conn in connections], timeout=1)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    # -- waiting for a stream ----------------------------------------------------------

    async def _acquire(self, deadline: float | None) -> _Connection:
        woken = False
        while True:
            if self._closed:
                raise NotProcessedError("the client is closed")
            if woken or not self._waiters:  # first come, first served
                conn = self._freest_connection()
                if conn is not None:
                    return conn
            self._grow()
            await self._wait_turn(woken, deadline)
            woken = True

    async def _wait_turn(self, first: bool, deadline: float | None):
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if first:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        timer = None if deadline is None else loop.call_at(deadline, _give_up_waiting, waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._wake(1)  # pass the wake-up we got on to the next waiter
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _freest_connection(self) -> _Connection | None:
        best, best_free = None, 0
        for conn in self._connections:
            free = conn.free_streams()
            if free > best_free:
                best, best_free = conn, free
        if best is not None and best_free == best.limit:
            return best
        self._grow()  # busy connections: open the rest of the pool while using these
        return best

    def _wake(self, count: int):
        while count > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def _fail_waiters(self, error: Exception):
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    # -- connections -------------------------------------------------------------------

    def _grow(self):
        if self._closed:
            return
        if len(self._connections) + len(self._connecting) < self._settings.connections:
            self._connecting.add(asyncio.get_running_loop().create_task(self._connect()))

    async def _connect(self):
        conn = _Connection(self, self._authority, self._settings)
        try:
            await self._open(conn)
            failure = None
        except (OSError, TimeoutError, TransportError) as exc:
            failure = exc
        self._connecting.discard(asyncio.current_task())
        if failure is not None or self._closed:
            conn.close()
            if failure is not None:
                self._connect_failed(failure)
            return
        self._connections.append(conn)
        self._wake(conn.free_streams())

    async def _open(self, conn: _Connection):
        async with asyncio.timeout(self._settings.connect_timeout):
            await asyncio.get_running_loop().create_connection(
                lambda: conn, self._host, self._port, ssl=self._ssl,
                server_hostname=self._host)
            await conn.ready

    def _connect_failed(self, exc: Exception):
        # Waiters keep waiting while another connection may serve them.
        if not self._connections and not self._connecting:
            self._fail_waiters(NotProcessedError(f"cannot connect to {self.origin}: {exc}"))

    # -- callbacks from connections ----------------------------------------------------

    def _stream_closed(self):
        if self._waiters:
            self._wake(1)

    def _capacity_changed(self, conn: _Connection):
        if self._waiters:
            self._wake(conn.free_streams())

    def _connection_unusable(self, conn: _Connection):
        if conn in self._connections:
            self._connections.remove(conn)
        if self._waiters:
            self._grow()
