"""What may reach a log: request targets with their secrets digested, no control characters.

A session id or a device token in a URL is a bearer credential: whoever reads the log could
use it. Each secret is shown as ``sha256:`` and the first 8 hex digits of the SHA-256 of its
percent-decoded value, so the lines about one secret can still be matched up. Control
characters a client sent (``%0A`` in a path, a raw one in a header) are escaped, so no
client-controlled string can start a forged log line.
"""

import hashlib
import logging
import re
from urllib.parse import unquote, unquote_plus

# Paths that carry secrets: ``{secret}`` marks a secret segment, ``*`` matches any segment.
# A template matches the start of a path, letters in any case. A route that takes a
# credential in its URL adds its template here.
SECRET_PATH_TEMPLATES = (
    "/api/sessions/{secret}",
    "/api/apple_device_tokens/{secret}",
)
# Query parameters whose values are secrets, by name. Guessable values (codes, passwords,
# PINs) would fall to a dictionary attack on an unkeyed digest: those are hidden outright.
HIDDEN_PARAMETERS = re.compile(r"code|pass|pin", re.IGNORECASE)
DIGESTED_PARAMETERS = re.compile(r"token|key|secret|session|auth|jwt|signature", re.IGNORECASE)
# Headers never logged: credentials (Authorization, Cookie, API keys, Apple's Device-Check).
SECRET_HEADERS = re.compile(r"auth|cookie|token|key|secret|session|device.check", re.IGNORECASE)
HIDDEN = "[redacted]"

DEVICE_TOKEN = re.compile(r"[0-9a-f]{64,}", re.IGNORECASE)
TOKEN_DECORATION = str.maketrans("", "", "<> ")  # how iOS prints a token: <abcd ef01 ...>
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
ORIGIN = re.compile(r"(?:[a-z][a-z0-9+.-]*://[^/?#]*)?", re.IGNORECASE)
SECRET, ANY = "{secret}", "*"
_TEMPLATES = tuple(tuple(template.strip("/").casefold().split("/"))
                   for template in SECRET_PATH_TEMPLATES)


def loggable_path(path, query=""):
    """A request's path (and query string) as a log may show it."""
    target = _redact_path(path) + (f"?{_redact_query(query)}" if query else "")
    return escape_control(target)


def loggable_url(url):
    """A request target or whole URL (a request line's, a Referer, a Location)."""
    origin = ORIGIN.match(url).group()
    path, _, query = url[len(origin):].partition("?")
    return escape_control(origin) + loggable_path(path, query)


def digest(value):
    return "sha256:" + hashlib.sha256(value.encode(errors="backslashreplace")).hexdigest()[:8]


def escape_control(text):
    """``text`` with each control character escaped: ``\\n``, ``\\x1b``, ``\\u2028``."""
    return CONTROL.sub(_escaped, text)


def _escaped(match):
    char = match.group()
    code = ord(char)
    return NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def _redact_path(path):
    segments = path.split("/")
    secret = _secret_positions(segments)
    return "/".join(
        digest(unquote(segment))
        if index in secret or _looks_like_device_token(unquote(segment)) else segment
        for index, segment in enumerate(segments))


def _secret_positions(segments):
    """Indexes of the segments a template marks secret (empty and ``.`` segments skipped,
    as a lenient router might)."""
    present = [(index, unquote(segment).casefold())
               for index, segment in enumerate(segments) if segment not in ("", ".")]
    positions = set()
    for template in _TEMPLATES:
        if len(present) >= len(template) and all(
                part in (SECRET, ANY) or part == value
                for part, (_, value) in zip(template, present, strict=False)):
            positions.update(index for part, (index, _) in zip(template, present, strict=False)
                             if part == SECRET)
    return positions


def _redact_query(query):
    return "&".join(_redact_parameter(parameter) for parameter in query.split("&"))


def _redact_parameter(parameter):
    name, equals, value = parameter.partition("=")
    if not equals:
        return _digest_if_token(name)
    if not value:
        return parameter
    decoded_name = unquote_plus(name)
    if HIDDEN_PARAMETERS.search(decoded_name):
        return f"{name}={HIDDEN}"
    if DIGESTED_PARAMETERS.search(decoded_name):
        return f"{name}={digest(unquote_plus(value))}"
    return f"{name}={_digest_if_token(value)}"


