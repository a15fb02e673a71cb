"""FCM's credentials and the OAuth 2.0 access token they buy: a Google service-account key
(``FCM_CREDENTIALS_FILE``), or, when only ``FCM_PROJECT_ID`` is set, Google's Application
Default Credentials through google-auth (``ApplicationDefaultMinter``).

The access token comes from the JWT-bearer grant at the key's ``token_uri``: an RS256 JWT
(``iss`` the service account, ``scope`` firebase.messaging, ``aud`` the token URI) posted as
a form; the answer's ``access_token`` lasts about an hour. ``SharedTokenCache`` keeps it
(in memory, and in ``provider_tokens`` for every worker) until ``ACCESS_TOKEN_MAX_AGE``,
so it is fetched once per deployment per ~50 minutes, never per push.

Application Default Credentials are whatever ``google.auth.default()`` finds: the key file
``GOOGLE_APPLICATION_CREDENTIALS`` names, a ``gcloud auth application-default login``, or
the metadata server (Compute Engine, GKE workload identity, Cloud Run). Their token is
shared the same way, under one ``provider_tokens`` row (``ADC_STORE_KEY``).
"""

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import google.auth
import google.auth.transport.requests
import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from google.auth.exceptions import GoogleAuthError

from app.push.provider_token import StoredToken

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # Google's maximum
ACCESS_TOKEN_MAX_AGE = 50 * 60  # Google's access tokens last 60 minutes
TOKEN_REQUEST_TIMEOUT = 10.0
SERVICE_ACCOUNT_FILE = "service-account file"
APPLICATION_DEFAULT = "application default credentials"
ADC_STORE_KEY = ("fcm", "adc:default")  # one ADC identity per deployment
# Google hands out a cached token until it has 5 minutes left: renew before that
ADC_RENEW_MARGIN = 5 * 60


class CredentialsError(ValueError):
    """The service-account key cannot be used."""


class AccessTokenError(Exception):
    """No access token could be obtained now (the token endpoint failed or refused)."""


@dataclass(frozen=True)
class ServiceAccount:
    project_id: str | None
    client_email: str
    private_key: rsa.RSAPrivateKey
    private_key_id: str | None
    token_uri: str

    @classmethod
    def from_file(cls, path: str) -> "ServiceAccount":
        try:
            key = json.loads(Path(path).read_text())
        except OSError as exc:
            raise CredentialsError(f"cannot read FCM_CREDENTIALS_FILE {path}: "
                                   f"{exc.strerror}") from exc
        except ValueError as exc:
            raise CredentialsError(f"FCM_CREDENTIALS_FILE {path} is not JSON") from exc
        return cls.from_info(key)

    @classmethod
    def from_info(cls, key) -> "ServiceAccount":
        if not isinstance(key, dict) or key.get("type", "service_account") != "service_account":
            raise CredentialsError("the FCM credentials are not a service-account key")
        missing = [name for name in ("client_email", "private_key", "token_uri")
                   if not isinstance(key.get(name), str)]
        if missing:
            raise CredentialsError(f"the service-account key lacks {', '.join(missing)}")
        try:
            private_key = load_pem_private_key(key["private_key"].encode(), password=None)
        except ValueError as exc:
            raise CredentialsError("the service-account private_key is not a PEM key") from exc
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise CredentialsError("the service-account private_key is not an RSA key")
        return cls(key.get("project_id"), key["client_email"], private_key,
                   key.get("private_key_id"), key["token_uri"])

    @property
    def store_key(self) -> tuple[str, str]:
        """Where its access token is shared in ``provider_tokens`` (within 64 characters)."""
        return "fcm", (self.private_key_id or self.client_email)[-56:]


