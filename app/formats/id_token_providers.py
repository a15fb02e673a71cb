"""Identity providers whose ID tokens the service accepts, from the configuration."""

import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"
APPLE_ISSUER = "https://appleid.apple.com"
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
FIREBASE_KEYS_URL = ("https://www.googleapis.com/robot/v1/metadata/x509/"
                     "securetoken@system.gserviceaccount.com")
# Google Cloud project ids: 6-30 lowercase letters, digits and hyphens, a letter first.
FIREBASE_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
ENTRY_KEYS = frozenset({"issuer", "audience", "keys_url"})


@dataclass(frozen=True)
class Provider:
    """An issuer, the audiences (client ids) its tokens may name, and where its keys are."""

    issuer: str
    audiences: tuple[str, ...]
    keys_url: str

    @property
    def kind(self):
        """Which row of ``PHONE_PROOFS`` this issuer's tokens follow."""
        if self.issuer.startswith(FIREBASE_ISSUER_PREFIX):
            return "firebase"
        if self.issuer == APPLE_ISSUER:
            return "apple"
        if self.issuer in GOOGLE_ISSUERS:
            return "google"
        return "oidc"

    def proves_phone_number(self, claims):
        """Do these (verified) claims prove the caller holds their ``phone_number``?"""
        return PHONE_PROOFS[self.kind](claims)


def _firebase_phone_sign_in(claims):
    """Firebase proved the number only if this sign-in was by a texted code: a custom
    token, an anonymous or password sign-in carries whatever number the Admin SDK or the
    app's backend set, unchecked."""
    firebase = claims.get("firebase")
    return isinstance(firebase, dict) and firebase.get("sign_in_provider") == "phone"


def _never(claims):
    return False


def _phone_number_verified_claim(claims):
    """OpenID Connect's own statement (Core 5.1) that the issuer checked the number."""
    return claim_is_true(claims, "phone_number_verified")


def claim_is_true(claims, name):
    """Sign in with Apple sends its booleans as the strings "true" and "false"."""
    return claims.get(name) in (True, "true")


# Whose word proves a phone number (a proven number links the identity to the user who
# owns it; an unproven one is not linked: the identity gets a user of its own).
PHONE_PROOFS = {
    "firebase": _firebase_phone_sign_in,
    # Sign in with Apple and Google Sign-In never vouch for a phone number.
    "apple": _never,
    "google": _never,
    # Any other issuer the operator configured: its phone_number_verified claim.
    "oidc": _phone_number_verified_claim,
}


def firebase_provider(project_id):
    if not FIREBASE_PROJECT_ID.match(project_id):
        raise ValueError("FIREBASE_PROJECT_ID must be a Google Cloud project id, like my-app-1234")
    return Provider(FIREBASE_ISSUER_PREFIX + project_id, (project_id,), FIREBASE_KEYS_URL)


def parse_providers(raw, firebase_project_id=None):
    """The providers named by ``ID_TOKEN_PROVIDERS`` (JSON) and ``FIREBASE_PROJECT_ID``,
    one per issuer: entries sharing an issuer (and its keys) pool their audiences.
    Raises ValueError saying which setting is wrong."""
    entries = [_entry(item, index) for index, item in enumerate(_json_list(raw))]
    if firebase_project_id:
        entries.append(firebase_provider(firebase_project_id))
    return _merge_by_issuer(entries)


def _json_list(raw):
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"ID_TOKEN_PROVIDERS is not valid JSON: {exc}") from exc
    if not isinstance(value, list):
        raise ValueError("ID_TOKEN_PROVIDERS must be a JSON list of "
                         '{"issuer", "audience", "keys_url"} objects')
    return value


def _entry(item, index):
    where = f"ID_TOKEN_PROVIDERS[{index}]"
    if not isinstance(item, dict) or set(item) != ENTRY_KEYS:
        raise ValueError(f'{where} must be an object with exactly "issuer", "audience" '
                         'and "keys_url"')
    issuer, audience, keys_url = item["issuer"], item["audience"], item["keys_url"]
    if not isinstance(issuer, str) or not issuer:
        raise ValueError(f"{where}: issuer must be the tokens' iss, like https://appleid.apple.com")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not audiences or \
            not all(isinstance(each, str) and each for each in audiences):
        raise ValueError(f"{where}: audience must be a client id or a list of them")
    check_keys_url(keys_url, where)
    return Provider(issuer, tuple(audiences), keys_url)


def check_keys_url(url, where):
    """https anywhere; http only on this machine (tests); file:// a local key file."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # an unbalanced [ in the host
        parts = None
    if parts and parts.scheme == "https" and parts.hostname:
        return
    if parts and parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    if parts and parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
        return
    raise ValueError(f"{where}: keys_url must be an https:// URL, a file:///absolute/path, "
                     "or http:// on a loopback host (127.0.0.1, ::1, localhost)")


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _merge_by_issuer(entries):
    merged: dict[str, Provider] = {}
    for entry in entries:
        known = merged.get(entry.issuer)
        if known is None:
            merged[entry.issuer] = entry
        elif known.keys_url != entry.keys_url:
            raise ValueError(f"ID_TOKEN_PROVIDERS: issuer {entry.issuer} is given two "
                             "different keys_url")
        else:
            audiences = known.audiences + tuple(a for a in entry.audiences
                                                if a not in known.audiences)
            merged[entry.issuer] = Provider(entry.issuer, audiences, entry.keys_url)
    return tuple(merged.values())
