"""Secrets: generated from a CSPRNG, stored as keyed digests, compared in constant time."""

import hashlib
import hmac
import secrets
import uuid

from flask import current_app


def new_session_id():
    """A random (version 4) UUID drawn from the operating system's CSPRNG."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def digest(secret, purpose="credential"):
    """HMAC-SHA256 of a secret under the server key; what the database keeps."""
    key = f"{purpose}:{current_app.config['SECRET_KEY']}".encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def same_digest(expected, secret, purpose):
    return hmac.compare_digest(expected, digest(secret, purpose))


def new_verification_code():
    return f"{secrets.randbelow(1_000_000):06d}"


def new_secret(prefix):
    """A bearer secret of 256 random bits; the prefix says what kind it is (``pat_`` an
    auth token, ``psk_`` an API key) so a leaked one is recognised by secret scanners."""
    return f"{prefix}{secrets.token_urlsafe(32)}"
