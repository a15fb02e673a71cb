"""Secrets: generated from a CSPRNG, stored as keyed digests, compared in constant time;
the few the service must read back are sealed (encrypted) instead."""

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
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


# -- secrets kept to be used again (not just compared): encrypted at rest ----------------

SEAL_VERSION = "v1"
SEAL_NONCE_BYTES = 12


def derived_key(secret_key, label):
    """A 256-bit key of its own for one use, derived from the server key (HKDF-SHA256):
    keys of different labels tell nothing of each other or of ``SECRET_KEY``."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=label).derive(secret_key.encode())


def _sealing_cipher(secret_key=None):
    """The AES-GCM cipher that seals (``secret_key``: outside an app context, the push
    worker's)."""
    return _cipher_for(secret_key or current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=4)
def _cipher_for(secret_key):
    # derived once per server key: a worker unseals a token for every Live Activity push
    return AESGCM(derived_key(secret_key, b"pushreg seal v1"))


def seal(text, secret_key=None):
    """``text`` encrypted and authenticated (AES-256-GCM, a random nonce each time), as
    ``v1:`` and URL-safe base64: what the database keeps of a secret the service must read
    back, such as a Live Activity push-to-start token (``secret_key``: the app's by
    default)."""
    nonce = secrets.token_bytes(SEAL_NONCE_BYTES)
    sealed = _sealing_cipher(secret_key).encrypt(nonce, text.encode(), SEAL_VERSION.encode())
    return f"{SEAL_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(text, secret_key=None):
    """The text ``seal`` was given; ValueError when it was not sealed under this
    ``SECRET_KEY`` (``secret_key``: the app's by default) or was altered."""
    version, _, encoded = text.partition(":")
    if version != SEAL_VERSION:
        raise ValueError("not a sealed value")
    try:
        raw = base64.urlsafe_b64decode(encoded)
        opened = _sealing_cipher(secret_key).decrypt(raw[:SEAL_NONCE_BYTES],
                                                     raw[SEAL_NONCE_BYTES:],
                                                     SEAL_VERSION.encode())
    except (InvalidTag, binascii.Error) as exc:
        raise ValueError("the sealed value cannot be opened with this key") from exc
    return opened.decode()
