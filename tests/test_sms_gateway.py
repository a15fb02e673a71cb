"""The HTTP gateway sender against a real HTTP server on 127.0.0.1."""

import base64
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import SmsMessage, VerificationCode
from app.sms import HttpGatewaySender, SmsDeliveryError, SmsDeliveryUncertain, TwilioSender
from tests.factories import CODE_IN_TEXT, bearer, create_session, random_phone, session_patch


class Gateway:
    """A fake SMS gateway: answers each POST with the next planned status (the last one
    repeats), optionally after a delay or with a Retry-After, and records what it
    received."""

    def __init__(self):
        self.statuses = [200]
        self.delay = 0.0
        self.retry_after = None
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with gateway.lock:
                    gateway.requests.append({"path": self.path, "headers": dict(self.headers),
                                             "body": body})
                    index = len(gateway.requests) - 1
                    status = gateway.statuses[min(index, len(gateway.statuses) - 1)]
                if gateway.delay:
                    gateway.release.wait(gateway.delay)
                answer = json.dumps({"id": f"msg-{index}"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    if gateway.retry_after is not None:
                        self.send_header("Retry-After", gateway.retry_after)
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/messages"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)

    def bodies(self):
        return [json.loads(request["body"]) for request in self.requests]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def gateway():
    with Gateway() as gateway:
        yield gateway


@pytest.fixture
def http_sender(app, gateway, monkeypatch):
    """The session app texting through the local gateway."""
    for name, value in {"SMS_SENDER": "http", "SMS_GATEWAY_URL": gateway.url,
                        "SMS_GATEWAY_TOKEN": "gw-secret-token", "SMS_GATEWAY_FROM": "Pushreg",
                        "SMS_GATEWAY_TIMEOUT": 2.0, "SMS_GATEWAY_RETRIES": 2}.items():
        monkeypatch.setitem(app.config, name, value)
    return gateway


def ask(client, phone):
    session_id = create_session(client)
    return client.patch(f"/api/sessions/{session_id}",
                        json=session_patch(session_id, phone_number=phone),
                        headers=bearer(session_id)), session_id


def rows(app, model):
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
    return count


# -- the sender on its own ---------------------------------------------------------------

def test_sender_posts_json_with_bearer_token(gateway):
    sender = HttpGatewaySender(gateway.url, token="tok-123", sender_id="Pushreg", timeout=2,
                               retries=0)
    sender.send("+14155550123", "Your code is 123456.")
    [request] = gateway.requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["Authorization"] == "Bearer tok-123"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"to": "+14155550123", "body": "Your code is 123456.",
                                           "from": "Pushreg"}


def test_sender_without_token_or_from(gateway):
    HttpGatewaySender(gateway.url, timeout=2, retries=0).send("+14155550123", "hi")
    [request] = gateway.requests
    assert "Authorization" not in request["headers"]
    assert json.loads(request["body"]) == {"to": "+14155550123", "body": "hi"}


def test_sender_retries_503_then_succeeds(gateway):
    gateway.statuses = [503, 503, 200]
    HttpGatewaySender(gateway.url, timeout=2, retries=2).send("+14155550123", "hi")
    assert len(gateway.requests) == 3
    assert gateway.bodies()[0] == gateway.bodies()[2]


def test_sender_retries_429_then_succeeds(gateway):
    gateway.statuses = [429, 200]
    gateway.retry_after = "0"
    HttpGatewaySender(gateway.url, timeout=2, retries=2).send("+14155550123", "hi")
    assert len(gateway.requests) == 2


def test_every_attempt_at_one_text_carries_the_same_idempotency_key(gateway):
    gateway.statuses = [503, 429, 200]
    sender = HttpGatewaySender(gateway.url, timeout=2, retries=2)
    sender.send("+14155550123", "hi")
    sender.send("+14155550123", "hi again")
    keys = [request["headers"]["Idempotency-Key"] for request in gateway.requests]
    assert len(keys) == 4
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert all(uuid.UUID(key).version == 4 for key in keys)


def test_sender_does_not_wait_for_a_long_retry_after(gateway):
    gateway.statuses = [503, 200]
    gateway.retry_after = "120"
    with pytest.raises(SmsDeliveryError):
        HttpGatewaySender(gateway.url, timeout=2, retries=2).send("+14155550123", "hi")
    assert len(gateway.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
def test_sender_does_not_retry_other_server_errors(gateway, status):
    """The gateway may have sent the text before failing; a retry could send it twice."""
    gateway.statuses = [status, 200]
    with pytest.raises(SmsDeliveryError):
        HttpGatewaySender(gateway.url, timeout=2, retries=2).send("+14155550123", "hi")
    assert len(gateway.requests) == 1


def test_sender_does_not_retry_after_a_read_timeout(gateway):
    gateway.delay = 3.0
    sender = HttpGatewaySender(gateway.url, timeout=0.3, retries=2)
    with pytest.raises(SmsDeliveryUncertain):
        sender.send("+14155550123", "hi")
    assert len(gateway.requests) == 1


def test_sender_gives_up_after_its_retries(gateway):
    gateway.statuses = [503]
    sender = HttpGatewaySender(gateway.url, timeout=2, retries=1)
    with pytest.raises(SmsDeliveryError):
        sender.send("+14155550123", "hi")
    assert len(gateway.requests) == 2


def test_sender_does_not_retry_a_client_error(gateway):
    gateway.statuses = [400, 200]
    with pytest.raises(SmsDeliveryError):
        HttpGatewaySender(gateway.url, timeout=2, retries=3).send("+14155550123", "hi")
    assert len(gateway.requests) == 1


def test_sender_times_out(gateway):
    gateway.delay = 3.0
    sender = HttpGatewaySender(gateway.url, timeout=0.3, retries=0)
    started = time.monotonic()
    with pytest.raises(SmsDeliveryError):
        sender.send("+14155550123", "hi")
    assert time.monotonic() - started < 1.5
    assert len(gateway.requests) == 1


def test_sender_unreachable_gateway():
    from tests.conftest import free_port

    sender = HttpGatewaySender(f"http://127.0.0.1:{free_port()}/", timeout=0.5, retries=1)
    with pytest.raises(SmsDeliveryError) as failure:
        sender.send("+14155550123", "hi")
    assert not isinstance(failure.value, SmsDeliveryUncertain)  # nothing was sent


def test_unreachable_gateway_is_a_502_and_leaves_no_code(client, app, http_sender,
                                                         monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setitem(app.config, "SMS_GATEWAY_URL", f"http://127.0.0.1:{free_port()}/")
    response, _ = ask(client, random_phone())
    assert response.status_code == 502, response.get_json()
    assert rows(app, VerificationCode) == 0


# -- through the API ---------------------------------------------------------------------

def test_code_is_texted_through_the_gateway(client, app, http_sender):
    phone = random_phone()
    response, session_id = ask(client, phone)
    assert response.status_code == 200, response.get_json()

    [request] = http_sender.requests
    assert request["headers"]["Authorization"] == "Bearer gw-secret-token"
    body = json.loads(request["body"])
    assert set(body) == {"to", "body", "from"}
    assert body["to"] == phone
    assert body["from"] == "Pushreg"
    code = CODE_IN_TEXT.search(body["body"]).group(1)
    assert rows(app, SmsMessage) == 0  # the outbox is not used
    assert rows(app, VerificationCode) == 1

    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, verification_code=code),
                            headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["relationships"]["user"]["data"] is not None


def test_gateway_503s_are_retried(client, app, http_sender):
    http_sender.statuses = [503, 503, 200]
    response, _ = ask(client, random_phone())
    assert response.status_code == 200, response.get_json()
    assert len(http_sender.requests) == 3
    assert rows(app, VerificationCode) == 1


def test_gateway_failure_is_a_502_and_leaves_no_code(client, app, http_sender):
    http_sender.statuses = [503]
    response, session_id = ask(client, random_phone())
    assert response.status_code == 502, response.get_json()
    [error] = response.get_json()["errors"]
    assert error["code"] == "SMS_DELIVERY_FAILED"
    assert error["status"] == "502"
    assert len(http_sender.requests) == 1 + app.config["SMS_GATEWAY_RETRIES"]
    assert rows(app, VerificationCode) == 0
    assert rows(app, SmsMessage) == 0
    # the session is intact and the next try goes through
    http_sender.statuses = [200]
    http_sender.requests.clear()
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, phone_number=random_phone()),
                            headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()
    assert rows(app, VerificationCode) == 1


def test_failed_send_keeps_the_earlier_code(client, app, http_sender):
    """A new request that cannot be texted does not retire the code already sent."""
    phone = random_phone()
    response, session_id = ask(client, phone)
    assert response.status_code == 200
    code = CODE_IN_TEXT.search(http_sender.bodies()[0]["body"]).group(1)

    http_sender.statuses = [500]
    http_sender.requests.clear()
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, phone_number=phone),
                            headers=bearer(session_id))
    assert response.status_code == 502
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, verification_code=code),
                            headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()


