"""A fake FCM HTTP v1: ``messages:send`` over HTTP/2 and TLS (the fake APNs's server, its
requests checked and answered the FCM way) and an OAuth 2.0 token endpoint over HTTP/1.1
and TLS, both with a throwaway CA.

The token endpoint checks the RS256 JWT-bearer assertion against the service account's
public key and counts the access tokens it issues. ``messages:send`` checks the bearer (an
unknown, revoked or expired one: 401 UNAUTHENTICATED) and the message's shape, then answers
per token from ``script`` (``Reply``s used in turn, the last repeating; 200 otherwise) and
logs every request. Standalone: ``python -m tests.fake_fcm`` writes a service-account key
and prints one JSON line with the key file, URL and CA file.
"""

import json
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fake_apns import FakeApns, serve_standalone, standalone_options

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_AUD = "https://oauth2.googleapis.com/token"  # google-auth's audience, any token_uri
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                503: "UNAVAILABLE"}
TTL = re.compile(r"\d{1,9}(\.\d{1,9})?s")
PAYLOAD_LIMIT = 4096
BAD_TOKEN_MESSAGE = "The registration token is not a valid FCM registration token"


@dataclass(frozen=True)
class Reply:
    """One answer of ``messages:send``. ``code``: the FcmError ``errorCode`` (None: only
    the HTTP status's name); ``field``: a BadRequest field violation; ``hang``: never
    answer."""

    status: int = 200
    code: str | None = None
    message: str | None = None
    field: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    hang: bool = False

    def body(self, project_id: str) -> bytes:
        if self.status == 200:
            return json.dumps({"name": f"projects/{project_id}/messages/"
                                       f"{secrets.token_hex(8)}"}).encode()
        details = [{"@type": FCM_ERROR, "errorCode": self.code}] if self.code else []
        if self.field:
            details.append({"@type": BAD_REQUEST, "fieldViolations": [
                {"field": self.field, "description": self.message or "invalid"}]})
        return json.dumps({"error": {
            "code": self.status, "message": self.message or STATUS_NAMES.get(self.status, ""),
            "status": STATUS_NAMES.get(self.status, "UNKNOWN"), "details": details}}).encode()


@dataclass
class Sent:
    """One ``messages:send`` request as the fake saw it."""

    token: str | None
    message: dict | None
    bearer: str | None
    connection: int
    stream_id: int
    status: int | None = None  # None: never answered
    received_at: float = field(default_factory=time.time)  # when its last frame came

    @property
    def apns_id(self):  # the fake APNs's log key; FCM has no message id of the sender's
        return None


