"""Who may do what: each rule once, as a question about a Principal."""

import hmac

from app.errors import Forbidden
from app.models import CredentialKind


def is_self(principal, user_id):
    """Is the caller this user?"""
    return principal is not None and principal.user_id is not None \
        and principal.user_id == user_id


def is_sender(principal, sender_id):
    """Did the caller's credential (an API key) send this?"""
    return principal is not None and sender_id is not None \
        and principal.credential_id == sender_id


def holds_session(principal, session_id):
    """Does the caller hold the session with this database id?"""
    return principal is not None and principal.session_id is not None \
        and principal.session_id == session_id


def presented_session(principal, public_id):
    """Is ``public_id`` (a session id as clients know it) the session the caller holds?"""
    return principal is not None and principal.kind == CredentialKind.SESSION \
        and principal.secret is not None \
        and hmac.compare_digest(public_id.encode(), principal.secret.encode())


def shown_session_id(principal, session_id):
    """A session's id as this caller may see it: its holder, who presented it, sees it;
    anyone else (an access token's bearer too) does not."""
    if holds_session(principal, session_id) and principal.secret is not None:
        return principal.secret
    return None


def require_self(principal, user_id, detail):
    if not is_self(principal, user_id):
        raise Forbidden(detail)
