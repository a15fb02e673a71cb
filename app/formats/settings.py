"""The formats of settings read from the environment (parsers for environs)."""

import ipaddress
import json
import re
from urllib.parse import urlsplit

from environs import EnvError

COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")


DEFAULT_CLIENT_CONFIG = {
    "is_live": False,
    "is_uploads_enabled": True,
    "app_share_url": "https://apps.apple.com/app/id0000000000",
    "multi_invite_text": "Join me",
    "invite_text_body": "Join me",
    "invite_share_view_description": "Invite friends",
    "minimum_posts_hide_invite_share": 1,
    "minimum_posted_hide_invite_share": 1,
    "minimum_feed_hide_invite_share": 9,
    "snap_username": "example",
    "ig_username": "example",
    "twitter_username": "example",
    "default_reaction_emojis": ["\u2764"],
    "delete_account_available": False,
    "in_app_post_message": None,
    "onboarding_invite_user_filter": True,
    "is_auto_follow_on": False,
    "max_name_length": 30,
}


def country_codes(raw):
    """``'1, 44,90'`` → ``('1', '44', '90')``; empty means every country."""
    codes = tuple(code.strip() for code in raw.split(",") if code.strip())
    if not all(COUNTRY_CODE.fullmatch(code) for code in codes):
        raise EnvError("must be calling codes separated by commas, like 1,44,90")
    return codes


def client_config(raw):
    """``CLIENT_CONFIG``: a JSON object overriding some of ``DEFAULT_CLIENT_CONFIG``."""
    try:
        overrides = json.loads(raw)
    except ValueError as exc:
        raise EnvError("must be a JSON object") from exc
    if not isinstance(overrides, dict):
        raise EnvError("must be a JSON object")
    unknown = set(overrides) - set(DEFAULT_CLIENT_CONFIG)
    if unknown:
        raise EnvError(f"has unknown keys: {sorted(unknown)}")
    return {**DEFAULT_CLIENT_CONFIG, **overrides}


def public_url(url):
    """``PUBLIC_URL`` without its trailing slash, once checked to be a base URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise EnvError(f"is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
            or parts.password or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise EnvError("must be an http(s) URL without user, query or fragment, "
                       "like https://push.example.com")
    return url.rstrip("/")


def networks(raw):
    """``'10.0.0.0/8, 127.0.0.1'`` → a tuple of networks."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise EnvError("must be addresses or networks separated by commas, like "
                       f"10.0.0.0/8,127.0.0.1: {exc}") from exc
