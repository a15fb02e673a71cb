"""A fake identity provider for tests: its keys served over HTTP on 127.0.0.1 (a JWKS, or
Google's certificate document) with a Cache-Control max-age, each fetch counted."""

import base64
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class KeyServer:
    """Serves key documents by path with a Cache-Control max-age, and counts fetches."""

    def __init__(self):
        self.documents = {}  # path → (status, body)
        self.max_age = 3600
        self.fetches = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with server.lock:
                    server.fetches[self.path] += 1
                    status, body = server.documents.get(self.path, (404, b"{}"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", f"public, max-age={server.max_age}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def serve(self, path, document, status=200):
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        with self.lock:
            self.documents[path] = (status, body)


def jwk(kid, private_key, **members):
    public = private_key.public_key()
    algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    return {**algorithm.to_jwk(public, as_dict=True), "kid": kid, "use": "sig", **members}


def jwks(*keys):
    return {"keys": [jwk(kid, key) for kid, key in keys]}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
