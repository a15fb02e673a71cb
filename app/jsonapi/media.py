"""Content negotiation per JSON:API 1.1 (section "Content Negotiation").

The verdicts are pure functions of a header's text, and clients send the same few
headers again and again, so they are memoised.
"""

from functools import lru_cache

JSONAPI_MEDIA_TYPE = "application/vnd.api+json"
JSONAPI_OBJECT = {"version": "1.1"}  # the top-level `jsonapi` member of every document
ALLOWED_PARAMETERS = frozenset({"ext", "profile"})
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()


def parse_media_range(text):
    """``'a/b; x="1 2"; y=3'`` → ``('a/b', {'x': '1 2', 'y': '3'})``."""
    media_type, *raw_params = _split_outside_quotes(text, ";")
    params = {}
    for raw in raw_params:
        name, sep, value = raw.partition("=")
        if not sep:
            continue
        params[name.strip().lower()] = value.strip().strip('"')
    return media_type.strip().lower(), params


def parse_accept(header):
    return [_without_weight(*parse_media_range(part))
            for part in _split_outside_quotes(header, ",") if part.strip()]


def _without_weight(media_type, params):
    """``q`` and the accept-extensions after it are no media type parameters (RFC 9110
    §12.5.1); JSON:API 1.1 lets clients weigh its media type instances with ``q``."""
    names = list(params)
    kept = names[:names.index("q")] if "q" in names else names
    return media_type, {name: params[name] for name in kept}


def _split_outside_quotes(text, separator):
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _extensions(params):
    return set(params.get("ext", "").split())


@lru_cache(maxsize=256)
def content_type_problem(header):
    """Why a request body's Content-Type cannot be processed, or None."""
    if not header:
        return "Send the body as application/vnd.api+json."
    media_type, params = parse_media_range(header)
    if media_type != JSONAPI_MEDIA_TYPE:
        return f"Send the body as {JSONAPI_MEDIA_TYPE}, not {media_type}."
    extra = set(params) - ALLOWED_PARAMETERS
    if extra:
        return f"Media type parameters {sorted(extra)} are not allowed on {JSONAPI_MEDIA_TYPE}."
    unsupported = _extensions(params) - SUPPORTED_EXTENSIONS
    if unsupported:
        return f"Extensions {sorted(unsupported)} are not supported."
    return None


@lru_cache(maxsize=256)
def accept_problem(header):
    """Why no JSON:API media type in Accept can be served, or None.

    Only JSON:API instances are judged: a client that also accepts application/json
    or */* (as Poparazzi's does) is served JSON:API.
    """
    if not header:
        return None
    instances = [params for media_type, params in parse_accept(header)
                 if media_type == JSONAPI_MEDIA_TYPE]
    if not instances:
        return None
    for params in instances:
        if not set(params) - ALLOWED_PARAMETERS and not _extensions(params) - SUPPORTED_EXTENSIONS:
            return None
    return (f"Every {JSONAPI_MEDIA_TYPE} in Accept carries parameters or extensions "
            "this server does not support.")