def test_gateway_timeout_keeps_the_code_that_may_have_arrived(client, app, http_sender,
                                                               monkeypatch, caplog):
    """After a read timeout the gateway may be delivering the text: it is not sent again,
    and the code stays valid, so the request succeeds."""
    monkeypatch.setitem(app.config, "SMS_GATEWAY_TIMEOUT", 0.3)
    http_sender.delay = 3.0
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        response, session_id = ask(client, random_phone())
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.get_json()
    assert elapsed < 1.5
    assert len(http_sender.requests) == 1  # one text for one code
    assert "may have been delivered" in caplog.text
    code = CODE_IN_TEXT.search(http_sender.bodies()[0]["body"]).group(1)
    assert code not in caplog.text
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, verification_code=code),
                            headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()


def test_gateway_error_does_not_leak_the_code_or_token(client, app, http_sender, caplog):
    http_sender.statuses = [503]
    with caplog.at_level("DEBUG"):
        response, _ = ask(client, random_phone())
    assert response.status_code == 502
    code = CODE_IN_TEXT.search(http_sender.bodies()[0]["body"]).group(1)
    assert code not in response.get_data(as_text=True)
    assert code not in caplog.text
    assert "gw-secret-token" not in caplog.text


# -- Twilio's Messages API, against the same fake at Twilio's paths -----------------------

