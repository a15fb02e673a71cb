"""A provider's public keys: read from a JWKS, a certificate document or a local file,
cached as long as the provider says, refetched when a token names a key not seen yet."""

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

log = logging.getLogger(__name__)

# The most a token naming an unknown (perhaps forged) kid can make us fetch; also the
# shortest time keys are kept, whatever max-age says.
MIN_REFETCH_INTERVAL = 60.0
FAILED_FETCH_RETRY = 5.0  # seconds before a provider that failed is asked again
DEFAULT_MAX_AGE = 3600.0  # keys served without Cache-Control: max-age
MAX_MAX_AGE = 86400.0
STALE_GRACE = 86400.0  # expired keys stay usable this long while the provider is down

MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
NOT_CACHEABLE = re.compile(r"\b(?:no-cache|no-store)\b", re.IGNORECASE)
PUBLIC_JWK_MEMBERS = frozenset({"kty", "n", "e", "crv", "x", "y"})
# (keyed by object: a JWK's "kty" is whatever the document holds)
JWK_ALGORITHMS: dict[object, type[RSAAlgorithm] | type[ECAlgorithm]] = {
    "RSA": RSAAlgorithm, "EC": ECAlgorithm}
EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class KeysUnavailable(Exception):
    """The provider's keys could not be fetched, read or understood."""


@dataclass(frozen=True)
class PublicKey:
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    algorithm: str | None = None  # the JWK's "alg", when it names one

    def fits(self, algorithm):
        """Whether a token signed with ``algorithm`` may be checked with this key: an
        RSA key for RS*/PS*, an EC key on the algorithm's own curve for ES*."""
        if self.algorithm and self.algorithm != algorithm:
            return False
        if algorithm[:2] in ("RS", "PS"):
            return isinstance(self.key, rsa.RSAPublicKey)
        curve = EC_CURVES.get(algorithm)
        return isinstance(self.key, ec.EllipticCurvePublicKey) and self.key.curve.name == curve


def parse_key_document(document):
    """kid → PublicKey from a JWKS (``{"keys": [...]}``) or Google's certificate document
    (``{kid: PEM certificate}``). Keys of other kinds (symmetric, encryption) are left out."""
    try:
        value = json.loads(document)
    except ValueError as exc:
        raise KeysUnavailable("the key document is not JSON") from exc
    if isinstance(value, dict) and isinstance(value.get("keys"), list):
        found = {jwk["kid"]: key for jwk in value["keys"] if (key := _jwk_key(jwk))}
    elif isinstance(value, dict):
        found = {kid: key for kid, pem in value.items() if (key := _certificate_key(pem))}
    else:
        raise KeysUnavailable("the key document is neither a JWKS nor certificates")
    if not found:
        raise KeysUnavailable("the key document holds no usable signing key")
    return found


def _jwk_key(jwk):
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
        return None
    algorithm_class = JWK_ALGORITHMS.get(jwk.get("kty"))
    if algorithm_class is None or jwk.get("use", "sig") != "sig":
        return None
    public = {name: value for name, value in jwk.items() if name in PUBLIC_JWK_MEMBERS}
    try:
        key = algorithm_class.from_jwk(public)
    except (PyJWTError, ValueError, TypeError, KeyError):
        log.warning("identity provider key %s is not a valid JWK; ignored", jwk["kid"])
        return None
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)  # public members only
    algorithm = jwk.get("alg")
    return PublicKey(key, algorithm if isinstance(algorithm, str) else None)


def _certificate_key(pem):
    try:
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    except (AttributeError, ValueError):
        return None
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return PublicKey(key)
    return None


def load_key_document(url, http, timeout):
    """(document, seconds it may be cached or None when the source does not say)."""
    if urlsplit(url).scheme == "file":
        path = Path(url2pathname(urlsplit(url).path))
        try:
            return path.read_bytes(), None
        except OSError as exc:
            raise KeysUnavailable(f"cannot read {path}: {exc.strerror}") from exc
    try:
        response = http.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
    except requests.RequestException as exc:
        raise KeysUnavailable(f"fetching the keys failed: {type(exc).__name__}") from exc
    return response.content, cache_lifetime(response.headers)


def cache_lifetime(headers):
    """Seconds left of the response's freshness by Cache-Control max-age and Age."""
    control = headers.get("Cache-Control", "")
    if NOT_CACHEABLE.search(control):
        return 0.0
    max_age = MAX_AGE.search(control)
    if max_age is None:
        return None
    age = headers.get("Age", "0")
    return max(float(max_age.group(1)) - (float(age) if age.isdigit() else 0.0), 0.0)


@dataclass(frozen=True)
class _Snapshot:
    keys: dict
    fresh_until: float

    def fresh(self, now):
        return now < self.fresh_until

    def usable(self, now):
        return now < self.fresh_until + STALE_GRACE


class ProviderKeys:
    """One provider's keys, shared by every thread of a worker.

    Lookups of a known kid read an immutable snapshot without locking; fetches happen
    under a lock, one at a time. Fetches are bounded whatever tokens arrive: an unknown kid
    refetches only when the last fetch is ``MIN_REFETCH_INTERVAL`` old, a failed fetch is
    retried after ``FAILED_FETCH_RETRY``, and while the provider is down its expired keys
    stay in use (for ``STALE_GRACE``).
    """

    def __init__(self, url, *, timeout, clock):
        self.url = url
        self.timeout = timeout
        self.clock = clock
        self._http = requests.Session()
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._last_attempt = None
        self._last_failed = False

    def get(self, kid):
        """The key named ``kid``; None when the provider has no such key. Raises
        KeysUnavailable when the keys could not be fetched and no usable copy is held."""
        snapshot = self._snapshot
        if snapshot and snapshot.fresh(self.clock()) and kid in snapshot.keys:
            return snapshot.keys[kid]
        with self._lock:
            if self._should_fetch(kid):
                self._fetch()
            return self._held_key(kid)

    def _should_fetch(self, kid):
        now, snapshot = self.clock(), self._snapshot
        if snapshot is not None and snapshot.fresh(now):
            return kid not in snapshot.keys and now - self._last_attempt >= MIN_REFETCH_INTERVAL
        if self._last_failed:
            return now - self._last_attempt >= FAILED_FETCH_RETRY
        return True

    def _fetch(self):
        self._last_attempt = now = self.clock()
        try:
            document, lifetime = load_key_document(self.url, self._http, self.timeout)
            keys = parse_key_document(document)
        except KeysUnavailable as exc:
            self._last_failed = True
            log.warning("identity provider keys %s: %s", self.url, exc)
            return
        self._last_failed = False
        lifetime = DEFAULT_MAX_AGE if lifetime is None else lifetime
        lifetime = min(max(lifetime, MIN_REFETCH_INTERVAL), MAX_MAX_AGE)
        self._snapshot = _Snapshot(keys, now + lifetime)

    def _held_key(self, kid):
        snapshot = self._snapshot
        held = snapshot.keys if snapshot is not None and snapshot.usable(self.clock()) else None
        if held is not None and kid in held:
            return held[kid]
        if self._last_failed or held is None:
            raise KeysUnavailable(f"the keys at {self.url} could not be fetched")
        return None
