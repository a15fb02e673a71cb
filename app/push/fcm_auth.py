"""FCM's credentials: a Google service-account key and the OAuth 2.0 access token it buys.

The access token comes from the JWT-bearer grant at the key's ``token_uri``: an RS256 JWT
(``iss`` the service account, ``scope`` firebase.messaging, ``aud`` the token URI) posted as
a form; the answer's ``access_token`` lasts about an hour. ``SharedTokenCache`` keeps it
(in memory, and in ``provider_tokens`` for every worker) until ``ACCESS_TOKEN_MAX_AGE``,
so it is fetched once per deployment per ~50 minutes, never per push.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # Google's maximum
ACCESS_TOKEN_MAX_AGE = 50 * 60  # Google's access tokens last 60 minutes
TOKEN_REQUEST_TIMEOUT = 10.0


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
