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

# Query parameters an access line keeps (their values still redacted by shape); every other
# parameter is left out: a filter may name a phone number, a client may put a credential
# anywhere. ``page[size]``, ``fields[users]``, ``include``, ``sort``.
SHOWN_PARAMETERS = re.compile(r"include|sort|(?:page|fields)\[[A-Za-z0-9_.-]*\]")
# Headers never logged: credentials (Authorization, Cookie, API keys, Apple's Device-Check).
SECRET_HEADERS = re.compile(r"auth|cookie|token|key|secret|session|device.check", re.IGNORECASE)
HIDDEN = "[redacted]"

# What our secrets look like, wherever they appear in a line: session ids (UUIDs), auth
# tokens and API keys, JWTs, APNs device tokens (also as iOS prints them: <abcd ef01 ...>).
SECRET_SHAPES = re.compile("|".join((
    r"(?<![0-9a-z])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-z])",
    r"(?<![0-9a-z])(?:pat|psk)_[0-9a-z_-]{8,}",
    r"eyJ[0-9a-z_-]*\.[0-9a-z_-]+\.[0-9a-z_-]*",
    r"[0-9a-f]{64,}",
    r"<[0-9a-f ]{64,}>",
)), re.IGNORECASE)
# E.164 phone numbers (also with the + percent-encoded): hidden, not digested, as an
# unkeyed digest of a phone number is undone by trying them all.
PHONE_NUMBER = re.compile(r"(?:\+|%2B)[1-9][0-9]{6,14}(?![0-9])", re.IGNORECASE)
# What a database error says about the row it refused (PostgreSQL's DETAIL names the
# values of a violated key) and the statement's bound values (SQLAlchemy's [parameters: ]).
DATABASE_DETAILS = re.compile(r"^(\s*(?:DETAIL|CONTEXT):).*$|^(\[parameters:).*$",
                              re.MULTILINE)

DEVICE_TOKEN = re.compile(r"[0-9a-f]{64,}", re.IGNORECASE)
TOKEN_DECORATION = str.maketrans("", "", "<> ")  # how iOS prints a token: <abcd ef01 ...>
# C0, DEL, C1, the Unicode line breaks, and the bidirectional marks, embeddings, overrides
# and isolates (which make a line read differently from what it holds).
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069]")
NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
ORIGIN = re.compile(r"(?:[a-z][a-z0-9+.-]*://[^/?#]*)?", re.IGNORECASE)
SECRET, ANY = "{secret}", "*"


# declared by the routes that carry a secret (``declare_secret_path``)
_SECRET_PATHS: list[tuple[str, ...]] = []


def declare_secret_path(template):
    """A path that carries a secret: ``{secret}`` marks the secret segment, ``*`` matches
    any segment. A template matches the start of a path, letters in any case. Routes
    declare theirs as they are defined (``secret_path`` in ``app/api/contract.py``)."""
    _SECRET_PATHS.append(tuple(template.strip("/").casefold().split("/")))


def secret_path_templates():
    return tuple(_SECRET_PATHS)


def loggable_path(path, query=""):
    """A request's path (and the query parameters an access line shows) as a log may show
    it."""
    query = _shown_query(query)
    target = _redact_path(path) + (f"?{query}" if query else "")
    return escape_control(redact_secrets(target))


def loggable_url(url):
    """A request target or whole URL (a request line's, a Referer, a Location)."""
    matched = ORIGIN.match(url)
    assert matched is not None  # all of ORIGIN is optional: it matches every string
    origin = matched.group()
    path, _, query = url[len(origin):].partition("?")
    return escape_control(redact_secrets(origin)) + loggable_path(path, query)


def redact_secrets(text):
    """``text`` with every secret-shaped value digested, phone numbers hidden, and a
    database error's details (the refused row's values, the bound parameters) left out."""
    text = DATABASE_DETAILS.sub(_without_details, text)
    text = SECRET_SHAPES.sub(lambda match: digest(match.group()), text)
    return PHONE_NUMBER.sub(HIDDEN, text)