def make_service_account_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeFcm(FakeApns):
    Answer = Reply

    def __init__(self, *, private_key: rsa.RSAPrivateKey | None = None,
                 project_id="fake-project", client_email=None, token_lifetime=3599,
                 clock=time.time, **options):
        super().__init__(public_key=None, **options)
        self.project_id = project_id
        self.private_key = private_key or make_service_account_key()
        self.private_key_id = secrets.token_hex(20)
        self.client_email = client_email or \
            f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
        self.token_lifetime = token_lifetime
        self.token_endpoint_down = False
        self.access_tokens: dict[str, float] = {}  # token → issued at
        self.revoked: set[str] = set()
        self.tokens_issued = 0
        self.token_requests = 0
        self.assertions_refused = 0
        self._clock = clock
        self._token_server = None
        self.token_uri = None

    # -- the service account -------------------------------------------------------------

    def service_account(self) -> dict:
        pem = self.private_key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": self.project_id,
                "private_key_id": self.private_key_id, "private_key": pem,
                "client_email": self.client_email, "client_id": "1",
                "token_uri": self.token_uri}

    def write_credentials(self, path: Path) -> Path:
        path.write_text(json.dumps(self.service_account()))
        return path

    def revoke_access_tokens(self):
        self._call(lambda: self.revoked.update(self.access_tokens))

    def pushes_to(self, token: str) -> int:
        """Requests for ``token`` answered 200."""
        return sum(1 for sent in self.log if sent.token == token and sent.status == 200)

    def twice_accepted(self) -> list[str]:
        """Tokens answered 200 more than once."""
        counts = Counter(sent.token for sent in self.log if sent.status == 200)
        return sorted(token for token, count in counts.items() if count > 1)

    # -- lifecycle -----------------------------------------------------------------------

    async def serve(self, host="127.0.0.1", port=0):
        await super().serve(host, port)
        server = ThreadingHTTPServer((host, 0), _token_handler(self))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(host, "localhost").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._token_server = server
        self.token_uri = f"https://{host}:{server.server_address[1]}/token"
        threading.Thread(target=server.serve_forever, daemon=True,
                         name="fake-fcm-tokens").start()

    def stop(self):
        if self._token_server is not None:
            self._token_server.shutdown()
            self._token_server.server_close()
        super().stop()

    # -- the token endpoint (its own threads) --------------------------------------------

    def issue(self, form: dict) -> tuple[int, dict]:
        self.token_requests += 1
        if self.token_endpoint_down:
            return 503, {"error": "unavailable"}
        if form.get("grant_type") != [GRANT_TYPE] or len(form.get("assertion", ())) != 1:
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(form["assertion"][0], self.private_key.public_key(),
                                algorithms=["RS256"], audience=[self.token_uri, GOOGLE_AUD],
                                issuer=self.client_email, options={"require": [
                                    "iss", "aud", "iat", "exp", "scope"]})
        except jwt.PyJWTError as exc:
            self.assertions_refused += 1
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if claims["scope"] != SCOPE or claims["exp"] - claims["iat"] > 3600:
            self.assertions_refused += 1
            return 400, {"error": "invalid_scope"}
        return 200, {"access_token": self.new_access_token(), "expires_in": self.token_lifetime,
                     "token_type": "Bearer"}

    def new_access_token(self) -> str:
        """An access token ``messages:send`` accepts (also the fake metadata server's)."""
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        with self._received:
            self.access_tokens[token] = self._clock()
            self.tokens_issued += 1
        return token

    # -- messages:send (the server's event loop) -----------------------------------------

    def _entry(self, conn, stream_id, headers, body):
        document = _json(body)
        message = document.get("message") if document else None
        token = message.get("token") if isinstance(message, dict) else None
        authorization = headers.get("authorization", "")
        bearer = authorization[len("Bearer "):] if authorization.startswith("Bearer ") \
            else None
        return Sent(token if isinstance(token, str) else None,
                    message if isinstance(message, dict) else None, bearer, conn.number,
                    stream_id)

    def _check(self, headers, body, entry):
        if headers.get(":method") != "POST" or \
                headers.get(":path") != f"/v1/projects/{self.project_id}/messages:send":
            return 404, None, "no such project or method"
        issued_at = self.access_tokens.get(entry.bearer)
        if issued_at is None or entry.bearer in self.revoked or \
                self._clock() - issued_at > self.token_lifetime:
            return 401, None, "Request had invalid authentication credentials."
        problem = _message_problem(entry.message, body)
        return (400, "INVALID_ARGUMENT", *problem) if problem else None

    def _respond(self, conn, stream_id, entry, answer: Reply):
        headers = [("content-type", "application/json; charset=UTF-8")]
        if answer.retry_after:
            headers.append(("retry-after", answer.retry_after))
        if conn.respond(stream_id, answer.status, None, answer.body(self.project_id),
                        headers):
            self._answered(entry, answer.status)


def _json(body: bytes):
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _message_problem(message, body: bytes) -> tuple[str, str] | None:
    """(message, field) for a message FCM would refuse as INVALID_ARGUMENT."""
    if not isinstance(message, dict) or not isinstance(message.get("token"), str):
        return "The message needs a token.", "message.token"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "data values must be strings", "message.data"
    if any(k in ("from", "gcm", "message_type") or k.startswith(("google", "gcm"))
           for k in data):
        return "a data key is reserved", "message.data"
    android = message.get("android", {})
    if android.get("priority", "normal") not in ("normal", "high"):
        return "Invalid value at 'message.android.priority'", "message.android.priority"
    if "ttl" in android and not TTL.fullmatch(str(android["ttl"])):
        return "Invalid value at 'message.android.ttl'", "message.android.ttl"
    size = len(json.dumps([message.get("notification"), data], ensure_ascii=False).encode())
    if size > PAYLOAD_LIMIT:
        return "Message is too big", "message"
    return None


def _token_handler(fake: FakeFcm):
    class TokenEndpoint(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            status, answer = fake.issue(form)
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return TokenEndpoint


def main():
    options = standalone_options(__doc__.splitlines()[0])
    workdir = Path(tempfile.mkdtemp(prefix="fake-fcm-key-"))
    fake = FakeFcm(**options)
    serve_standalone(fake, lambda: {
        "url": fake.url, "ca_file": fake.ca_file,
        "credentials_file": str(fake.write_credentials(workdir / "service-account.json")),
        "project_id": fake.project_id})


if __name__ == "__main__":
    main()