class AccessTokenMinter:
    """``sign(now)``: an access token from the JWT-bearer grant (blocking HTTP)."""

    def __init__(self, account: ServiceAccount, ca_file: str | None = None,
                 timeout: float = TOKEN_REQUEST_TIMEOUT):
        self._account = account
        self._verify = ca_file or True
        self._timeout = timeout
        self._session = requests.Session()

    def assertion(self, issued_at: int) -> str:
        account = self._account
        claims = {"iss": account.client_email, "scope": SCOPE, "aud": account.token_uri,
                  "iat": issued_at, "exp": issued_at + ASSERTION_LIFETIME}
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        return jwt.encode(claims, account.private_key, algorithm="RS256", headers=headers)

    def sign(self, issued_at: int) -> str:
        try:
            response = self._session.post(
                self._account.token_uri, timeout=self._timeout, verify=self._verify,
                data={"grant_type": GRANT_TYPE, "assertion": self.assertion(issued_at)})
        except requests.RequestException as exc:
            raise AccessTokenError(f"the token endpoint did not answer: {exc}") from exc
        try:
            token = response.json()["access_token"] if response.ok else None
        except (ValueError, KeyError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise AccessTokenError(f"the token endpoint answered {response.status_code} "
                                   "without an access token")
        return token


def credentials_kind(config) -> str | None:
    """Which credentials FCM uses: the key file when ``FCM_CREDENTIALS_FILE`` is set,
    Application Default Credentials when only ``FCM_PROJECT_ID`` is; None: FCM is off."""
    if config["FCM_CREDENTIALS_FILE"]:
        return SERVICE_ACCOUNT_FILE
    if config["FCM_PROJECT_ID"]:
        return APPLICATION_DEFAULT
    return None


@dataclass(frozen=True)
class AccessTokenSource:
    """What the FCM client needs of its credentials."""

    minter: object  # ``sign(issued_at)``: a token, or a ``StoredToken`` dated for renewal
    store_key: tuple[str, str]
    project_id: str | None  # the credentials' own project, when they name one


def access_token_source(config) -> AccessTokenSource:
    """The configured credentials (``credentials_kind``); a key file is read now, ADC are
    looked for at the first token (the metadata server may come up after the worker)."""
    if credentials_kind(config) == SERVICE_ACCOUNT_FILE:
        account = ServiceAccount.from_file(config["FCM_CREDENTIALS_FILE"])
        return AccessTokenSource(AccessTokenMinter(account, config["FCM_CA_FILE"]),
                                 account.store_key, account.project_id)
    return AccessTokenSource(ApplicationDefaultMinter(config["FCM_CA_FILE"]), ADC_STORE_KEY,
                             None)


class ApplicationDefaultMinter:
    """``sign(now)``: an access token from Application Default Credentials (blocking HTTP).

    The credentials are looked for until found, then kept. The token is dated so that the
    ``SharedTokenCache`` renews it ``ADC_RENEW_MARGIN`` before Google's expiry, however
    little of its hour the metadata server's cached token has left.
    """

    def __init__(self, ca_file: str | None = None, max_age: float = ACCESS_TOKEN_MAX_AGE,
                 timeout: float = TOKEN_REQUEST_TIMEOUT):
        self._request = _BoundedRequest(ca_file, timeout)
        self._max_age = max_age
        self._credentials: google.auth.credentials.Credentials | None = None

    @property
    def identity(self) -> str:
        """Whose credentials: the service account's email, else their kind."""
        credentials = self._credentials
        email = getattr(credentials, "service_account_email", None)
        return email if isinstance(email, str) and "@" in email else \
            type(credentials).__module__.removeprefix("google.")

    def sign(self, issued_at: int) -> StoredToken:
        request = self._request
        try:
            if self._credentials is None:
                self._credentials, _ = google.auth.default(scopes=[SCOPE], request=request)
            self._credentials.refresh(request)
        except GoogleAuthError as exc:
            raise AccessTokenError(f"no access token from application default credentials: "
                                   f"{_first_line(exc)}") from exc
        token = self._credentials.token
        assert token is not None  # refresh() has set it
        return StoredToken(token, self._dated(issued_at, self._credentials.expiry))

    def _dated(self, issued_at: int, expiry: datetime.datetime | None) -> int:
        if expiry is None:
            return issued_at
        expires_at = expiry.replace(tzinfo=datetime.UTC).timestamp()
        return min(issued_at, int(expires_at - ADC_RENEW_MARGIN - self._max_age))


class _BoundedRequest(google.auth.transport.requests.Request):
    """google-auth's HTTP, each request given at most ``timeout`` seconds (its own default
    is two minutes) and trusting ``ca_file`` beside the system's CAs (a key file's token
    endpoint in tests). ``verify`` goes with each request: a session's is overridden by
    REQUESTS_CA_BUNDLE."""

    def __init__(self, ca_file: str | None, timeout: float):
        super().__init__(requests.Session())
        self._verify = ca_file or True
        self._timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        timeout = self._timeout if timeout is None else min(timeout, self._timeout)
        return super().__call__(url, method, body, headers, timeout=timeout,
                                verify=self._verify, **kwargs)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
