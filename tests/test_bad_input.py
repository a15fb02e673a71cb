"""Bad input against the writes Poparazzi's client makes: one table, one test.

Every row is a request that must fail. Each must fail the same way: the stated status and
``code`` (and ``source`` member where the error has one) in a JSON:API error document,
never an HTML page, a stack trace or SQL, and with every table exactly as it was.
"""

import json
import re
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from app.extensions import db
from tests.factories import bearer, log_in, new_token, register_token, token_document
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


# -- the four endpoints and a valid body for each --------------------------------------

ENDPOINTS = {
    "token": ("PATCH", lambda w: f"/api/apple_device_tokens/{w.token}"),
    "session_post": ("POST", lambda w: "/api/sessions"),
    "session_patch": ("PATCH", lambda w: f"/api/sessions/{w.session_id}"),
    "user_patch": ("PATCH", lambda w: f"/api/users/{w.user_id}"),
}


def valid_document(endpoint, w):
    if endpoint == "token":
        return token_document(w.token)
    if endpoint == "session_post":
        return {"data": {"type": "sessions", "attributes": {"is_cookie_based": False}}}
    if endpoint == "session_patch":
        return {"data": {"type": "sessions", "id": w.session_id,
                         "attributes": {"phone_number": "+15550009999"}}}
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


def padded(document, _w):
    document["meta"] = {"padding": "x" * MAX_CONTENT_LENGTH}
    return document


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
]

QUERY = [
    ("unknown-query-parameter", "foo=bar", 400, "INVALID_QUERY_PARAMETER", "foo"),
    ("unknown-include", "include=nope", 400, "INVALID_QUERY_PARAMETER", "include"),
    ("sort-on-single-resource", "sort=created_at", 400, "INVALID_QUERY_PARAMETER", "sort"),
    ("page-on-single-resource", "page[size]=5", 400, "INVALID_QUERY_PARAMETER", "page[size]"),
    ("unknown-fields-type", "fields[nope]=x", 400, "INVALID_QUERY_PARAMETER", "fields[nope]"),
]


def _wrong_type(endpoint):
    return lambda d, _w: {"data": {**d["data"], "type": OTHER_TYPE[endpoint]}}


def _generic_cases():
    for endpoint in ENDPOINTS:
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

CASES = [*_generic_cases(), *SPECIFIC]


# -- the world every row runs against ---------------------------------------------------

@pytest.fixture
def world(client, app):
    session_id, user_id = log_in(client, app)
    return World(session_id, user_id, register_token(client, session_id))


def snapshot(app):
    """Every row of every table, as comparable text."""
    with app.app_context():
        tables = {table.name: sorted(repr(tuple(row))
                                     for row in db.session.execute(select(table)).all())
                  for table in db.metadata.sorted_tables}
        db.session.remove()
    return tables


def _encode(body):
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
