"""Access tokens: short-lived signed JWTs that stand for a user credential.

A token carries ``sub`` (the user), ``sid`` (the random public id of the credential it was
exchanged for, never its guessable database id), ``iat``,
``exp`` and ``jti``, and names its signing key in the header's ``kid``, so keys rotate by
adding a new one, signing with it, and removing the old one once its tokens have expired.
The credential is checked on every use (``app.web.auth``): revoking it ends its tokens at once.

Keys come from ``ACCESS_TOKEN_SIGNING_KEYS`` (a JSON object, key id → PEM private key, EC
P-256 for ES256 or RSA for RS256; ``ACCESS_TOKEN_KEY_ID`` names the one that signs), whose
public halves are published at ``/.well-known/jwks.json``. Without it, tokens are HS256
under a key derived from ``SECRET_KEY`` with a label of its own (HKDF) and no JWKS is
published.
"""

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.config import ConfigurationError
from app.errors import Forbidden, NotAuthorized
from app.models.types import utcnow
from app.resources import credentials
from app.security.crypto import derived_key

# v2: HKDF-derived, and sid a public id (v1 tokens, an integer sid, are refused by kid)
SYMMETRIC_KEY_ID = "hs256-v2"
SYMMETRIC_KEY_LABEL = b"pushreg access-token v2"
MAX_SID_LENGTH = 32  # Credential.public_id
LEEWAY_SECONDS = 30


class KeyConfigurationError(ValueError):
    """ACCESS_TOKEN_SIGNING_KEYS or ACCESS_TOKEN_KEY_ID cannot be used."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    signing: object  # what PyJWT signs with
    verifying: object  # what PyJWT verifies with
    public_jwk: dict | None  # None for a symmetric key: never published


@dataclass(frozen=True)
class AccessTokenKeys:
    current: SigningKey
    by_kid: dict

    def jwks(self):
        return {"keys": [key.public_jwk for key in self.by_kid.values() if key.public_jwk]}


def check_signing_keys(config):
    """At start (the factory, ``flask doctor``): the signing keys load, or
    ConfigurationError names the setting, before a request first needs them."""
    try:
        keys_from_config(vars(config))
    except KeyConfigurationError as exc:
        raise ConfigurationError(str(exc)) from exc


def keys_from_config(config):
    raw = config.get("ACCESS_TOKEN_SIGNING_KEYS")
    if not raw:
        key = _symmetric(config["SECRET_KEY"])
        return AccessTokenKeys(key, {key.kid: key})
    try:
        pems = json.loads(raw)
    except ValueError as exc:
        raise KeyConfigurationError("ACCESS_TOKEN_SIGNING_KEYS must be a JSON object") from exc
    if not isinstance(pems, dict) or not pems:
        raise KeyConfigurationError("ACCESS_TOKEN_SIGNING_KEYS must map key ids to PEM keys")
    by_kid = {kid: _asymmetric(kid, pem) for kid, pem in pems.items()}
    current = config.get("ACCESS_TOKEN_KEY_ID") or (next(iter(by_kid)) if len(by_kid) == 1
                                                    else None)
    if current not in by_kid:
        raise KeyConfigurationError("ACCESS_TOKEN_KEY_ID must name one of "
                                    "ACCESS_TOKEN_SIGNING_KEYS")
    return AccessTokenKeys(by_kid[current], by_kid)


def _symmetric(secret_key):
    key = derived_key(secret_key, SYMMETRIC_KEY_LABEL)
    return SigningKey(SYMMETRIC_KEY_ID, "HS256", key, key, None)


def _asymmetric(kid, pem):
    try:
        private = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigurationError(f"ACCESS_TOKEN_SIGNING_KEYS[{kid}] is no PEM private "
                                    "key") from exc
    if isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        algorithm = "ES256"
    elif isinstance(private, rsa.RSAPrivateKey):
        algorithm = "RS256"
    else:
        raise KeyConfigurationError(f"ACCESS_TOKEN_SIGNING_KEYS[{kid}] must be EC P-256 or RSA")
    public = private.public_key()
    jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(public))
    jwk.update(kid=kid, alg=algorithm, use="sig")
    return SigningKey(kid, algorithm, private, public, jwk)


@dataclass(frozen=True)
class Minted:
    value: str
    jti: str
    expires_at: object


def mint(keys, user_id, credential_public_id, ttl_seconds):
    """A new access token for a user credential, named by its public id."""
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_seconds)
    jti = secrets.token_urlsafe(12)
    claims = {"sub": str(user_id), "sid": credential_public_id, "iat": int(now.timestamp()),
              "exp": int(expires_at.timestamp()), "jti": jti}
    key = keys.current
    value = jwt.encode(claims, key.signing, algorithm=key.algorithm, headers={"kid": key.kid})
    return Minted(value, jti, expires_at)


def issue(keys, principal, ttl_seconds):
    """A new access token for the credential the caller presented. Only that credential
    itself mints one: an access token presented here would renew itself for ever, so a
    stolen one would never end at its ``exp``."""
    if principal.by_access_token:
        raise Forbidden("An access token cannot be exchanged for a new one: present the "
                        "session or auth token it stands for.",
                        code="ACCESS_TOKEN_NOT_RENEWABLE")
    if principal.user_id is None:
        raise Forbidden("This session is anonymous: log in before asking for an access "
                        "token, which stands for a user.", code="ANONYMOUS_SESSION")
    return mint(keys, principal.user_id, credentials.public_id_of(principal.credential_id),
                ttl_seconds)


def looks_like_jwt(secret):
    return secret.count(".") == 2


def verify(keys, token):
    """The claims of a token this service signed and that is still valid, else 401."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = keys.by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidTokenError("unknown key")
        claims = jwt.decode(token, key.verifying, algorithms=[key.algorithm],
                            leeway=LEEWAY_SECONDS,
                            options={"require": ["sub", "sid", "exp", "iat", "jti"]})
        uuid.UUID(claims["sub"])
        if not isinstance(claims["sid"], str) or not 0 < len(claims["sid"]) <= MAX_SID_LENGTH:
            raise jwt.InvalidTokenError("sid")
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise NotAuthorized("The access token is not valid or has expired.") from exc
    return claims
