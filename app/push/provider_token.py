"""The APNs provider token: an ES256 JWT signed with the team's ``.p8`` key.

Apple wants one token for the whole deployment, renewed no more often than every 20 minutes
and no less than every 60. ``ProviderTokenCache`` keeps the current token in memory for the
hot path and goes to a ``TokenStore`` only to renew it; the store's compare-and-set ``put``
lets every worker on every machine share one token (a database-backed store can replace
``MemoryTokenStore`` without touching the cache). ``SharedTokenCache`` is that cache for any
bearer token: FCM's OAuth access token is kept the same way (``app/push/fcm_auth.py``).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.observability import metrics

log = logging.getLogger(__name__)

MIN_AGE = 20 * 60
DEFAULT_MAX_AGE = 50 * 60
APPLE_MAX_AGE = 60 * 60


class ProviderKeyError(ValueError):
    """The configured key is not a readable P-256 private key."""


def load_signing_key(key: str) -> ec.EllipticCurvePrivateKey:
    """The ``.p8`` key from its PEM text or from the path of its file."""
    pem = key if "-----BEGIN" in key else _read_key_file(key)
    try:
        private_key = load_pem_private_key(pem.encode(), password=None)
    except ValueError as exc:
        raise ProviderKeyError("the APNs key is not a PEM private key") from exc
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or \
            not isinstance(private_key.curve, ec.SECP256R1):
        raise ProviderKeyError("the APNs key must be an EC P-256 (.p8) key")
    return private_key


def _read_key_file(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ProviderKeyError(f"cannot read the APNs key file {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class ProviderTokenSigner:
    """Mints provider tokens: header ``{alg: ES256, kid}``, claims ``{iss, iat}``."""

    key: ec.EllipticCurvePrivateKey
    key_id: str
    team_id: str

    @classmethod
    def from_key(cls, key: str, key_id: str, team_id: str) -> "ProviderTokenSigner":
        return cls(load_signing_key(key), key_id, team_id)

    def sign(self, issued_at: int) -> str:
        return jwt.encode({"iss": self.team_id, "iat": issued_at}, self.key,
                          algorithm="ES256", headers={"kid": self.key_id})


@dataclass(frozen=True)
class StoredToken:
    value: str
    issued_at: int  # UNIX seconds, the token's ``iat``


class TokenStore(Protocol):
    """Where the one shared token lives."""

    def get(self) -> StoredToken | None:
        """The current token, if any."""

    def put(self, token: StoredToken, replacing: StoredToken | None) -> StoredToken:
        """Store ``token`` if the current one is still ``replacing``; return the current one.

        When another worker renewed first, its token wins and is returned.
        """


class MemoryTokenStore:
    """A ``TokenStore`` for one process."""

    def __init__(self):
        self._token: StoredToken | None = None
        self._lock = threading.Lock()

    def get(self) -> StoredToken | None:
        return self._token

    def put(self, token: StoredToken, replacing: StoredToken | None) -> StoredToken:
        with self._lock:
            if self._token == replacing:
                self._token = token
            assert self._token is not None  # ``replacing`` is what get() gave: None only at first
            return self._token


class SharedTokenCache:
    """A bearer token every worker shares through a ``TokenStore``, kept in memory for the
    hot path: renewed at ``max_age``, or once when the server says it expired (and it is at
    least ``min_age`` old). ``minter.sign(issued_at)`` makes a new one (or a ``StoredToken``
    dated earlier, when it expires sooner than ``max_age``); ``clock`` returns UNIX seconds
    (tests pass a fake one)."""

    def __init__(self, minter, store: TokenStore | None = None, *, max_age: float,
                 min_age: float = 0, clock: Callable[[], float] = time.time):
        self._signer = minter
        self._store = store or MemoryTokenStore()
        self._max_age = max_age
        self._min_age = min_age
        self._clock = clock
        self._token: StoredToken | None = None
        self.mints = 0

    def fresh(self) -> str | None:
        """The token in memory if it is not due for renewal (no store, no minting)."""
        token = self._token
        if token is None or self._clock() - token.issued_at >= self._max_age:
            return None
        return token.value

    def current(self) -> str:
        token = self._token
        if token is None or self._clock() - token.issued_at >= self._max_age:
            token = self._renew(stale=token)
        return token.value

    def expired(self, value: str) -> bool:
        """The server refused ``value`` as expired: renew once. True if renewed.

        A burst of such answers for one token renews it once; a token younger than
        ``min_age`` is kept (``_too_young`` says why).
        """
        token = self._token
        if token is None or token.value != value:
            return False
        if self._clock() - token.issued_at < self._min_age:
            self._too_young()
            return False
        return self._renew(stale=token) != token

    def _too_young(self):
        pass

    def _renew(self, stale: StoredToken | None) -> StoredToken:
        shared = self._store.get()
        if shared is not None and shared != stale and \
                self._clock() - shared.issued_at < self._max_age:
            self._token = shared  # another worker renewed it already
            return shared
        now = int(self._clock())
        minted = self._signer.sign(now)
        fresh = minted if isinstance(minted, StoredToken) else StoredToken(minted, now)
        self._token = self._store.put(fresh, replacing=shared)
        if self._token == fresh:
            self.mints += 1
            metrics.PROVIDER_TOKENS.inc()
        return self._token


class ProviderTokenCache(SharedTokenCache):
    """The APNs provider token. A token younger than 20 minutes is never replaced: APNs
    answers 429 TooManyProviderTokenUpdates to that."""

    def __init__(self, signer: ProviderTokenSigner, store: TokenStore | None = None,
                 max_age: float = DEFAULT_MAX_AGE, clock: Callable[[], float] = time.time):
        if not MIN_AGE <= max_age < APPLE_MAX_AGE:
            raise ValueError("the provider token's max age must be within [20 min, 60 min)")
        super().__init__(signer, store, max_age=max_age, min_age=MIN_AGE, clock=clock)

    def _too_young(self):
        log.error("APNs says a provider token younger than 20 minutes expired: "
                  "check this machine's clock")
