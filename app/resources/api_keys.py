"""API keys for backend services: made, listed and revoked by operators (``flask keys``),
each with a name and the scopes it grants, and perhaps a callback URL its delivery
receipts are POSTed to (``app/push/receipts.py``), signed with a secret shown once."""

from flask import current_app
from sqlalchemy import delete, or_, select

from app.database.results import rows_changed
from app.errors import Conflict, InvalidAttribute, NotFound
from app.extensions import db
from app.formats.ids import integer_id
from app.models import Credential, CredentialKind
from app.push.endpoints import EndpointPolicy, RefusedEndpoint
from app.push.webhook import new_signing_secret
from app.security.crypto import digest, new_secret, seal

PREFIX = "psk_"
SCOPES = frozenset({"notifications:send", "notifications:broadcast", "topics:manage",
                    "live_activities:manage"})


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
    deleted = rows_changed(db.session.execute(delete(Credential).where(
        Credential.kind == CredentialKind.API_KEY, _named(name_or_id))))
    if not deleted:
        raise NotFound(f"There is no API key '{name_or_id}'.")


def set_callback(name_or_id, url, keep_secret=False):
    """Send the key's receipts to ``url`` (the webhook URL rule) from now on, turned on
    again if a 410 had turned them off. The new ``whsec_…`` signing secret (shown only
    now), or None with ``keep_secret`` when the key has one: it stays."""
    key = find(name_or_id)
    try:
        key.callback_url = EndpointPolicy.from_config(current_app.config).check(url)
    except RefusedEndpoint as exc:
        raise InvalidAttribute(str(exc), field="callback_url") from exc
    key.callback_off_since = None
    secret = None
    if not (keep_secret and key.callback_secret):
        secret = new_signing_secret()
        key.callback_secret = seal(secret)
    db.session.flush()
    return secret


def clear_callback(name_or_id):
    """No more receipts for the key (the sender drops the events still waiting)."""
    key = find(name_or_id)
    key.callback_url = key.callback_secret = key.callback_off_since = None
    db.session.flush()


def find(name_or_id) -> Credential:
    key = db.session.scalar(select(Credential).where(
        Credential.kind == CredentialKind.API_KEY, _named(name_or_id)))
    if key is None:
        raise NotFound(f"There is no API key '{name_or_id}'.")
    return key


def _named(name_or_id):
    match = Credential.name == name_or_id
    key = integer_id(name_or_id, Credential.id)
    return match if key is None else or_(match, Credential.id == key)
