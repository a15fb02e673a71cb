"""A webhook receiver for the tests: a real HTTP/1.1 server that verifies every request's
Standard Webhooks signature with the reference library (``standardwebhooks``) and answers
as told, per path: a status (with headers), a redirect, a hang, or a reset connection.

``answers[path]`` is a list consumed one answer per request (the last one repeats); an
``Answer`` with ``hang`` sleeps that long before answering, ``reset`` closes the socket
without answering, ``endless`` writes a body far larger than anyone should read (how much
was written before the client let go: ``endless_written``). Every request is logged,
verified or not (``Received.verified``)."""

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import standardwebhooks

ENDLESS = 1 << 30


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict = field(default_factory=dict)
    hang: float = 0.0
    reset: bool = False
    body: bytes = b""
    endless: bool = False  # a 1 GiB body, written until the client stops reading


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict
    body: dict | None
    verified: bool
    at: float
    raw: bytes = b""


class WebhookReceiver:
    def __init__(self, secrets: dict[str, str] | None = None):
        """``secrets``: path → the ``whsec_…`` secret its requests must be signed with."""
        self.secrets = dict(secrets or {})
        self.answers: dict[str, list[Answer]] = {}
        self.log: list[Received] = []
        self._lock = threading.Lock()
        self.connections = 0
        self.endless_written = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path="/hook") -> str:
        return self.base_url + path

    def answer(self, path, *answers: Answer):
        self.answers[path] = list(answers)

    def received(self, path=None) -> list[Received]:
        with self._lock:
            return [entry for entry in self.log if path is None or entry.path == path]

    def _next_answer(self, path) -> Answer:
        with self._lock:
            queue = self.answers.get(path) or [Answer()]
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _record(self, path, headers, raw):
        secret = self.secrets.get(path.partition("?")[0])
        verified = False
        if secret is not None:
            try:
                standardwebhooks.Webhook(secret).verify(raw, headers)
                verified = True
            except standardwebhooks.webhooks.WebhookVerificationError:
                verified = False
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self.log.append(Received(path, headers, body, verified, time.time(), raw))

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with receiver._lock:
                    receiver.connections += 1

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(self.path, headers, raw)
                answer = receiver._next_answer(self.path)
                if answer.hang:
                    time.sleep(answer.hang)
                if answer.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                length = ENDLESS if answer.endless else len(answer.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if answer.endless:
                    self._write_endlessly()
                else:
                    self.wfile.write(answer.body)

            def _write_endlessly(self):
                chunk = b"x" * 65536
                try:
                    for _ in range(ENDLESS // len(chunk)):
                        self.wfile.write(chunk)
                        receiver.endless_written += len(chunk)
                except OSError:  # the client closed the connection: it read enough
                    self.close_connection = True

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
