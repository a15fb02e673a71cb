"""A fake APNs on asyncio and ``h2``: TLS from a throwaway CA, ALPN h2, 127.0.0.1.

In-process: ``with FakeApns(...) as fake:`` serves from a background thread; its controls
(``answer``, ``set_max_concurrent_streams``, ``goaway``, ``close_abruptly``, ``hold``,
``release``) may be called from any thread. Standalone: ``python -m tests.fake_apns`` makes a
key, serves, and prints one JSON line with the URL, CA file and key to use.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import re
import signal
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.settings import SettingCodes
from hpack import NeverIndexedHeaderTuple
from hyperframe.frame import GoAwayFrame

from app.push.http2 import MemoEncoder

PUSH_TYPES = {"alert", "background", "voip", "liveactivity", "location", "complication",
              "fileprovider", "mdm", "pushtotalk"}
SUFFIXES = {"voip": ".voip", "liveactivity": ".push-type.liveactivity",
            "complication": ".complication", "fileprovider": ".pushkit.fileprovider",
            "location": ".location-query", "pushtotalk": ".voip-ptt"}
DEVICE_PATH = re.compile(r"/3/device/([0-9a-fA-F]+)")
BROADCAST_PATH = re.compile(r"/4/broadcasts/apps/([^/]+)")
CHANNELS_PATH = re.compile(r"/1/apps/([^/]+)/(channels|all-channels)")
CHANNEL_LIMIT = 10_000  # per app and environment
TOKEN_LIFETIME = 3600
TOKEN_UPDATE_INTERVAL = 20 * 60


@dataclass(frozen=True)
class Answer:
    """What the fake answers to one request: ``hang`` never answers."""

    status: int = 200
    reason: str | None = None
    timestamp: int | None = None  # 410: milliseconds since the epoch
    delay: float = 0.0
    hang: bool = False
    headers: tuple = ()  # extra answer headers (a new channel's apns-channel-id)
    body: bytes | None = None  # a success's body (a channel read)


@dataclass
class Logged:
    apns_id: str | None
    token: str | None
    topic: str | None
    push_type: str | None
    connection: int
    stream_id: int
    status: int | None = None  # None: never answered (held, hung, dropped by GOAWAY)
    headers: dict | None = None  # the request's headers and body (None: keep_log off)
    body: bytes | None = None
    received_at: float = field(default_factory=time.time)  # when its last frame came

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class _Held:
    conn: "_ServerConnection"
    stream_id: int
    entry: Logged
    answer: Answer


class FakeClock:
    """UNIX seconds that a test moves by hand."""

    def __init__(self, now: float | None = None):
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float):
        self.now += seconds


def make_key(path: Path | None = None) -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key; written as a ``.p8`` PEM file when ``path`` is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    if path is not None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return key


class _ProviderTokens:
    """The JWT checks: signature, kid, iss, age, and how often new tokens appear."""

    def __init__(self, public_key, key_id: str, team_id: str, clock):
        self._public_key = public_key
        self._key_id = key_id
        self._team_id = team_id
        self._clock = clock
        self._verified: dict[str, int] = {}
        self._last_new_at = None
        self.seen = 0

    def check(self, authorization: str | None) -> tuple[int, str] | None:
        if not authorization or not authorization.startswith("bearer "):
            return 403, "MissingProviderToken"
        token = authorization[len("bearer "):]
        issued_at = self._verified.get(token)
        if issued_at is None:
            problem = self._first_sight(token)
            if problem:
                return problem
            issued_at = self._verified[token]
        if self._clock() - issued_at > TOKEN_LIFETIME:
            return 403, "ExpiredProviderToken"
        return None

    def _first_sight(self, token: str) -> tuple[int, str] | None:
        try:
            if jwt.get_unverified_header(token).get("kid") != self._key_id:
                return 403, "InvalidProviderToken"
            claims = jwt.decode(token, self._public_key, algorithms=["ES256"],
                                options={"verify_iat": False, "require": ["iss", "iat"]})
        except jwt.PyJWTError:
            return 403, "InvalidProviderToken"
        if claims["iss"] != self._team_id:
            return 403, "InvalidProviderToken"
        now = self._clock()
        if self._last_new_at is not None and now - self._last_new_at < TOKEN_UPDATE_INTERVAL:
            return 429, "TooManyProviderTokenUpdates"
        self._last_new_at = now
        self._verified[token] = claims["iat"]
        self.seen += 1
        return None


class _ServerH2(h2.connection.H2Connection):
    # h2 walks every stream each time one opens, to count the open ones and drop the closed;
    # the fake drops each stream once answered (``forget``), so what is left is open.
    def _open_streams(self, remainder: int) -> int:
        if remainder == int(self.config.client_side):
            return super()._open_streams(remainder)
        return len(self.streams)

    def forget(self, stream_id: int):
        stream = self.streams.get(stream_id)
        if stream is not None and stream.closed:
            del self.streams[stream_id]
            self._closed_streams[stream_id] = stream.closed_by


class _ServerConnection(asyncio.Protocol):
    def __init__(self, fake: "FakeApns", number: int, manages: bool = False):
        self._fake = fake
        self.number = number
        self.manages = manages  # on the channel management port
        self._loop = asyncio.get_running_loop()
        self._h2 = _ServerH2(config=fake.h2_config)
        self._h2.encoder = MemoEncoder()
        self._h2.local_settings = h2.settings.Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: fake.max_concurrent_streams})
        self._requests: dict[int, tuple[dict, list]] = {}
        self._open: set[int] = set()
        self._transport = None
        self._flush_scheduled = False
        self.goaway_after: int | None = None
        self.highest_stream = 0

    def connection_made(self, transport):
        self._transport = transport
        self._h2.initiate_connection()
        self._flush()
        self._fake._connections.add(self)

    def connection_lost(self, exc):
        self._fake._connections.discard(self)

    def data_received(self, data):
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._transport.abort()
            return
        for event in events:
            self._on_event(event)
        self._schedule_flush()

    def _on_event(self, event):
        if isinstance(event, h2.events.RequestReceived):
            self._requests[event.stream_id] = (dict(event.headers), [])
            self._open.add(event.stream_id)
            self._fake._note_open_streams(len(self._open))
            self.highest_stream = max(self.highest_stream, event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_id in self._requests:
                self._requests[event.stream_id][1].append(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            headers, body = self._requests.pop(event.stream_id)
            self._fake._handle(self, event.stream_id, headers, b"".join(body))
        elif isinstance(event, h2.events.StreamReset):
            self._requests.pop(event.stream_id, None)
            self._open.discard(event.stream_id)
            self._h2.forget(event.stream_id)

    def respond(self, stream_id: int, status: int, apns_id: str | None, body: bytes,
                extra_headers=()):
        if self.goaway_after is not None and stream_id > self.goaway_after:
            return False
        self._open.discard(stream_id)
        headers = [(":status", str(status)), *extra_headers]
        if apns_id:  # unique to the request: kept out of the HPACK table
            headers.append(NeverIndexedHeaderTuple("apns-id", apns_id))
        try:
            self._h2.send_headers(stream_id, headers, end_stream=not body)
            if body:
                self._h2.send_data(stream_id, body, end_stream=True)
        except h2.exceptions.H2Error:
            return False  # the client reset the stream or the connection is gone
        self._h2.forget(stream_id)
        self._schedule_flush()
        return True

    def update_stream_limit(self, limit: int):
        self._h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: limit})
        self._flush()

    def goaway(self, last_stream_id: int | None):
        # Written by hand: h2 would refuse to answer the streams below last_stream_id after
        # its own GOAWAY.
        self.goaway_after = self.highest_stream if last_stream_id is None else last_stream_id
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.goaway_after
        frame.error_code = 0
        self._flush()
        self._transport.write(frame.serialize())

    def abort(self):
        self._transport.abort()

    def stall(self):
        self._transport.pause_reading()

    def _schedule_flush(self):
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self):
        self._flush_scheduled = False
        data = self._h2.data_to_send()
        if data:
            self._transport.write(data)


class Tally:
    """The tokens answered 200, for a benchmark's fake that keeps no log (``--fast``): how
    many pushes, how many tokens, how many tokens more than once. A token is kept as its
    64-bit hash (a million of them in some 60 MB; a collision among 10⁶ has odds of 10⁻⁷)."""

    def __init__(self):
        self.pushes = 0
        self.twice = 0
        self._seen: set[int] = set()

    def accepted(self, token):
        self.pushes += 1
        key = hash(token)
        if key in self._seen:
            self.twice += 1
        else:
            self._seen.add(key)

    def summary(self) -> dict:
        return {"pushes": self.pushes, "tokens": len(self._seen), "twice": self.twice}


class FakeApns:
    """The fake server. ``script[token]``: a list of ``Answer``s, used in turn (the last
    repeats); tokens without a script get 200."""

    def __init__(self, *, public_key, key_id="KEYID12345", team_id="TEAMID1234",
                 bundle_id="com.example.app", max_concurrent_streams=1000, clock=time.time,
                 latency=0.0, keep_log=True, validate_headers=True, tally=False,
                 ca: trustme.CA | None = None):
        self.key_id = key_id
        self.team_id = team_id
        self.bundle_id = bundle_id
        self.max_concurrent_streams = max_concurrent_streams
        self.latency = latency
        self.keep_log = keep_log
        self.h2_config = h2.config.H2Configuration(
            client_side=False, header_encoding="utf-8", validate_inbound_headers=validate_headers,
            normalize_outbound_headers=False, validate_outbound_headers=False)
        self.script: dict[str, list[Answer]] = {}
        self.log: list[Logged] = []
        self.first_request = asyncio.Event()  # set when the first request is read
        self.first_request_at: float | None = None
        self.manage_log: list[Logged] = []  # channel management requests
        self.answered = 0
        self.tally = Tally() if tally else None
        # Per stream-limit setting (the first, then one per change): the most streams open
        # on one connection when a new one arrived.
        self.open_stream_peaks = [0]
        self._tokens = _ProviderTokens(public_key, key_id, team_id, clock)
        self._connections: set[_ServerConnection] = set()
        self._connection_count = 0
        self.channels: dict[str, int] = {}  # channel id → its message storage policy
        self.channel_limit = CHANNEL_LIMIT
        self.manage_url = None
        self._manage_server = None
        self._holding = False
        self._held: list[_Held] = []
        self._received = threading.Condition()
        self.ca = ca or trustme.CA()
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-apns-")
        self.ca_file = str(Path(self._tmp.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self._loop = None
        self._server = None
        self._thread = None
        self.url = None

    @property
    def provider_tokens_seen(self) -> int:
        return self._tokens.seen

    def allowed_topics(self) -> set[str]:
        return {self.bundle_id} | {self.bundle_id + suffix for suffix in SUFFIXES.values()}

    def answer(self, token: str, *answers: Answer):
        self.script[token] = list(answers)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> "FakeApns":
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True,
                                        name="fake-apns")
        self._thread.start()
        started.wait()
        return self

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _run(self, started: threading.Event):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(self.serve())
        started.set()
        self._loop.run_forever()
        self._server.close()
        self._manage_server.close()
        for conn in list(self._connections):
            conn.abort()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    async def serve(self, host="127.0.0.1", port=0):
        """Listen (in the running loop); sets ``url``."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.get_running_loop().create_server(
            self._new_connection, host, port, ssl=self._ssl_context(host))
        self.url = f"https://{host}:{self._server.sockets[0].getsockname()[1]}"
        # channel management: its own port, as APNs has its own hosts and ports for it
        self._manage_server = await asyncio.get_running_loop().create_server(
            lambda: self._new_connection(manages=True), host, 0, ssl=self._ssl_context(host))
        self.manage_url = f"https://{host}:{self._manage_server.sockets[0].getsockname()[1]}"

    def _ssl_context(self, host):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(host, "localhost").configure_cert(context)
        context.set_alpn_protocols(["h2"])
        return context

    def _new_connection(self, manages=False):
        self._connection_count += 1
        return _ServerConnection(self, self._connection_count, manages)

    # -- controls (any thread) ---------------------------------------------------------

    def _call(self, function, *args):
        if threading.current_thread() is self._thread or self._thread is None:
            return function(*args)
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(function, *args), self._loop)
        return future.result()

    def set_max_concurrent_streams(self, limit: int):
        """Advertise a new SETTINGS_MAX_CONCURRENT_STREAMS on every connection."""
        def update():
            self.max_concurrent_streams = limit
            self.open_stream_peaks.append(0)
            for conn in self._connections:
                conn.update_stream_limit(limit)
        self._call(update)

    def goaway(self, last_stream_id: int | None = None):
        """GOAWAY on every connection; streams above ``last_stream_id`` (default: the last
        received) are dropped unanswered, the others still get their answer."""
        def send():
            for conn in self._connections:
                conn.goaway(last_stream_id)
        self._call(send)

    def stall(self):
        """Stop reading from every connection: requests and PINGs go unanswered."""
        self._call(lambda: [conn.stall() for conn in list(self._connections)])

    def close_abruptly(self):
        self._call(lambda: [conn.abort() for conn in list(self._connections)])

    def hold(self):
        """Keep every answer until ``release``."""
        self._call(setattr, self, "_holding", True)

    def release(self):
        def let_go():
            self._holding = False
            held, self._held = self._held, []
            for item in held:
                self._respond(item.conn, item.stream_id, item.entry, item.answer)
        self._call(let_go)

    def _note_open_streams(self, count: int):
        self.open_stream_peaks[-1] = max(self.open_stream_peaks[-1], count)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self._received:
            return self._received.wait_for(lambda: len(self.log) >= count, timeout)

    def wait_for_tokens(self, tokens, timeout: float = 10.0) -> bool:
        """Until each of ``tokens`` has been received at least once (a count of requests
        would also count retries of others)."""
        wanted = {token.lower() for token in tokens}
        with self._received:
            return self._received.wait_for(
                lambda: wanted <= {entry.token for entry in self.log}, timeout)

    def twice_accepted(self) -> list[str]:
        """apns-ids answered 200 more than once (must stay empty)."""
        seen, twice = set(), []
        for entry in self.log:
            if entry.status == 200:
                if entry.apns_id in seen:
                    twice.append(entry.apns_id)
                seen.add(entry.apns_id)
        return twice

    # -- requests ----------------------------------------------------------------------

    def _handle(self, conn: _ServerConnection, stream_id: int, headers: dict, body: bytes):
        entry = self._entry(conn, stream_id, headers, body)
        if self.first_request_at is None:
            self.first_request_at = entry.received_at
            self.first_request.set()
        if self.keep_log:
            with self._received:
                (self.manage_log if conn.manages else self.log).append(entry)
                self._received.notify_all()
        if conn.manages:
            answer = self._manage(headers, body)
        else:
            problem = self._check(headers, body, entry)
            answer = self.Answer(*problem) if problem else self._scripted(entry.token)
        if answer.hang:
            return
        if self._holding:
            self._held.append(_Held(conn, stream_id, entry, answer))
            return
        delay = answer.delay + self.latency
        if delay:
            self._loop.call_later(delay, self._respond, conn, stream_id, entry, answer)
        else:
            self._respond(conn, stream_id, entry, answer)

    Answer = Answer  # what a subclass answers with

    def _entry(self, conn, stream_id: int, headers: dict, body: bytes) -> Logged:
        match = DEVICE_PATH.fullmatch(headers.get(":path", ""))
        return Logged(headers.get("apns-id") or headers.get("apns-request-id"),
                      match and match.group(1).lower(),
                      headers.get("apns-topic"), headers.get("apns-push-type"),
                      conn.number, stream_id,
                      headers=dict(headers) if self.keep_log else None,
                      body=body if self.keep_log else None)

    def _scripted(self, token: str) -> Answer:
        answers = self.script.get(token)
        if not answers:
            return self.Answer()
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def _respond(self, conn, stream_id, entry: Logged, answer: Answer):
        body = answer.body or b""
        if answer.status >= 300:
            error = {"reason": answer.reason}
            if answer.timestamp is not None:
                error["timestamp"] = answer.timestamp
            body = json.dumps(error).encode()
        if conn.respond(stream_id, answer.status, entry.apns_id, body, answer.headers):
            self._answered(entry, answer.status)

    def _answered(self, entry, status: int):
        entry.status = status
        self.answered += 1
        if status == 200 and self.tally is not None:
            self.tally.accepted(entry.token)

    def _check(self, headers: dict, body: bytes, entry) -> tuple[int, str] | None:
        if headers.get(":method") != "POST":
            return 405, "MethodNotAllowed"
        if BROADCAST_PATH.fullmatch(headers.get(":path", "")):
            return self._tokens.check(headers.get("authorization")) or \
                self._check_broadcast(headers, body)
        if not entry.token:
            return 404, "BadPath"
        return (self._tokens.check(headers.get("authorization"))
                or self._check_headers(headers) or _check_body(headers, body))

    # -- broadcasts and channel management (iOS 18) -------------------------------------

    def _check_broadcast(self, headers: dict, body: bytes) -> tuple[int, str] | None:
        """``POST /4/broadcasts/apps/<bundle id>`` naming the channel in apns-channel-id."""
        if BROADCAST_PATH.fullmatch(headers[":path"]).group(1) != self.bundle_id:
            return 400, "BadTopic"
        channel_id = headers.get("apns-channel-id")
        if not channel_id:
            return 400, "MissingChannelId"
        if channel_id not in self.channels:
            return 400, "ChannelNotRegistered"
        if headers.get("apns-push-type") != "liveactivity":
            return 400, "InvalidPushType"
        if headers.get("apns-priority", "10") not in ("5", "10"):
            return 400, "BadPriority"
        if self.channels[channel_id] == 0 and headers.get("apns-expiration", "0") != "0":
            return 400, "BadExpirationDate"  # a channel storing nothing takes no expiry
        if "apns-request-id" in headers and not _is_uuid(headers["apns-request-id"]):
            return 400, "BadMessageId"
        return _check_body(headers, body)

    def _manage(self, headers: dict, body: bytes) -> Answer:
        """The channel management API: create, read, list and delete channels."""
        match = CHANNELS_PATH.fullmatch(headers.get(":path", ""))
        if match is None:
            return self.Answer(404, "BadPath")
        problem = self._tokens.check(headers.get("authorization"))
        if problem:
            return self.Answer(*problem)
        if match.group(1) != self.bundle_id:
            return self.Answer(400, "BadTopic")
        method, listing = headers.get(":method"), match.group(2) == "all-channels"
        if listing:
            return self._json(200, {"channels": sorted(self.channels)}) if method == "GET" \
                else self.Answer(405, "MethodNotAllowed")
        if method == "POST":
            return self._create_channel(body)
        if method not in ("GET", "DELETE"):
            return self.Answer(405, "MethodNotAllowed")
        channel_id = headers.get("apns-channel-id")
        if not channel_id:
            return self.Answer(400, "MissingChannelId")
        if channel_id not in self.channels:
            return self.Answer(404, "ChannelNotRegistered")
        if method == "DELETE":
            del self.channels[channel_id]
            return self.Answer(204)
        return self._json(200, {"message-storage-policy": self.channels[channel_id],
                                "push-type": "LiveActivity"})

    def _create_channel(self, body: bytes) -> Answer:
        try:
            config = json.loads(body)
        except ValueError:
            return self.Answer(400, "BadRequestBody")
        if not isinstance(config, dict) or "push-type" not in config:
            return self.Answer(400, "MissingPushType")
        if config["push-type"] != "LiveActivity":
            return self.Answer(400, "InvalidPushType")
        if config.get("message-storage-policy") not in (0, 1):
            return self.Answer(400, "BadMessageStoragePolicy")
        if len(self.channels) >= self.channel_limit:
            return self.Answer(400, "CannotCreateChannelConfig")
        channel_id = base64.b64encode(uuid.uuid4().bytes).decode()
        self.channels[channel_id] = config["message-storage-policy"]
        return self.Answer(201, headers=(("apns-channel-id", channel_id),))

    def delete_channel(self, channel_id: str):
        """As if another system (or Apple) deleted it: broadcasts to it are refused."""
        self._call(self.channels.pop, channel_id, None)

    def _json(self, status: int, document) -> Answer:
        return self.Answer(status, body=json.dumps(document).encode())

    def _check_headers(self, headers: dict) -> tuple[int, str] | None:
        topic, push_type = headers.get("apns-topic"), headers.get("apns-push-type")
        if not topic:
            return 400, "MissingTopic"
        if topic not in self.allowed_topics():
            return 400, "TopicDisallowed"
        if push_type not in PUSH_TYPES:
            return 400, "InvalidPushType"
        if topic != self.bundle_id + SUFFIXES.get(push_type, ""):
            return 400, "BadTopic"
        priority = headers.get("apns-priority", "10")
        if priority not in ("1", "5", "10") or (push_type == "background" and priority != "5") \
                or (push_type == "liveactivity" and priority == "1"):
            return 400, "BadPriority"
        if "apns-id" in headers and not _is_uuid(headers["apns-id"]):
            return 400, "BadMessageId"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId"
        return None


