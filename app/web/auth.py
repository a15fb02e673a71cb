"""Who is calling: every credential kind a request can present, resolved to a Principal.

- ``Authorization: Bearer <secret>``: a session id, an auth token or an API key (one
  lookup by digest: all three live in ``credentials``), or an access token (a JWT);
- ``Authentication: <auth token>``, the header seed 001 names;
- an ``access_token`` cookie holding an access token (the seed 002 and 003 clients).

The first of these a request carries is the one judged. Each endpoint says in one line
which kinds it accepts: ``require(USER)`` for people, ``require(SERVICES, scope)`` for
backend services.
"""

import uuid
from dataclasses import dataclass

from flask import current_app, g, request

from app.errors import Forbidden, NotAuthorized
from app.models import CredentialKind
from app.resources import credentials
from app.web import access_tokens

MAX_SECRET_LENGTH = 4096  # an access token with an RSA signature is about 700 characters
ACCESS_TOKEN_COOKIE = "access_token"
USER = frozenset({CredentialKind.SESSION, CredentialKind.AUTH_TOKEN})
SERVICES = frozenset({CredentialKind.API_KEY})


@dataclass(frozen=True)
class Principal:
    """The caller, as a plain value: which credential they presented and what it holds.

    ``kind`` is the credential's kind, also when it was presented through an access token
    (``by_access_token``). ``secret`` is the secret as presented, so a session id can be
    shown back to its holder (the database keeps only its digest); None for an access
    token, which does not reveal the session id.
    """

    kind: CredentialKind
    credential_id: int
    user_id: uuid.UUID | None
    session_id: int | None
    secret: str | None
    scopes: frozenset = frozenset()
    by_access_token: bool = False


def principal_of(credential_id, kind, user_id, secret, scopes=frozenset(),
                 by_access_token=False):
    session_id = credential_id if kind == CredentialKind.SESSION else None
    return Principal(kind, credential_id, user_id, session_id, secret, frozenset(scopes),
                     by_access_token)


def current_principal():
    """The caller, or None. Looked up once per request."""
    if "principal" not in g:
        g.principal = _authenticate()
    return g.principal


def require(kinds, scope=None):
    """The caller, if they present a credential of one of ``kinds`` (holding ``scope``)."""
    principal = current_principal()
    if principal is None:
        raise NotAuthorized()
    if principal.kind not in kinds:
        if principal.kind == CredentialKind.API_KEY:
            raise Forbidden("API keys cannot be used here: this endpoint is for users.",
                            code="FORBIDDEN_FOR_API_KEYS")
        raise Forbidden("This endpoint is for backend services with an API key.",
                        code="FORBIDDEN_FOR_USERS")
    if scope is not None and scope not in principal.scopes:
        raise Forbidden(f"This API key lacks the scope '{scope}'.", code="INSUFFICIENT_SCOPE")
    return principal


def require_principal():
    """A user, by any credential a user holds."""
    return require(USER)


def _authenticate():
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme:
        return _by_secret(value.strip()) if scheme.lower() == "bearer" else None
    legacy = request.headers.get("Authentication")
    if legacy is not None:
        return _by_secret(legacy.removeprefix("Bearer ").strip())
    cookie = request.cookies.get(ACCESS_TOKEN_COOKIE)
    return _by_access_token(cookie) if cookie else None


def _by_secret(secret):
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    if access_tokens.looks_like_jwt(secret):
        return _by_access_token(secret)
    return _holder(credentials.find_live(secret), secret)


def _holder(credential, secret):
    """The principal of a credential row (``credentials.find_live``'s), or None."""
    if credential is None:
        return None
    return principal_of(credential.id, credential.kind, credential.user_id, secret,
                        (credential.scopes or "").split())


def unresolved_bearer_secret():
    """The secret an ``Authorization: Bearer`` header carries (not an access token), while
    the caller is not looked up yet: a statement may look its holder up itself
    (``credentials.live_by_secret``) and report it with ``resolved``. Otherwise None."""
    if "principal" in g:
        return None
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    secret = value.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > MAX_SECRET_LENGTH \
            or access_tokens.looks_like_jwt(secret):
        return None
    return secret


def resolved(secret, credential):
    """The caller, as a statement that looked ``secret`` up found it (a row of
    ``credentials.find_live``'s columns, or None): the request's principal from now on."""
    g.principal = _holder(credential, secret)
    return g.principal


def _by_access_token(token):
    try:
        claims = access_tokens.verify(signing_keys(), token)
    except NotAuthorized:
        return None
    credential = credentials.find_live_by_public_id(claims["sid"])
    if credential is None or str(credential.user_id) != claims["sub"]:
        return None  # revoked (logged out, deleted) or no longer the same user's
    return principal_of(credential.id, credential.kind, credential.user_id, None,
                        by_access_token=True)


def signing_keys():
    """The access-token keys, parsed once per app."""
    keys = current_app.extensions.get("access_token_keys")
    if keys is None:
        keys = current_app.extensions["access_token_keys"] = \
            access_tokens.keys_from_config(current_app.config)
    return keys
