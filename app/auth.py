"""Who is calling: the credential a request presents, resolved to a Principal value."""

import uuid
from dataclasses import dataclass

from flask import g, request

from app.errors import NotAuthorized
from app.models import CredentialKind
from app.resources import credentials

MAX_SECRET_LENGTH = 200


@dataclass(frozen=True)
class Principal:
    """The caller, as a plain value: which credential they presented and what it holds.

    ``secret`` is the secret as presented, so a session id can be shown back to its holder
    (the database keeps only its digest).
    """

    kind: CredentialKind
    credential_id: int
    user_id: uuid.UUID | None
    session_id: int | None
    secret: str


def principal_of(credential_id, kind, user_id, secret):
    session_id = credential_id if kind == CredentialKind.SESSION else None
    return Principal(kind, credential_id, user_id, session_id, secret)


def bearer_secret():
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    return secret


def current_principal():
    """The caller, or None. Looked up once per request."""
    if "principal" not in g:
        g.principal = authenticate(bearer_secret())
    return g.principal


def authenticate(secret):
    if secret is None:
        return None
    # The row stays in the session's identity map: a service that needs it gets it free.
    credential = credentials.find_live(secret)
    if credential is None:
        return None
    return principal_of(credential.id, credential.kind, credential.user_id, secret)


def require_principal():
    principal = current_principal()
    if principal is None:
        raise NotAuthorized()
    return principal
