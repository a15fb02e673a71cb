"""Verifying identity providers' ID tokens (Firebase Authentication, Sign in with Apple,
Google, any OpenID Connect issuer with a JWKS): who the caller is, as an Identity.

``verify_id_token(token)`` uses the current app's verifier, built once from its
configuration (``ID_TOKEN_PROVIDERS``, ``FIREBASE_PROJECT_ID``, ``ID_TOKEN_LEEWAY``,
``ID_TOKEN_KEYS_TIMEOUT``) and shared by its threads.
"""

import threading

from flask import current_app

from app.formats.id_token_providers import Provider, firebase_provider, parse_providers
from app.identity.verify import DEFAULT_ALGORITHMS, Identity, IdTokenVerifier

__all__ = ["DEFAULT_ALGORITHMS", "IdTokenVerifier", "Identity", "Provider",
           "firebase_provider", "parse_providers", "verifier", "verify_id_token"]

EXTENSION = "id_token_verifier"
_creating = threading.Lock()


def verify_id_token(token):
    """The Identity ``token`` proves; raises InvalidIdToken or IdentityProviderUnavailable."""
    return verifier().verify(token)


def verifier(app=None):
    """The app's IdTokenVerifier (its key caches live as long as the app)."""
    # current_app is a LocalProxy; Flask types it as the Flask it stands for
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(EXTENSION)
    if found is None:
        with _creating:
            found = app.extensions.get(EXTENSION)
            if found is None:
                found = app.extensions[EXTENSION] = IdTokenVerifier.from_config(app.config)
    return found
