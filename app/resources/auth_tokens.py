"""Auth tokens (seed 001): an identity provider's ID token and a device fingerprint in
exchange for a long-lived bearer credential bound to that device of that user."""

from sqlalchemy import delete, select

from app import identity
from app.errors import InvalidAttribute, NotFound, Where
from app.extensions import db
from app.formats.ids import integer_id
from app.models import Credential, CredentialKind
from app.resources import devices, identities
from app.security.crypto import digest, new_secret

PREFIX = "pat_"


def issue(id_token=None, device_fingerprint=None):
    """A new auth token and its value (shown only now; stored as a digest). The ID token is
    the proof of who is asking; the device is made for an unknown fingerprint."""
    for name, value in (("id_token", id_token), ("device_fingerprint", device_fingerprint)):
        if not value:
            raise InvalidAttribute(f"{name} is required.", field=name)
    user = identities.user_for(identity.verify_id_token(id_token))
    device = devices.installation(user.id, device_fingerprint)
    secret = new_secret(PREFIX)
    token = Credential(kind=CredentialKind.AUTH_TOKEN, secret_digest=digest(secret),
                       user_id=user.id, device_id=device.id)
    db.session.add(token)
    db.session.flush()
    return token, secret


def _of(principal):
    return (Credential.kind == CredentialKind.AUTH_TOKEN,
            Credential.user_id == principal.user_id)


def list_own(principal):
    return list(db.session.scalars(select(Credential).where(*_of(principal))
                                   .order_by(Credential.created_at, Credential.id)))


def get_own(principal, token_id):
    """The caller's auth token ``token_id`` (as written in the URL); anything else,
    an id that is not one too, is not found."""
    key = integer_id(token_id, Credential.id)
    token = None if key is None else db.session.scalar(
        select(Credential).where(Credential.id == key, *_of(principal)))
    if token is None:
        raise NotFound("You have no such auth token.", field="id", where=Where.URL)
    return token


def revoke(principal, token_id):
    """Delete one of the caller's auth tokens; its access tokens stop working with it."""
    token = get_own(principal, token_id)
    db.session.execute(delete(Credential).where(Credential.id == token.id, *_of(principal)))
