"""SIGTERM, as a deployment sends it: gunicorn answers every request it has taken, and a
push worker finishes or hands back what it holds; both exit 0.

The push workers' heartbeats are here too: a worker's row appears while it runs, ``flask
push status`` lists it, and it goes when the worker stops.
"""

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Delivery, WorkerHeartbeat
from tests.conftest import free_port
from tests.live_server import LiveServer
from tests.test_dispatch import (  # noqa: F401  (fixtures)
    _no_worker_outlives_its_test,
    apns_environ,
    assert_each_sent_once,
    count_by_state_now,
    fake,
    finished,
    one_notification,
    rows,
    worker_process,
)

pytestmark = [pytest.mark.committed, pytest.mark.slow]

GRACEFUL_TIMEOUT = 30
SLOW_UPLOADS = 8
QUICK_REQUESTS = 24
SESSION_BODY = b'{"data": {"type": "sessions"}}'
JSONAPI = "application/vnd.api+json"


@pytest.fixture
def server(service_env, tmp_path):
    env = {**service_env, "GUNICORN_THREADS": "2",
           "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
           "GUNICORN_ACCESS_LOG": str(tmp_path / "access.log")}
    server = LiveServer(free_port(), env, tmp_path, workers=3)
    server.start(timeout=60)
    yield server
    server.stop()


class RawRequest:
    """One request on its own connection, sent as the test chooses: all at once, or its
    body held back (a phone uploading over a slow network)."""

    def __init__(self, port, method, path, body=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {JSONAPI}\r\n"
                     f"Content-Type: {JSONAPI}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n").encode()
        self.body = body

    def send_all_but(self, held_back):
        self.sock.sendall(self.head + self.body[:len(self.body) - held_back])

    def send_rest(self, held_back):
        self.sock.sendall(self.body[len(self.body) - held_back:])

    def response_status(self):
        """The status of a complete response, or what went wrong instead."""
        received = b""
        try:
            while chunk := self.sock.recv(65536):
                received += chunk
        except OSError as exc:
            return f"{type(exc).__name__} after {len(received)} bytes"
        finally:
            self.sock.close()
        head, _, body = received.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        if not head.startswith(b"HTTP/1.1 ") or length != len(body):
            return f"incomplete response: {received[:80]!r}"
        return int(head[9:12])


def listen_backlog(port):
    """Connections the kernel has completed on ``port`` that no worker has accepted yet."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # LISTEN
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


def test_sigterm_during_a_load_answers_every_request_taken_and_exits_0(server):
    slow = [RawRequest(server.port, "POST", "/api/sessions", SESSION_BODY)
            for _ in range(SLOW_UPLOADS)]
    quick = [RawRequest(server.port, "GET", "/api/configs/3.1.23")
             for _ in range(QUICK_REQUESTS)]
    for request in slow:  # they hold every thread, waiting for the rest of their bodies
        request.send_all_but(held_back=10)
    for request in quick:  # queued behind them
        request.send_all_but(held_back=0)
    deadline = time.monotonic() + 30
    while listen_backlog(server.port):  # every connection taken by a worker
        assert time.monotonic() < deadline, "gunicorn did not accept the connections"
        time.sleep(0.05)

    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the workers have begun stopping with every request in hand
    for request in slow:
        request.send_rest(held_back=10)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(RawRequest.response_status, slow + quick))

    assert statuses == [201] * SLOW_UPLOADS + [200] * QUICK_REQUESTS
    assert server.process.wait(timeout=GRACEFUL_TIMEOUT + 15) == 0
    assert not server.server_errors()
    with pytest.raises(OSError):  # and it took nothing more
        socket.create_connection(("127.0.0.1", server.port), timeout=5)


def leased(app):
    with rows(app) as connection:
        return connection.execute(select(Delivery.id).where(
            Delivery.lease_until.is_not(None))).all()


@pytest.mark.parametrize("latency, grace, outcome", [
    (0.05, 30.0, "finishes"),  # the chunks in flight answer within the grace
    (5.0, 0.5, "hands back"),  # they would not: their leases are released unanswered
])
def test_sigterm_during_a_fan_out_then_a_restart_sends_each_delivery_once(
        app, fake, key_file, service_env, latency, grace, outcome):  # noqa: F811
    _, deliveries = one_notification(app, 400)
    fake.latency = latency
    environ = apns_environ(fake, key_file, APNS_REQUEST_TIMEOUT=20)
    process = worker_process(service_env, environ, PUSH_CHUNK_SIZE=20, PUSH_CONCURRENCY=2,
                             PUSH_SHUTDOWN_GRACE=grace)
    assert fake.wait_for_requests(30, timeout=90), process.communicate(timeout=30)[1][-3000:]
    process.send_signal(signal.SIGTERM)

    totals = finished(process, timeout=60)
    counts = count_by_state_now(app)
    assert not leased(app)
    assert set(counts) <= {"sent", "pending"}
    if outcome == "finishes":
        assert 30 <= counts["sent"] == totals["sent"] < 400  # it stopped taking work
    else:
        assert counts == {"pending": 400}

    fake.latency = 0
    finished(worker_process(service_env, environ, "--burst", PUSH_CHUNK_SIZE=100))
    assert_each_sent_once(app, fake, deliveries)


def heartbeats(app):
    with app.app_context():
        found = db.session.scalars(select(WorkerHeartbeat)).all()
        db.session.remove()
    return found


def test_a_running_worker_beats_shows_in_push_status_and_clears_its_beat_on_sigterm(
        app, fake, key_file, service_env):  # noqa: F811
    process = worker_process(service_env, apns_environ(fake, key_file),
                             PUSH_HEARTBEAT_INTERVAL=0.2)
    deadline = time.monotonic() + 60
    while not heartbeats(app):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the worker wrote no heartbeat"
        time.sleep(0.1)

    result = app.test_cli_runner().invoke(args=["push", "status"])
    assert result.exit_code == 0, result.output
    (shown,) = [json.loads(line) for line in result.output.splitlines()]
    assert shown["worker"] == f"{socket.gethostname()}:{process.pid}"
    assert shown["stale"] is False and shown["counts"] == {}
    assert shown["started_at"] <= shown["last_beat_at"]

    process.send_signal(signal.SIGTERM)
    finished(process, timeout=30)
    assert heartbeats(app) == []
    result = app.test_cli_runner().invoke(args=["push", "status"])
    assert "No push worker is running" in result.output