ACCOUNT = "AC" + "0" * 32
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


def twilio_base(gateway):
    return gateway.url.removesuffix("/v1/messages")


def form(request):
    return {name: values[0] for name, values in parse_qs(request["body"].decode()).items()}


def basic(request):
    scheme, credentials = request["headers"]["Authorization"].split()
    assert scheme == "Basic"
    return tuple(base64.b64decode(credentials).decode().split(":", 1))


@pytest.fixture
def twilio(app, gateway, monkeypatch):
    gateway.statuses = [201]
    for name, value in {"SMS_SENDER": "twilio", "TWILIO_BASE_URL": twilio_base(gateway),
                        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": "twilio-auth-token",
                        "TWILIO_MESSAGING_SERVICE_SID": "MG" + "1" * 32,
                        "SMS_GATEWAY_TIMEOUT": 2.0, "SMS_GATEWAY_RETRIES": 2}.items():
        monkeypatch.setitem(app.config, name, value)
    return gateway


def test_twilio_posts_a_form_with_basic_auth_from_a_messaging_service(client, app, twilio):
    phone = random_phone()
    response, session_id = ask(client, phone)
    assert response.status_code == 200, response.get_json()

    [request] = twilio.requests
    assert request["path"] == MESSAGES_PATH
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert basic(request) == (ACCOUNT, "twilio-auth-token")
    sent = form(request)
    assert set(sent) == {"To", "Body", "MessagingServiceSid"}
    assert (sent["To"], sent["MessagingServiceSid"]) == (phone, "MG" + "1" * 32)
    code = CODE_IN_TEXT.search(sent["Body"]).group(1)
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, verification_code=code),
                            headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()
    assert rows(app, SmsMessage) == 0


def test_twilio_with_an_api_key_and_a_from_number(gateway):
    gateway.statuses = [201]
    TwilioSender(twilio_base(gateway), ACCOUNT, ("SK" + "2" * 32, "key-secret"),
                 from_number="+14155550100", timeout=2, retries=0).send("+14155550123", "hi")
    [request] = gateway.requests
    assert request["path"] == MESSAGES_PATH
    assert basic(request) == ("SK" + "2" * 32, "key-secret")
    assert form(request) == {"To": "+14155550123", "Body": "hi", "From": "+14155550100"}


def test_twilio_429_is_retried_and_a_read_timeout_is_not(gateway):
    gateway.statuses = [429, 201]
    sender = TwilioSender(twilio_base(gateway), ACCOUNT, (ACCOUNT, "t"),
                          from_number="+14155550100", timeout=0.3, retries=2)
    sender.send("+14155550123", "hi")
    assert len(gateway.requests) == 2
    gateway.delay = 3.0
    with pytest.raises(SmsDeliveryUncertain):
        sender.send("+14155550123", "hi")
    assert len(gateway.requests) == 3


def test_twilio_refusing_the_text_is_a_502_and_leaves_no_code(client, app, twilio):
    twilio.statuses = [400]  # Twilio's answer to a number it cannot text
    response, _ = ask(client, random_phone())
    assert response.status_code == 502, response.get_json()
    assert response.get_json()["errors"][0]["code"] == "SMS_DELIVERY_FAILED"
    assert rows(app, VerificationCode) == 0
