"""Checking an identity provider's ID token: which provider by its ``iss``, then its
signature with that provider's key, its algorithm, audience, times and subject."""

import math
import time
from dataclasses import dataclass

import jwt

from app.errors import IdentityProviderUnavailable, InvalidIdToken
from app.formats.id_token_providers import claim_is_true
from app.formats.phone import E164  # the form users' numbers are kept in
from app.identity.keys import KeysUnavailable, ProviderKeys

DEFAULT_ALGORITHMS = ("RS256", "ES256")
# Public-key algorithms only: an HS* token "signed" with a provider's public key as the
# HMAC secret would verify against it.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512"})
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub")
MAX_TOKEN_LENGTH = 16 * 1024
MAX_SUBJECT_LENGTH = 255

MALFORMED = "The ID token is malformed: it is not a signed JWT."
DECODE_FAILURES = (  # most specific first: InvalidSignatureError is a DecodeError
    (jwt.InvalidSignatureError, "The ID token's signature is not valid."),
    (jwt.DecodeError, MALFORMED),
    (jwt.InvalidAudienceError, "The ID token is meant for another audience."),
    (jwt.InvalidIssuerError, "The ID token's issuer is not accepted."),
    (jwt.InvalidAlgorithmError, "The ID token's signing algorithm is not allowed."),
)


@dataclass(frozen=True)
class Identity:
    """Who an ID token proves the caller is: (issuer, subject) is the identity's key."""

    issuer: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    phone_number: str | None = None  # E.164, or None
    phone_number_verified: bool = False


class IdTokenVerifier:
    """Verifies ID tokens of the given providers; one instance is shared by all threads."""

    def __init__(self, providers, *, leeway=60, keys_timeout=5.0,
                 algorithms=DEFAULT_ALGORITHMS, clock=time.time):
        unsafe = set(algorithms) - ASYMMETRIC_ALGORITHMS
        if unsafe:
            raise ValueError(f"not public-key signature algorithms: {sorted(unsafe)}")
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.clock = clock
        self._providers = {
            provider.issuer: (provider, ProviderKeys(provider.keys_url, timeout=keys_timeout,
                                                     clock=clock))
            for provider in providers
        }

    @classmethod
    def from_config(cls, config, **kwargs):
        return cls(config["ID_TOKEN_PROVIDERS"], leeway=config["ID_TOKEN_LEEWAY"],
                   keys_timeout=config["ID_TOKEN_KEYS_TIMEOUT"], **kwargs)

    def verify(self, token):
        """The Identity the token proves. Raises InvalidIdToken (401) when it proves
        nothing, IdentityProviderUnavailable (503) when its provider's keys cannot be had."""
        header, unverified_claims = _unverified_parts(token)
        provider, keys = self._provider_of(unverified_claims.get("iss"))
        algorithm = self._algorithm_of(header)
        key = _key_for(provider, keys, header.get("kid"), algorithm)
        claims = _decode(token, key, algorithm, provider)
        self._check_times(claims)
        return _identity(provider, claims)

    def _provider_of(self, issuer):
        found = self._providers.get(issuer) if isinstance(issuer, str) else None
        if found is None:
            raise InvalidIdToken("The ID token's issuer is not accepted.")
        return found

    def _algorithm_of(self, header):
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise InvalidIdToken("The ID token's signing algorithm is not allowed.")
        return algorithm

    def _check_times(self, claims):
        now = self.clock()
        if _number(claims, "exp") + self.leeway <= now:
            raise InvalidIdToken("The ID token has expired.")
        for name in ("iat", "nbf", "auth_time"):
            if name in claims and _number(claims, name) - self.leeway > now:
                raise InvalidIdToken("The ID token is not valid yet.")


def _unverified_parts(token):
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidIdToken(MALFORMED)
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise InvalidIdToken(MALFORMED) from None
    return header, claims


def _key_for(provider, keys, kid, algorithm):
    if not isinstance(kid, str):
        raise InvalidIdToken("The ID token does not name its signing key (kid).")
    try:
        key = keys.get(kid)
    except KeysUnavailable:
        raise IdentityProviderUnavailable(
            f"The keys of the identity provider {provider.issuer} could not be fetched."
        ) from None
    if key is None:
        raise InvalidIdToken("The ID token is signed with a key its issuer does not have.")
    if not key.fits(algorithm):
        raise InvalidIdToken("The ID token's signing algorithm does not fit its key.")
    return key


def _decode(token, key, algorithm, provider):
    try:
        return jwt.decode(
            token, key.key, algorithms=[algorithm], audience=list(provider.audiences),
            issuer=provider.issuer,
            # times and the subject are checked below, times by the verifier's clock
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                     "verify_nbf": False, "verify_iat": False, "verify_sub": False})
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidIdToken(f"The ID token has no {exc.claim} claim.") from None
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(_decode_failure(exc)) from None


def _decode_failure(exc):
    for kind, detail in DECODE_FAILURES:
        if isinstance(exc, kind):
            return detail
    return "The ID token is not valid."


def _number(claims, name):
    value = claims[name]
    if not _is_time(value):
        raise InvalidIdToken(f"The ID token's {name} claim is not a time.")
    return value


def _is_time(value):
    """NaN and Infinity, which the JSON PyJWT reads may hold, are no times: an exp of NaN
    would never expire."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def _identity(provider, claims):
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
        raise InvalidIdToken("The ID token's subject is not valid.")
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    phone = claims.get("phone_number")
    phone = phone if isinstance(phone, str) and E164.match(phone) else None
    phone_verified = provider.proves_phone_number(claims)
    return Identity(
        issuer=provider.issuer, subject=subject,
        email=email, email_verified=email is not None and claim_is_true(claims, "email_verified"),
        phone_number=phone, phone_number_verified=phone is not None and phone_verified)
