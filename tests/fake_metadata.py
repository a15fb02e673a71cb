"""A fake Google metadata server (what Compute Engine, GKE's workload identity and Cloud
Run answer on 169.254.169.254): plain HTTP on a free loopback port, answering only requests
that carry ``Metadata-Flavor: Google``, every answer carrying it too (google-auth checks).

It serves the default service account's email, its info and its OAuth access token, which
it takes from a ``FakeFcm`` so that ``messages:send`` accepts it. ``environ()`` is what
points google-auth at it (``GCE_METADATA_HOST`` for the paths, ``GCE_METADATA_IP`` for the
ping); ``point_google_auth_at`` does the same in this process, where google-auth read
``GCE_METADATA_HOST`` when it was imported.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.fake_fcm import SCOPE

FLAVOR = ("Metadata-Flavor", "Google")
ACCOUNT = "instance/service-accounts/default"


class FakeMetadataServer:
    def __init__(self, fake_fcm, email="pushreg@fake-project.iam.gserviceaccount.com",
                 project_id="fake-project", token_lifetime=3599):
        self.fake_fcm = fake_fcm
        self.email = email
        self.project_id = project_id
        self.token_lifetime = token_lifetime
        self.token_requests = 0
        self.refused = 0  # requests without Metadata-Flavor: Google
        self.scopes_asked: list[str] = []
        self._server = None

    @property
    def address(self) -> str:
        host, port = self._server.server_address
        return f"{host}:{port}"

    def environ(self) -> dict[str, str]:
        return {"GCE_METADATA_HOST": self.address, "GCE_METADATA_IP": self.address}

    def start(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="fake-metadata").start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def answer(self, path: str, query: dict) -> tuple[int, object]:
        """(status, JSON document or text) for GET ``path``."""
        path = path.removeprefix("/computeMetadata/v1/").rstrip("/")
        if path == "":
            return 200, "computeMetadata/"
        if path == "project/project-id":
            return 200, self.project_id
        if path in (ACCOUNT, f"instance/service-accounts/{self.email}"):
            return 200, {"email": self.email, "aliases": ["default"], "scopes": [SCOPE]}
        if path == f"{ACCOUNT}/email":
            return 200, self.email
        if path == f"{ACCOUNT}/token":
            self.token_requests += 1
            self.scopes_asked += query.get("scopes", [])
            return 200, {"access_token": self.fake_fcm.new_access_token(),
                         "expires_in": self.token_lifetime, "token_type": "Bearer"}
        return 404, "not found"


def point_google_auth_at(monkeypatch, server: FakeMetadataServer | None, tmp_path):
    """google-auth in this process asks ``server`` (None: a port nobody listens on) and
    finds no other credentials (no GOOGLE_APPLICATION_CREDENTIALS, no gcloud login)."""
    from google.auth.compute_engine import _metadata

    address = server.address if server is not None else _closed_address()
    monkeypatch.setenv("GCE_METADATA_HOST", address)
    monkeypatch.setenv("GCE_METADATA_IP", address)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", address)  # read at its import
    monkeypatch.setattr(_metadata, "_GCE_PRODUCT_NAME_FILE", str(tmp_path / "not-gce"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))


def _closed_address() -> str:
    from tests.conftest import free_port

    return f"127.0.0.1:{free_port()}"


def _handler(server: FakeMetadataServer):
    class Metadata(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.headers.get(FLAVOR[0]) != FLAVOR[1]:
                server.refused += 1
                return self._send(403, "Missing required header: Metadata-Flavor")
            parts = urlsplit(self.path)
            self._send(*server.answer(parts.path, parse_qs(parts.query)))

        def _send(self, status, document):
            text = isinstance(document, str)
            body = (document if text else json.dumps(document)).encode()
            self.send_response(status)
            self.send_header(*FLAVOR)
            self.send_header("Content-Type", "application/text" if text else
                             "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Metadata