def _without_details(match):
    detail, parameters = match.groups()
    return f"{detail} {HIDDEN}" if detail else f"{parameters} {HIDDEN}]"


def loggable_text(text):
    """One line of ``text`` as a text log may show it."""
    return escape_control(redact_secrets(text))


def digest(value):
    return "sha256:" + hashlib.sha256(value.encode(errors="backslashreplace")).hexdigest()[:8]


def escape_control(text):
    """``text`` with each control or bidi character escaped: ``\\n``, ``\\x1b``,
    ``\\u202e``."""
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
        if index in secret or _looks_like_secret(unquote(segment)) else segment
        for index, segment in enumerate(segments))


def _secret_positions(segments):
    """Indexes of the segments a template marks secret (empty and ``.`` segments skipped,
    as a lenient router might)."""
    present = [(index, unquote(segment).casefold())
               for index, segment in enumerate(segments) if segment not in ("", ".")]
    positions: set[int] = set()
    for template in secret_path_templates():
        if len(present) >= len(template) and all(
                part in (SECRET, ANY) or part == value
                for part, (_, value) in zip(template, present, strict=False)):
            positions.update(index for part, (index, _) in zip(template, present, strict=False)
                             if part == SECRET)
    return positions


def _shown_query(query):
    """The parameters an access line shows, as sent; the rest left out."""
    return "&".join(parameter for parameter in query.split("&")
                    if SHOWN_PARAMETERS.fullmatch(unquote_plus(parameter.partition("=")[0])))


def _looks_like_secret(value):
    """A secret (percent-decoded) wherever it appears, even in a URL no template names."""
    return DEVICE_TOKEN.fullmatch(value.translate(TOKEN_DECORATION)) is not None \
        or redact_secrets(value) != value


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
        return loggable_text(_shown_query(value))
    if key in URL_ATOMS:
        return loggable_url(value)
    return loggable_text(value)


class EscapingFormatter(logging.Formatter):
    """Secrets redacted (``redact_secrets``) and control characters escaped in every line;
    a traceback keeps its lines."""

    def formatMessage(self, record):
        return loggable_text(super().formatMessage(record))

    def formatException(self, ei):
        return _loggable_lines(super().formatException(ei))

    def formatStack(self, stack_info):
        return _loggable_lines(super().formatStack(stack_info))


def _loggable_lines(text):
    return "\n".join(map(loggable_text, text.split("\n")))


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
    method, route, status, duration, client). JSON escapes every control character (and,
    ASCII only, every bidi one)."""
    from pythonjsonlogger.json import JsonFormatter

    class RedactingJsonFormatter(JsonFormatter):
        def process_log_record(self, log_data):
            return {name: redact_secrets(value) if isinstance(value, str) else value
                    for name, value in super().process_log_record(log_data).items()}

    return RedactingJsonFormatter("%(levelname)s %(name)s %(message)s", timestamp="time",
                                  rename_fields={"levelname": "level", "name": "logger"})


def text_formatter():
    return EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class RequestFields(logging.Filter):
    """A line logged while a request is handled names it: id, method, route, client."""

    def filter(self, record):
        from flask import has_request_context, request

        from app.observability.request_ids import request_id, route_template

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
    from app.observability.request_ids import ROUTE, UNMATCHED, request_id

    method = escape_control(environ.get("REQUEST_METHOD", ""))
    route = environ.get(ROUTE, UNMATCHED)
    fields = {"request_id": request_id(environ), "method": method, "route": route,
              "status": status, "duration": round(seconds, 6),
              "client": environ.get("REMOTE_ADDR")}
    if route != UNMATCHED:
        fields["path"] = loggable_path(environ.get("PATH_INFO", ""))
    return f"{method} {route} {status}", fields
