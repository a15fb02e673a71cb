"""API keys for backend services: made, listed and revoked by operators (``flask keys``),
each with a name and the scopes it grants."""

from sqlalchemy import delete, or_, select

from app.database.results import rows_changed
from app.errors import Conflict, InvalidAttribute, NotFound
from app.extensions import db
from app.formats.ids import integer_id
from app.models import Credential, CredentialKind
from app.security.crypto import digest, new_secret

PREFIX = "psk_"
SCOPES = frozenset({"notifications:send", "live_activities:manage"})


def create(name, scopes):
    """A new API key and its value (shown only now; stored as a digest)."""
    unknown = set(scopes) - SCOPES
    if unknown:
        raise InvalidAttribute(f"Unknown scopes {sorted(unknown)}; known: {sorted(SCOPES)}.",
                               field="scopes")
    if db.session.scalar(select(Credential.id).where(Credential.name == name)) is not None:
        raise Conflict(f"An API key named '{name}' exists.", field="name")
    secret = new_secret(PREFIX)
    key = Credential(kind=CredentialKind.API_KEY, secret_digest=digest(secret), name=name,
                     scopes=" ".join(sorted(set(scopes))))
    db.session.add(key)
    db.session.flush()
    return key, secret


def list_all():
    return list(db.session.scalars(select(Credential).where(
        Credential.kind == CredentialKind.API_KEY).order_by(Credential.created_at)))


def revoke(name_or_id):
    match = Credential.name == name_or_id
    key = integer_id(name_or_id, Credential.id)
    if key is not None:
        match = or_(match, Credential.id == key)
    deleted = rows_changed(db.session.execute(delete(Credential).where(
        Credential.kind == CredentialKind.API_KEY, match)))
    if not deleted:
        raise NotFound(f"There is no API key '{name_or_id}'.")
