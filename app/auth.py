"""Authorization header → Principal: who is calling."""

from dataclasses import dataclass

from flask import g, request
from sqlalchemy import select

from app.extensions import db
from app.jsonapi.errors import NotAuthorized
from app.models import Credential, CredentialKind
from app.security import digest


@dataclass
class Principal:
    credential: Credential

    @property
    def user_id(self):
        return self.credential.user_id

    @property
    def kind(self):
        return self.credential.kind

    def owns_session(self, session_id):
        return self.credential.kind == CredentialKind.SESSION and self.credential.id == session_id


def bearer_secret():
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > 200:
        return None
    return secret


def current_principal():
    """The caller, or None. Looked up once per request."""
    if "principal" not in g:
        g.principal = _authenticate()
    return g.principal


def _authenticate():
    secret = bearer_secret()
    if secret is None:
        return None
    credential = db.session.scalar(
        select(Credential).where(Credential.secret_digest == digest(secret))
    )
    if credential is None:
        return None
    credential.public_id = secret
    return Principal(credential)


def require_principal():
    principal = current_principal()
    if principal is None:
        raise NotAuthorized()
    return principal
