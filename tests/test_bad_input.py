"""Bad input against the writes Poparazzi's client makes: one table, one test.

Every row is a request that must fail. Each must fail the same way: the stated status and
``code`` (and ``source`` member where the error has one) in a JSON:API error document,
never an HTML page, a stack trace or SQL, and with every table exactly as it was.
"""

import base64
import json
import re
import uuid
from dataclasses import dataclass, field

import pytest

from tests.factories import bearer, log_in, new_token, register_token, token_document
from tests.jsonapi_helpers import snapshot
from tests.jsonapi_schema import JSONAPI

MAX_CONTENT_LENGTH = 64 * 1024
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
LEAKS = ("<html", "<!doctype", "Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3",
         "SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "Werkzeug")


@dataclass
class World:
    session_id: str
    user_id: str
    token: str


# -- the four writes with a valid body for each, and the collections ---------------------

WRITES = {
    "token": ("PATCH", lambda w: f"/api/apple_device_tokens/{w.token}"),
    "session_post": ("POST", lambda w: "/api/sessions"),
    "session_patch": ("PATCH", lambda w: f"/api/sessions/{w.session_id}"),
    "user_patch": ("PATCH", lambda w: f"/api/users/{w.user_id}"),
}
COLLECTIONS = {
    "tokens": ("GET", lambda w: "/api/apple_device_tokens"),
    "users": ("GET", lambda w: "/api/users"),
    "user_devices": ("GET", lambda w: f"/api/users/{w.user_id}/devices"),
}
ENDPOINTS = {**WRITES, **COLLECTIONS}


def valid_document(endpoint, w):
    if endpoint in COLLECTIONS:
        return None
    if endpoint == "token":
        return token_document(w.token)
    if endpoint == "session_post":
        return {"data": {"type": "sessions", "attributes": {"is_cookie_based": False}}}
    if endpoint == "session_patch":
        return {"data": {"type": "sessions", "id": w.session_id,
                         "attributes": {"phone_number": "+12122009999"}}}
    return {"data": {"type": "users", "id": w.user_id,
                     "attributes": {"time_zone": "Europe/Paris"}}}


OTHER_TYPE = {"token": "sessions", "session_post": "users", "session_patch": "users",
              "user_patch": "apple_device_tokens"}


# -- body edits ------------------------------------------------------------------------

def attributes(**changes):
    """The valid document with attributes added or changed."""
    def edit(document, _w):
        document["data"].setdefault("attributes", {}).update(changes)
        return document
    return edit


def data(**changes):
    def edit(document, _w):
        document["data"].update(changes)
        return document
    return edit


def replace(value):
    return lambda _document, _w: value


def token_id(make):
    """Token URL and body id both ``make(world)``: the client names one (bad) token."""
    def edit(document, w):
        document["data"]["id"] = make(w)
        return document
    return edit


def meta(value):
    def edit(document, _w):
        document["meta"] = value
        return document
    return edit


def padded(document, _w):
    return meta({"padding": "x" * MAX_CONTENT_LENGTH})(document, _w)


def nested(depth):
    """A body whose meta nests ``depth`` arrays (the document itself adds one object)."""
    def edit(document, _w):
        text = json.dumps(document)[:-1] + ', "meta": ' + "[" * depth + "]" * depth + "}"
        return text.encode()
    return edit


def raw_attribute(text):
    """The valid document with one more attribute, written as raw JSON ``text``."""
    def edit(document, _w):
        return (json.dumps(document)[:-3] + ", " + text + "}}}").encode()
    return edit


def other_token(_w):
    return new_token()


@dataclass(frozen=True)
class Case:
    id: str
    endpoint: str
    status: int
    code: str
    pointer: str | None = None
    parameter: str | None = None
    header: str | None = None
    body: object = None              # edit(document, world) -> dict | list | bytes | str
    headers: dict = field(default_factory=dict)
    method: str | None = None        # instead of the endpoint's
    url: object = None               # url(world) instead of the endpoint's
    query: str = ""
    detail: str | None = None        # a phrase the detail must contain


MEDIA = [
    ("content-type-json", {"Content-Type": "application/json"}, 415, "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type"),
    ("content-type-text", {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type"),
    ("content-type-missing", {"Content-Type": None}, 415, "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type"),
    ("content-type-charset", {"Content-Type": f"{JSONAPI}; charset=utf-8"}, 415,
     "UNSUPPORTED_MEDIA_TYPE", "Content-Type"),
    ("content-type-unsupported-ext",
     {"Content-Type": f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"'}, 415,
     "UNSUPPORTED_MEDIA_TYPE", "Content-Type"),
    ("accept-only-parameterised", {"Accept": f"{JSONAPI}; charset=utf-8"}, 406,
     "NOT_ACCEPTABLE", "Accept"),
    ("accept-only-unsupported-ext", {"Accept": f'{JSONAPI}; ext="https://example.com/x"'},
     406, "NOT_ACCEPTABLE", "Accept"),
]

DOCUMENT = [
    ("invalid-json", replace(b'{"data": {"type": '), 400, "INVALID_JSON", None),
    ("not-utf8", replace(b"\xff\xfe{}"), 400, "INVALID_JSON", None),
    ("empty-body", replace(b""), 400, "INVALID_DOCUMENT", ""),
    ("body-is-array", replace([]), 400, "INVALID_DOCUMENT", ""),
    ("body-is-string", replace("data"), 400, "INVALID_DOCUMENT", ""),
    ("missing-data", replace({"meta": {}}), 400, "INVALID_DOCUMENT", ""),
    ("data-is-null", replace({"data": None}), 400, "INVALID_DOCUMENT", "/data"),
    ("data-is-array", lambda d, _w: {"data": [d["data"]]}, 400, "INVALID_DOCUMENT", "/data"),
    ("data-is-string", replace({"data": "x"}), 400, "INVALID_DOCUMENT", "/data"),
    ("missing-type", lambda d, _w: {"data": {k: v for k, v in d["data"].items()
                                              if k != "type"}},
     400, "INVALID_DOCUMENT", "/data"),
    ("attributes-not-object", data(attributes=["x"]), 400, "INVALID_DOCUMENT",
     "/data/attributes"),
    ("relationships-not-object", data(relationships="x"), 400, "INVALID_DOCUMENT",
     "/data/relationships"),
    ("oversized", padded, 413, "PAYLOAD_TOO_LARGE", None),
    ("unknown-attribute", attributes(bogus=1), 400, "INVALID_ATTRIBUTE",
     "/data/attributes/bogus"),
    # a read-only attribute changed is an unsupported update (sent back unchanged, it passes)
    ("read-only-created-at", attributes(created_at="2022-01-17T03:50:04.463Z"), 403,
     "READ_ONLY_ATTRIBUTE", "/data/attributes/created_at"),
    # found by the fuzzer (tests/test_fuzz.py): 500 for a relationship that is no object
    ("relationship-null", data(relationships={"user": None}), 400, "INVALID_DOCUMENT",
     "/data/relationships/user"),
    ("relationship-a-list", data(relationships={"a/b": []}), 400, "INVALID_DOCUMENT",
     "/data/relationships/a~1b"),
    # item 9: nesting is refused before anything recursive parses it
    ("nested-1000-deep", nested(1000), 400, "INVALID_JSON", None),
    ("nested-past-the-bound", nested(32), 400, "INVALID_JSON", None),
    ("nan", raw_attribute('"x": NaN'), 400, "INVALID_JSON", None),
    ("infinity", raw_attribute('"x": -Infinity'), 400, "INVALID_JSON", None),
    ("number-beyond-float", raw_attribute('"x": 1e999'), 400, "INVALID_JSON", None),
    ("integer-of-5000-digits", raw_attribute('"x": ' + "9" * 5000), 400, "INVALID_JSON",
     None),
    # item 10: text that cannot be stored alike on both databases, or encoded at all
    ("nul-in-type", data(type="sessions\x00"), 400, "INVALID_DOCUMENT", "/data/type"),
    ("surrogate-in-type", data(type="\ud800"), 400, "INVALID_DOCUMENT", "/data/type"),
    ("nul-in-id", data(id="a\x00"), 400, "INVALID_DOCUMENT", "/data/id"),
    ("surrogate-in-id", data(id="\udfff"), 400, "INVALID_DOCUMENT", "/data/id"),
    ("surrogate-in-attribute-value", attributes(x="a\ud83d"), 400, "INVALID_DOCUMENT",
     "/data/attributes/x"),
    ("surrogate-in-attribute-name", attributes(**{"\ud800": 1}), 400, "INVALID_DOCUMENT",
     "/data/attributes"),
    ("surrogate-in-relationship-name", data(relationships={"\ud800": {"data": None}}), 400,
     "INVALID_DOCUMENT", "/data/relationships"),
    ("nul-in-relationship-linkage",
     data(relationships={"user": {"data": {"type": "users", "id": "\x00"}}}), 400,
     "INVALID_DOCUMENT", "/data/relationships/user/data/id"),
    ("nul-in-attribute-name", attributes(**{"a\x00": 1}), 400, "INVALID_DOCUMENT",
     "/data/attributes/a\x00"),
    ("escape-in-member-name", meta({"\x1b[31m": 1}), 400, "INVALID_DOCUMENT",
     "/meta/\x1b[31m"),
    ("c1-control-in-member-name", meta({"next\x85line": 1}), 400, "INVALID_DOCUMENT",
     "/meta/next\x85line"),
    ("bidi-override-in-member-name", attributes(**{"is_\u202enimda": True}), 400,
     "INVALID_DOCUMENT", "/data/attributes/is_\u202enimda"),
    ("bidi-isolate-in-member-name", meta({"\u2067x": 1}), 400, "INVALID_DOCUMENT",
     "/meta/\u2067x"),
    ("surrogate-deep-in-meta", meta({"list": ["fine", {"a/b~": "\ud800"}]}), 400,
     "INVALID_DOCUMENT", "/meta/list/1/a~1b~0"),
    # item 11: a name marshmallow keeps for itself is just an unknown attribute
    ("underscore-schema-attribute", attributes(_schema=1), 400, "INVALID_ATTRIBUTE",
     "/data/attributes/_schema"),
]

QUERY = [
    ("unknown-query-parameter", "foo=bar", 400, "INVALID_QUERY_PARAMETER", "foo"),
    ("unknown-include", "include=nope", 400, "INVALID_QUERY_PARAMETER", "include"),
    ("sort-on-single-resource", "sort=created_at", 400, "INVALID_QUERY_PARAMETER", "sort"),
    ("page-on-single-resource", "page[size]=5", 400, "INVALID_QUERY_PARAMETER", "page[size]"),
    ("unknown-fields-type", "fields[nope]=x", 400, "INVALID_QUERY_PARAMETER", "fields[nope]"),
    ("nul-in-query-value", "include=user%00", 400, "INVALID_QUERY_PARAMETER", "include"),
    ("nul-in-query-name", "fields%00=x", 400, "INVALID_QUERY_PARAMETER", "fields\x00"),
]


def _wrong_type(endpoint):
    return lambda d, _w: {"data": {**d["data"], "type": OTHER_TYPE[endpoint]}}


def _generic_cases():
    for endpoint in WRITES:
        for name, headers, status, code, header in MEDIA:
            yield Case(f"{endpoint}-{name}", endpoint, status, code, header=header,
                       headers=headers)
        for name, body, status, code, pointer in DOCUMENT:
            detail = "read-only" if name == "read-only-created-at" else None
            yield Case(f"{endpoint}-{name}", endpoint, status, code, pointer=pointer,
                       body=body, detail=detail)
        yield Case(f"{endpoint}-wrong-type", endpoint, 409, "TYPE_MISMATCH",
                   pointer="/data/type", body=_wrong_type(endpoint))
        for name, query, status, code, parameter in QUERY:
            yield Case(f"{endpoint}-{name}", endpoint, status, code, parameter=parameter,
                       query=query)


SPECIFIC = [
    # apple_device_tokens PATCH
    Case("token-id-differs-from-url", "token", 409, "ID_MISMATCH", pointer="/data/id",
         body=data(id=new_token())),
    Case("token-missing-id", "token", 400, "INVALID_DOCUMENT", pointer="/data",
         body=lambda d, _w: {"data": {k: v for k, v in d["data"].items() if k != "id"}}),
    Case("token-id-not-a-string", "token", 400, "INVALID_DOCUMENT", pointer="/data/id",
         body=data(id=64)),
    Case("token-bad-hex", "token", 400, "INVALID_DEVICE_TOKEN", pointer="/data/id",
         url=lambda _w: f"/api/apple_device_tokens/{'zz' * 32}",
         body=token_id(lambda _w: "zz" * 32)),
    Case("token-odd-length", "token", 400, "INVALID_DEVICE_TOKEN", pointer="/data/id",
         url=lambda _w: f"/api/apple_device_tokens/{'a' * 65}",
         body=token_id(lambda _w: "a" * 65)),
    Case("token-too-short", "token", 400, "INVALID_DEVICE_TOKEN", pointer="/data/id",
         url=lambda _w: f"/api/apple_device_tokens/{'ab' * 31}",
         body=token_id(lambda _w: "ab" * 31)),
    Case("token-too-long", "token", 400, "INVALID_DEVICE_TOKEN", pointer="/data/id",
         url=lambda _w: f"/api/apple_device_tokens/{'ab' * 101}",
         body=token_id(lambda _w: "ab" * 101)),
    Case("token-bad-hex-in-body-only", "token", 400, "INVALID_DEVICE_TOKEN",
         pointer="/data/id", body=data(id="zz" * 32)),
    Case("token-string-for-boolean", "token", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_production", body=attributes(is_production="true")),
    Case("token-1-for-boolean", "token", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_voip", body=attributes(is_voip=1)),
    Case("token-null-for-boolean", "token", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_invalidated", body=attributes(is_invalidated=None)),
    Case("token-number-for-string", "token", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/bundle_version", body=attributes(bundle_version=3.1)),
    Case("token-string-too-long", "token", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/build_number", body=attributes(build_number="8" * 33)),
    Case("token-read-only-updated-at", "token", 403, "READ_ONLY_ATTRIBUTE",
         pointer="/data/attributes/updated_at", body=attributes(updated_at="x"),
         detail="read-only"),
    Case("token-put", "token", 405, "METHOD_NOT_ALLOWED", method="PUT"),
    Case("token-post", "token", 405, "METHOD_NOT_ALLOWED", method="POST"),
    Case("token-unknown-route", "token", 404, "NOT_FOUND",
         url=lambda w: f"/api/apple_device_tokens/{w.token}/nope/deeper"),
    Case("token-misspelt-type-route", "token", 404, "NOT_FOUND",
         url=lambda w: f"/api/apple_device_token/{w.token}"),
    # sessions POST
    Case("session-post-client-id", "session_post", 403, "CLIENT_ID_NOT_ALLOWED",
         pointer="/data/id", body=data(id=str(uuid.uuid4()))),
    Case("session-post-string-for-boolean", "session_post", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_cookie_based", body=attributes(is_cookie_based="false")),
    Case("session-post-cookie-based", "session_post", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_cookie_based", body=attributes(is_cookie_based=True)),
    # found by the fuzzer (tests/test_fuzz.py): update-only attributes gave 500 on create
    Case("session-post-phone-number", "session_post", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/phone_number", body=attributes(phone_number="+12122001234")),
    Case("session-post-verification-code", "session_post", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/verification_code",
         body=attributes(verification_code="123456")),
    Case("session-post-put", "session_post", 405, "METHOD_NOT_ALLOWED", method="PUT"),
    Case("session-post-unknown-route", "session_post", 404, "NOT_FOUND",
         url=lambda _w: "/api/session"),
    Case("session-post-outside-api", "session_post", 404, "NOT_FOUND",
         url=lambda _w: "/sessions"),
    # sessions PATCH
    Case("session-patch-id-differs-from-url", "session_patch", 409, "ID_MISMATCH",
         pointer="/data/id", body=data(id=str(uuid.uuid4()))),
    Case("session-patch-missing-id", "session_patch", 400, "INVALID_DOCUMENT",
         pointer="/data",
         body=lambda d, _w: {"data": {k: v for k, v in d["data"].items() if k != "id"}}),
    Case("session-patch-invalid-phone", "session_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/phone_number", body=attributes(phone_number="555-0100")),
    Case("session-patch-phone-without-plus", "session_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/phone_number", body=attributes(phone_number="15550100")),
    Case("session-patch-number-for-phone", "session_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/phone_number", body=attributes(phone_number=15550001111)),
    Case("session-patch-code-not-six-digits", "session_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/verification_code",
         body=lambda d, _w: {"data": {**d["data"], "attributes": {"verification_code": "12ab"}}}),
    Case("session-patch-number-for-code", "session_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/verification_code",
         body=lambda d, _w: {"data": {**d["data"], "attributes": {"verification_code": 123456}}}),
    Case("session-patch-phone-and-code", "session_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/verification_code",
         body=attributes(verification_code="123456")),
    # found by the fuzzer: a creation-only attribute gave 500 on update
    Case("session-patch-cookie-based", "session_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_cookie_based", body=attributes(is_cookie_based=True)),
    Case("session-patch-put", "session_patch", 405, "METHOD_NOT_ALLOWED", method="PUT"),
    Case("session-patch-post", "session_patch", 405, "METHOD_NOT_ALLOWED", method="POST"),
    Case("session-patch-unknown-route", "session_patch", 404, "NOT_FOUND",
         url=lambda w: f"/api/sessions/{w.session_id}/nope/deeper"),
    # users PATCH
    Case("user-patch-id-differs-from-url", "user_patch", 409, "ID_MISMATCH",
         pointer="/data/id", body=data(id=str(uuid.uuid4()))),
    Case("user-patch-invalid-time-zone", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/time_zone", body=attributes(time_zone="Mars/Olympus_Mons")),
    Case("user-patch-time-zone-path", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/time_zone", body=attributes(time_zone="../../etc/passwd")),
    Case("user-patch-invalid-username", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/username", body=attributes(username="Not Valid!")),
    Case("user-patch-username-too-long", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/username", body=attributes(username="a" * 31)),
    Case("user-patch-string-for-boolean", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_private", body=attributes(is_private="yes")),
    Case("user-patch-1-for-boolean", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/is_private", body=attributes(is_private=1)),
    Case("user-patch-number-for-string", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/first_name", body=attributes(first_name=42)),
    Case("user-patch-empty-name", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/last_name", body=attributes(last_name="")),
    Case("user-patch-http-photo", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/profile_photo_url",
         body=attributes(profile_photo_url="http://example.com/p.jpg")),
    Case("user-patch-read-only-phone-number", "user_patch", 403, "READ_ONLY_ATTRIBUTE",
         pointer="/data/attributes/phone_number", body=attributes(phone_number="+15550001"),
         detail="read-only"),
    Case("user-patch-read-only-badges", "user_patch", 403, "READ_ONLY_ATTRIBUTE",
         pointer="/data/attributes/badges", body=attributes(badges=["verified"]),
         detail="read-only"),
    Case("user-patch-social-counter", "user_patch", 400, "INVALID_ATTRIBUTE",
         pointer="/data/attributes/pop_score", body=attributes(pop_score=11)),
    Case("user-patch-unknown-user", "user_patch", 404, "NOT_FOUND",
         url=lambda _w: "/api/users/not-a-uuid", body=data(id="not-a-uuid")),
    Case("user-patch-put", "user_patch", 405, "METHOD_NOT_ALLOWED", method="PUT"),
    Case("user-patch-delete", "user_patch", 405, "METHOD_NOT_ALLOWED", method="DELETE"),
    Case("user-patch-post-collection", "user_patch", 405, "METHOD_NOT_ALLOWED",
         method="POST", url=lambda _w: "/api/users"),
    Case("user-patch-unknown-route", "user_patch", 404, "NOT_FOUND",
         url=lambda w: f"/api/users/{w.user_id}/nope/deeper"),
]



def cursor(value):
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


SOME_ID = str(uuid.uuid4())
FORGED_CURSORS = [  # item 12: (name, cursor) — each must be a 400 on the parameter
    ("naive-timestamp", cursor(["2024-01-01T00:00:00", SOME_ID])),
    ("year-99999", cursor(["99999-01-01T00:00:00+00:00", SOME_ID])),
    ("past-9999-in-utc", cursor(["9999-12-31T23:59:59-01:00", SOME_ID])),
    ("before-year-1-in-utc", cursor(["0001-01-01T00:00:00+01:00", SOME_ID])),
    ("timestamp-a-number", cursor([1704067200, SOME_ID])),
    ("id-a-number", cursor(["2024-01-01T00:00:00+00:00", 12])),
    ("id-a-bool", cursor(["2024-01-01T00:00:00+00:00", True])),
    ("id-a-list", cursor(["2024-01-01T00:00:00+00:00", [SOME_ID]])),
    ("id-null", cursor(["2024-01-01T00:00:00+00:00", None])),
    ("id-an-object", cursor(["2024-01-01T00:00:00+00:00", {"id": SOME_ID}])),
    ("id-not-a-uuid", cursor(["2024-01-01T00:00:00+00:00", "1 OR 1=1"])),
    ("id-with-nul", cursor(["2024-01-01T00:00:00+00:00", "\x00"])),
    ("id-lone-surrogate", cursor(b'["2024-01-01T00:00:00+00:00", "\\ud800"]')),
    ("one-value", cursor(["2024-01-01T00:00:00+00:00"])),
    ("three-values", cursor(["2024-01-01T00:00:00+00:00", SOME_ID, SOME_ID])),
    ("empty-list", cursor([])),
    ("an-object", cursor({"created_at": "2024-01-01T00:00:00+00:00", "id": SOME_ID})),
    ("null", cursor(None)),
    ("not-base64", "!!not*base64!!"),
    ("not-json", cursor(b"\x80\x81 not json")),
    ("nan", cursor(b'[NaN, "x"]')),
    ("huge", cursor(["x" * 2000, SOME_ID])),
    ("nested-within-the-length", cursor(b"[" * 190 + b"]" * 190)),
    ("nested-1000-deep", cursor(b"[" * 1000 + b"]" * 1000)),
]


def _cursor_cases():
    """Every forged cursor after every collection's rows, and before the tokens'."""
    places = [(endpoint, "page[after]") for endpoint in COLLECTIONS] + [("tokens", "page[before]")]
    for endpoint, parameter in places:
        for name, text in FORGED_CURSORS:
            yield Case(f"{endpoint}-{parameter[5:-1]}-{name}", endpoint, 400,
                       "INVALID_QUERY_PARAMETER", parameter=parameter,
                       query=f"{parameter}={text}")


def _nul_in_url_cases():
    """Item 10: NUL anywhere in a URL, on writes and reads alike."""
    urls = {"token": lambda w: f"/api/apple_device_tokens/{w.token}%00",
            "session_patch": lambda w: f"/api/sessions/%00{w.session_id}",
            "user_patch": lambda w: f"/api/users/{w.user_id}%00"}
    for endpoint, url in urls.items():
        yield Case(f"{endpoint}-nul-in-url-id", endpoint, 400, "BAD_REQUEST", url=url)
        yield Case(f"{endpoint}-get-nul-in-url-id", endpoint, 400, "BAD_REQUEST", url=url,
                   method="GET")
    yield Case("user-devices-nul-in-relationship-name", "user_devices", 400, "BAD_REQUEST",
               url=lambda w: f"/api/users/{w.user_id}/relationships/devices%00")
    yield Case("tokens-nul-in-filter", "tokens", 400, "INVALID_QUERY_PARAMETER",
               parameter="filter[bundle_id]", query="filter[bundle_id]=TTYL.Inc.Poparazzi%00")
    yield Case("users-nul-in-filter", "users", 400, "INVALID_QUERY_PARAMETER",
               parameter="filter[username]", query="filter[username]=%00")


# item 19.5: ids and numbers Python reads but no client writes
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x660 + digit) for digit in range(10)))


def _not_a_number_cases():
    for name, size in (("superscript", "\u00b2"), ("arabic-indic", "\u0665"),
                       ("5000-digits", "9" * 5000), ("plus", "%2B5")):
        yield Case(f"tokens-page-size-{name}", "tokens", 400, "INVALID_QUERY_PARAMETER",
                   parameter="page[size]", query=f"page[size]={size}")
    yield Case("user-get-arabic-indic-id", "user_patch", 404, "NOT_FOUND", method="GET",
               url=lambda w: f"/api/users/{w.user_id.translate(ARABIC_INDIC)}")


NUL_IN_ATTRIBUTES = [  # item 10: stored on SQLite, a 500 on PostgreSQL before
    Case("token-nul-in-bundle-version", "token", 400, "INVALID_DOCUMENT",
         pointer="/data/attributes/bundle_version", body=attributes(bundle_version="3.1\x00")),
    Case("token-nul-in-bundle-id", "token", 400, "INVALID_DOCUMENT",
         pointer="/data/attributes/bundle_id", body=attributes(bundle_id="\x00")),
    Case("user-patch-nul-in-first-name", "user_patch", 400, "INVALID_DOCUMENT",
         pointer="/data/attributes/first_name", body=attributes(first_name="Ann\x00")),
    Case("user-patch-surrogate-in-first-name", "user_patch", 400, "INVALID_DOCUMENT",
         pointer="/data/attributes/first_name", body=attributes(first_name="Ann\udc00")),
    Case("session-patch-nul-in-phone", "session_patch", 400, "INVALID_DOCUMENT",
         pointer="/data/attributes/phone_number", body=attributes(phone_number="+1555\x00")),
]

CASES = [*_generic_cases(), *SPECIFIC, *NUL_IN_ATTRIBUTES, *_nul_in_url_cases(),
         *_cursor_cases(), *_not_a_number_cases()]


# -- the world every row runs against ---------------------------------------------------

@pytest.fixture
def world(client, app):
    session_id, user_id = log_in(client, app)
    return World(session_id, user_id, register_token(client, session_id))


def _encode(body):
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_cleanly_and_changes_nothing(client, app, world, case):
    method, url = ENDPOINTS[case.endpoint]
    document = valid_document(case.endpoint, world)
    body = case.body(document, world) if case.body else document
    url = (case.url or url)(world) + (f"?{case.query}" if case.query else "")
    headers = {**bearer(world.session_id), **case.headers}
    if case.code == "PAYLOAD_TOO_LARGE":
        assert app.config["MAX_CONTENT_LENGTH"] == MAX_CONTENT_LENGTH < len(_encode(body))
    before = snapshot(app)

    response = client.open(url, method=case.method or method, data=_encode(body),
                           headers=headers)

    text = response.get_data(as_text=True)
    assert response.status_code == case.status, text
    assert response.mimetype == JSONAPI
    for leak in LEAKS:
        assert leak.lower() not in text.lower(), f"{leak!r} in {text}"
    document = response.get_json()
    assert set(document) <= {"jsonapi", "errors", "meta", "links"}
    assert document["errors"], text
    for error in document["errors"]:
        assert error["status"] == str(case.status)
        assert UPPER_SNAKE.match(error["code"]), error
        assert isinstance(error["title"], str) and error["title"]
        assert isinstance(error["detail"], str) and error["detail"]
        assert uuid.UUID(error["id"])
    error = document["errors"][0]
    assert error["code"] == case.code, error
    source = error.get("source", {})
    assert source.get("pointer") == case.pointer, error
    assert source.get("parameter") == case.parameter, error
    if case.header is not None:
        assert source.get("header") == case.header, error
    if case.detail is not None:
        assert case.detail in error["detail"], error
    if case.status == 405:
        allowed = {method.strip() for method in response.headers["Allow"].split(",")}
        assert (case.method or method) not in allowed and allowed, response.headers
    assert snapshot(app) == before, "the failed request changed the database"


# -- what the refusals above must not refuse ------------------------------------------------

def _post_session(client, text):
    return client.post("/api/sessions", data=text.encode())


def test_nesting_up_to_the_bound_is_taken(client):
    document = '{"data": {"type": "sessions"}, "meta": ' + "[" * 31 + "]" * 31 + "}"
    assert _post_session(client, document).status_code == 201


def test_brackets_inside_strings_are_not_nesting(client):
    document = json.dumps({"data": {"type": "sessions"},
                           "meta": {"note": "[{" * 5000, "escaped": '\\"[[[[' * 100}})
    assert _post_session(client, document).status_code == 201


def test_unicode_a_client_may_send_is_taken(client, app, world):
    name = "Zoë 🦄 \u200d \u210c \x7f"  # astral, joiner, letterlike, DEL: storable text
    response = client.patch(f"/api/users/{world.user_id}", headers=bearer(world.session_id),
                            json={"data": {"type": "users", "id": world.user_id,
                                           "attributes": {"first_name": name}}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["attributes"]["first_name"] == name


def test_a_session_stays_token_based_when_patched_so(client, world):
    document = {"data": {"type": "sessions", "id": world.session_id,
                         "attributes": {"is_cookie_based": False}}}
    response = client.patch(f"/api/sessions/{world.session_id}", json=document,
                            headers=bearer(world.session_id))
    assert response.status_code == 200, response.get_json()


def test_an_error_echoing_a_lone_surrogate_is_still_sent(app):
    from app.errors import NotFound
    from app.jsonapi.flask import error_response

    with app.test_request_context("/api/users/x"):
        response = error_response(NotFound("There is no user \ud800."))
    assert response.status_code == 404
    assert response.get_json()["errors"][0]["detail"] == "There is no user \ufffd."