# The aps members each Live Activity event needs, and those it must not carry. APNs itself
# answers 200 and the device drops such a push: the fake refuses it, so a test sees it.
LIVE_ACTIVITY_MEMBERS = {
    "start": ({"timestamp", "event", "content-state", "attributes-type", "attributes"},
              {"dismissal-date"}),
    "update": ({"timestamp", "event", "content-state"},
               {"dismissal-date", "attributes-type", "attributes"}),
    "end": ({"timestamp", "event", "content-state"}, {"attributes-type", "attributes"}),
}
BAD_LIVE_ACTIVITY = "BadLiveActivityPayload"  # the fake's own reason (see above)


def _check_body(headers: dict, body: bytes) -> tuple[int, str] | None:
    limit = 5120 if headers.get("apns-push-type") == "voip" else 4096
    if len(body) > limit:
        return 413, "PayloadTooLarge"
    if not body:
        return 400, "PayloadEmpty"
    if headers.get("apns-push-type") == "liveactivity":
        return _check_live_activity(body)
    return None


def _check_live_activity(body: bytes) -> tuple[int, str] | None:
    try:
        aps = json.loads(body)["aps"]
        needed, refused = LIVE_ACTIVITY_MEMBERS[aps["event"]]
    except (ValueError, KeyError, TypeError):
        return 400, BAD_LIVE_ACTIVITY
    if not needed <= set(aps) or refused & set(aps) or not isinstance(aps["timestamp"], int):
        return 400, BAD_LIVE_ACTIVITY
    return None


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


