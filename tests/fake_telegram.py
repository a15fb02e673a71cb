"""A fake Telegram Bot API for the tests: ``POST /bot<token>/sendMessage`` over real HTTP,
with the answers of the table in app/push/telegram.py, and Telegram's limits checked.

``chats[chat_id]`` picks the answer for a chat: ``"ok"`` (the default), ``"blocked"``,
``"deactivated"``, ``"kicked"``, ``"not_found"``, ``"bad"`` (another 400), ``"down"``
(a 502), or ``("migrate", new_id)``. ``burst_429(n, retry_after)`` answers the next ``n``
requests 429. Every request's chat and arrival time is kept (``arrivals``), every accepted
message is logged (``log``); a send less than ``chat_interval`` after the one before to
the same chat, or one more than ``per_second`` within one second, is counted in
``violations`` (and answered 429, as Telegram would). The limits are checked exactly,
against the moments requests arrive here."""

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "123456:ABC-test-bot-token-secret"

ANSWERS = {
    "blocked": (403, "Forbidden: bot was blocked by the user"),
    "deactivated": (403, "Forbidden: user is deactivated"),
    "kicked": (403, "Forbidden: bot was kicked from the group chat"),
    "not_found": (400, "Bad Request: chat not found"),
    "bad": (400, "Bad Request: can't parse entities"),
    "down": (502, "Bad Gateway"),
}


@dataclass(frozen=True)
class Sent:
    chat_id: object
    body: dict
    at: float


class FakeTelegram:
    def __init__(self, token=TOKEN, per_second=30, chat_interval=1.0):
        self.token = token
        self.per_second = per_second
        self.chat_interval = chat_interval
        self.chats: dict = {}
        self.log: list[Sent] = []
        self.requests: list[dict] = []
        self.arrivals: list[tuple[object, float]] = []
        self.violations = 0
        self.violation_log: list = []
        self._burst = 0
        self._burst_retry_after = 1
        self._last_by_chat: dict = {}
        self._recent: deque = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def burst_429(self, count, retry_after=1):
        with self._lock:
            self._burst, self._burst_retry_after = count, retry_after

    def sent_to(self) -> dict:
        counts = defaultdict(int)
        for sent in self.log:
            counts[sent.chat_id] += 1
        return dict(counts)

    def _answer(self, body) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(body)
            self.arrivals.append((body.get("chat_id"), time.time()))
            if self._burst:
                self._burst -= 1
                return _too_many(self._burst_retry_after)
            chat_id, now = self.arrivals[-1]
            if not body.get("text") or body.get("parse_mode") != "HTML":
                return _error(400, "Bad Request: message text is empty")
            behaviour = self.chats.get(chat_id, "ok")
            if isinstance(behaviour, tuple):
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: "
                             "group chat was upgraded to a supergroup chat",
                             "parameters": {"migrate_to_chat_id": behaviour[1]}}
            if behaviour in ANSWERS:
                return _error(*ANSWERS[behaviour])
            if self._too_fast(chat_id, now):
                self.violations += 1
                self.violation_log.append((chat_id, now))
                return _too_many(1)
            self.log.append(Sent(chat_id, body, now))
            return 200, {"ok": True, "result": {"message_id": len(self.log),
                                                "chat": {"id": chat_id}, "text": body["text"]}}

    def _too_fast(self, chat_id, now) -> bool:
        last = self._last_by_chat.get(chat_id)
        while self._recent and self._recent[0] <= now - 1:
            self._recent.popleft()
        too_fast = (last is not None and now - last < self.chat_interval) or \
            len(self._recent) >= self.per_second
        if not too_fast:
            self._last_by_chat[chat_id] = now
            self._recent.append(now)
        return too_fast

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != f"/bot{fake.token}/sendMessage":
                    status, answer = _error(401, "Unauthorized")
                else:
                    try:
                        status, answer = fake._answer(json.loads(raw))
                    except ValueError:
                        status, answer = _error(400, "Bad Request: invalid JSON")
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()


def _error(status, description):
    return status, {"ok": False, "error_code": status, "description": description}


def _too_many(retry_after):
    return 429, {"ok": False, "error_code": 429,
                 "description": f"Too Many Requests: retry after {retry_after}",
                 "parameters": {"retry_after": retry_after}}