def _digest_if_token(raw):
    value = unquote_plus(raw)
    return digest(value) if _looks_like_device_token(value) else raw


def _looks_like_device_token(value):
    """An APNs token wherever it appears, even in a URL no template names."""
    return DEVICE_TOKEN.fullmatch(value.translate(TOKEN_DECORATION)) is not None


# gunicorn's access-log atoms (``%(r)s``, ``%({name}i)s``, ...) that hold paths or URLs.
PATH_ATOMS = frozenset({"U", "{path_info}e", "{script_name}e"})
QUERY_ATOMS = frozenset({"q", "{query_string}e"})
URL_ATOMS = frozenset({"f", "{raw_uri}e", "{request_uri}e", "{referer}i", "{http_referer}e",
                       "{location}o", "{content-location}o"})


def format_atoms(log_format):
    """The atoms an access-log format names, spelt as gunicorn's atoms are (its
    ``SafeAtoms`` looks header and environ atoms up in lower case)."""
    return frozenset(name.lower() if name.startswith("{") else name
                     for name in re.findall(r"%\((.*?)\)", log_format))


def loggable_atoms(atoms, names=None):
    """gunicorn's access-log atoms without secrets or control characters: those in
    ``names`` only when given (a format shows a handful of gunicorn's fifty, and every
    request would redact them all)."""
    wanted = atoms.keys() if names is None else names & atoms.keys()
    safe = {key: _loggable_atom(key, atoms[key]) for key in wanted}
    if "r" in safe:
        method, protocol = (_loggable_atom(key, atoms.get(key)) for key in ("m", "H"))
        safe["r"] = f"{method} {loggable_url(atoms.get('{raw_uri}e') or '')} {protocol}"
    safe["u"] = "-"  # gunicorn takes it from a Basic Authorization header
    return safe


def _loggable_atom(key, value):
    if not isinstance(value, str):
        return value
    if key.startswith("{") and SECRET_HEADERS.search(key):
        return "-"
    if key in PATH_ATOMS:
        return loggable_path(value)
    if key in QUERY_ATOMS:
        return escape_control(_redact_query(value))
    if key in URL_ATOMS:
        return loggable_url(value)
    return escape_control(value)


class EscapingFormatter(logging.Formatter):
    """Control characters in a message are escaped; a traceback keeps its lines."""

    def formatMessage(self, record):
        return escape_control(super().formatMessage(record))

    def formatException(self, ei):
        lines = super().formatException(ei).split("\n")
        return "\n".join(escape_control(line) for line in lines)


class RedactTargets(logging.Filter):
    """For gunicorn's error log: it names a request's URI when the application fails."""

    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = escape_control(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(map(_loggable_argument, record.args))
        return True


REDACT_TARGETS = RedactTargets()


def _loggable_argument(argument):
    if not isinstance(argument, str):
        return argument
    return loggable_url(argument) if argument.startswith("/") or "://" in argument \
        else escape_control(argument)


# -- LOG_FORMAT=json: one JSON object a line (python-json-logger) ----------------------------

def json_formatter():
    """time, level, logger, message, and whatever fields a record carries (a request's id,
    method, route, status, duration, client). JSON escapes every control character."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})


def text_formatter():
    return EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class RequestFields(logging.Filter):
    """A line logged while a request is handled names it: id, method, route, client."""

    def filter(self, record):
        from flask import has_request_context, request

        from app.observe import request_id, route_template

        if has_request_context():
            record.request_id = request_id()
            record.method = escape_control(request.method)
            record.route = route_template()
            record.client = request.remote_addr
        return True


def access_fields(status, environ, seconds):
    """gunicorn's access line for ``LOG_FORMAT=json``: its message and its fields. The
    message names the route template; the path (its secrets digested) is shown only when a
    route matched it, as only then is it known which of its segments are secrets. The
    client is the one ProxyFix settled on."""
    from app.observe import ROUTE, UNMATCHED, request_id

    method = escape_control(environ.get("REQUEST_METHOD", ""))
    route = environ.get(ROUTE, UNMATCHED)
    fields = {"request_id": request_id(environ), "method": method, "route": route,
              "status": status, "duration": round(seconds, 6),
              "client": environ.get("REMOTE_ADDR")}
    if route != UNMATCHED:
        fields["path"] = loggable_path(environ.get("PATH_INFO", ""))
    return f"{method} {route} {status}", fields