async def _as_coroutine(function, *args):
    return function(*args)


def standalone_options(description: str) -> dict:
    """A standalone fake's command line, as the fake's keyword arguments."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--max-streams", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--fast", action="store_true",
                        help="for benchmarks: keep no request log, skip h2's header checks")
    parser.add_argument("--tally", action="store_true",
                        help="count the tokens answered 200 and print them as one JSON line "
                             "on SIGTERM (a benchmark's check that each got one push)")
    args = parser.parse_args()
    return {"max_concurrent_streams": args.max_streams, "latency": args.latency,
            "keep_log": not args.fast, "validate_headers": not args.fast,
            "tally": args.tally}


def serve_standalone(fake: FakeApns, describe):
    """Serve until SIGTERM or Ctrl-C, printing ``describe()`` (one JSON line: where and
    how to connect) once listening, when the first request came (a second line), and the
    tally (if kept) when stopped (the last line)."""
    async def serve():
        await fake.serve()
        print(json.dumps(describe()), flush=True)
        stopped = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
        reporting = asyncio.create_task(report_first_request(fake))
        await stopped.wait()
        reporting.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    if fake.tally is not None:
        print(json.dumps(fake.tally.summary()), flush=True)


async def report_first_request(fake: "FakeApns"):
    """A standalone fake's second line of output: when its first request came (for a
    benchmark's latency); then it serves on."""
    await fake.first_request.wait()
    print(json.dumps({"first_request_at": fake.first_request_at}), flush=True)
    await asyncio.Event().wait()


def main():
    options = standalone_options(__doc__.splitlines()[0])
    workdir = Path(tempfile.mkdtemp(prefix="fake-apns-key-"))
    key = make_key(workdir / "AuthKey.p8")
    fake = FakeApns(public_key=key.public_key(), **options)
    serve_standalone(fake, lambda: {
        "url": fake.url, "ca_file": fake.ca_file, "key_file": str(workdir / "AuthKey.p8"),
        "key_id": fake.key_id, "team_id": fake.team_id, "bundle_id": fake.bundle_id})


if __name__ == "__main__":
    main()
