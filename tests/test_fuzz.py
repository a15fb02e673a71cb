"""Property-based fuzzing of every JSON:API endpoint.

Generated requests go to every route: documents of JSON:API shape with random members,
types, ids and values of every JSON type (any Unicode, NUL, lone surrogates, huge numbers,
deep nesting), random query parameters (include, fields, sort, page, filter) and URL ids.
Whatever arrives, the service answers with no 5xx, every body it sends is a valid JSON:API
document (the ``client`` checks each), and a request it refuses (4xx) changes nothing.

The examples are derandomized and budgeted, so CI runs the same ones every time. Each test
runs inside one rolled-back transaction, so what accepted examples create stays for the
next: the tables are compared around each example, not around the test.
"""

import base64
import json
import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.api import types  # noqa: F401  (the types fill the registry)
from app.jsonapi.attributes import read_only_names
from app.jsonapi.registry import registry
from tests.factories import bearer, log_in, register_token
from tests.jsonapi_helpers import device_id, snapshot
from tests.jsonapi_schema import JSONAPI

EXAMPLES = 1000
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
# Refusals that change something on purpose, by error code: only these tables may change.
ATTEMPT_COUNTING = {"VERIFICATION_CODE_INVALID": {"verification_codes", "rate_limit_counters"},
                    "RATE_LIMITED": {"rate_limit_counters"}}
TOKEN_URL = "/api/apple_device_tokens/{token}"


# -- the service's own vocabulary, from the type registry --------------------------------

TYPES = sorted(registry)
ATTRIBUTES = sorted({name for resource_type in registry.values()
                     for name in resource_type.attribute_names})
RELATIONSHIPS = sorted({name for resource_type in registry.values()
                        for name in resource_type.relationships})
ID_SLOT = {"sessions": "session", "users": "user", "apple_device_tokens": "token",
           "devices": "device", "configs": "version"}
SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    type_name: str  # the type its document names
    linkage: bool = False  # it takes resource identifiers, not a resource


def _routes():
    yield Route("POST", "/api/sessions", "sessions")
    yield Route("POST", "/api/apple_device_tokens", "apple_device_tokens")
    yield Route("POST", "/api/devices", "devices")
    for type_name, slot in ID_SLOT.items():
        if registry[type_name].collection.collection:
            yield Route("GET", f"/api/{type_name}", type_name)
        for method in ("GET", "PATCH", "DELETE"):
            yield Route(method, f"/api/{type_name}/{{{slot}}}", type_name)
        for name, relationship in registry[type_name].relationships.items():
            yield Route("GET", f"/api/{type_name}/{{{slot}}}/{name}", relationship.type)
            for method in ("GET", "POST", "PATCH", "DELETE"):
                yield Route(method, f"/api/{type_name}/{{{slot}}}/relationships/{name}",
                            relationship.type, linkage=True)
    yield Route("GET", "/api/{any}/{any}/relationships/{any}", "users", linkage=True)


ROUTES = sorted(set(_routes()), key=repr)


# -- values ------------------------------------------------------------------------------

class Ref:
    """The world's real id for ``slot``, filled in when the request is sent: 'url' is
    the id the URL names (no member at all when it names none), 'absent' no member."""

    def __init__(self, slot):
        self.slot = slot

    def __repr__(self):
        return f"Ref({self.slot!r})"


NASTY = ["\x00", "\ud800", "\udfff", "\ud83d", "\u202e", "\u2066", "\x1b", "\x85", "\x7f",
         "\ufeff", "\u200d", "~", "/", "%", "%00", "[", "]", ".", ",", "-", " ", '"', "\\",
         "🦄", "é", "\U0010ffff"]
GOOD_STRINGS = ["+12122001234", "+44", "123456", "000000", "Europe/Paris", "UTC", "3.1.23",
                "839", "TTYL.Inc.Poparazzi", "https://example.com/p.jpg", "ann", "Ann",
                "2022-01-17T03:50:04.463Z", "true", "false", "null", "0", "a" * 300,
                "ab" * 32, "00000000-0000-0000-0000-000000000000"]

any_character = st.characters(exclude_categories=())  # lone surrogates included
texts = st.one_of(
    st.text(any_character, max_size=12),
    st.builds(lambda left, nasty, right: left + nasty + right,
              st.text(max_size=4), st.sampled_from(NASTY), st.text(max_size=4)),
    st.sampled_from(NASTY + GOOD_STRINGS),
)
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),  # NaN and ±Infinity are sent as such: not JSON
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, 10**308, 1e308, -0.0, 5e-324]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
member_names = st.one_of(st.sampled_from(ATTRIBUTES + RELATIONSHIPS + TYPES), texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(member_names, children, max_size=3)),
    max_leaves=8,
)


def mostly(usual, unusual, odds=10):
    """``usual``, but one time in ``odds`` ``unusual``: requests valid enough to get past
    the first check, with something wrong often enough to reach every refusal."""
    return st.sampled_from([usual] * (odds - 1) + [unusual]).flatmap(lambda chosen: chosen)


# Values each attribute takes (others get GOOD_STRINGS): a document of these is accepted.
VALID = {
    "is_cookie_based": [False], "phone_number": ["+12122001234", "+12122001235"],
    "verification_code": ["123456"], "time_zone": ["Europe/Paris", None],
    "first_name": ["Ann", "Zoë 🦄", None], "last_name": ["Lee"], "username": ["ann_1", None],
    "is_private": [True, False], "profile_photo_url": ["https://example.com/p.jpg", None],
    "bundle_version": ["3.1.23"], "build_number": ["839"], "bundle_id": ["TTYL.Inc.Poparazzi"],
    "is_production": [True, False], "is_voip": [False], "is_invalidated": [False],
}
ids = st.one_of(st.sampled_from([Ref("url"), Ref("session"), Ref("user"), Ref("token")]),
                texts, numbers, st.none())
identifiers = st.fixed_dictionaries(
    {}, optional={"type": st.one_of(st.sampled_from(TYPES), texts), "id": ids,
                  "meta": json_values})
linkage = st.one_of(st.none(), identifiers, st.lists(identifiers, max_size=3), json_values)
relationship_objects = st.one_of(
    st.fixed_dictionaries({}, optional={"data": linkage, "meta": json_values,
                                        "links": json_values}),
    json_values)


@st.composite
def attribute_members(draw, type_name):
    schema = registry[type_name].schema
    read_only = read_only_names(schema)
    writable = sorted(registry[type_name].attribute_names - read_only)
    unusual = st.one_of(st.sampled_from(sorted(read_only)), member_names) if read_only \
        else member_names
    names = draw(st.lists(mostly(st.sampled_from(writable), unusual) if writable else unusual,
                          max_size=4, unique=True))
    return {name: draw(mostly(st.sampled_from(VALID.get(name, GOOD_STRINGS)), json_values))
            for name in names}


tokens = st.binary(min_size=32, max_size=32).map(bytes.hex)


def usual_id(route):
    if route.template == "/api/sessions":
        return st.just(Ref("absent"))  # the server draws session ids
    if route.template == "/api/apple_device_tokens":
        return st.one_of(st.just(Ref("token")), tokens)
    return st.just(Ref("url"))


def resource_objects(route):
    type_name = route.type_name
    usual = st.fixed_dictionaries({
        "type": mostly(st.just(type_name), st.one_of(st.sampled_from(TYPES), texts)),
        "id": mostly(usual_id(route), ids),
        "attributes": mostly(attribute_members(type_name), json_values),
    })
    extras = st.fixed_dictionaries({}, optional={
        "relationships": st.dictionaries(member_names, relationship_objects, max_size=2),
        "links": json_values, "meta": json_values, "lid": texts,
    })
    return st.builds(lambda resource, more: {**resource, **more},
                     usual, mostly(st.just({}), extras))


def linkage_id(type_name):
    """An id of a real resource of ``type_name``; topics are names, not looked up."""
    if type_name == "topics":
        return st.sampled_from(["news", "team.42", "a~b%c-d_e", "x" * 256])
    return st.just(Ref(ID_SLOT[type_name]))


def linkage_of(route):
    usual = st.fixed_dictionaries({"type": st.just(route.type_name),
                                   "id": linkage_id(route.type_name)})
    return st.lists(mostly(usual, identifiers), max_size=2)


def documents(route):
    shape = linkage_of(route) if route.linkage else resource_objects(route)
    return st.fixed_dictionaries(
        {"data": mostly(shape, json_values)},
        optional={"meta": json_values, "jsonapi": json_values, "included": json_values,
                  "errors": json_values})


@dataclass(frozen=True)
class Body:
    value: object  # a document (with Refs), or raw bytes
    ensure_ascii: bool = True


def _nested(depth, opening):
    closing = "]" if opening == "[" else '"k": 1}'
    inner = (opening if opening == "[" else '{"k": ') * depth
    return f'{{"data": {inner}{closing * depth}}}'.encode()


def bodies(route):
    return mostly(st.builds(Body, documents(route), st.booleans()), st.one_of(
        st.builds(Body, json_values, st.booleans()),
        st.builds(Body, st.builds(_nested, st.integers(0, 1200), st.sampled_from("[{"))),
        st.builds(Body, st.binary(max_size=40)),
        st.none()))


BODIES = {route: bodies(route) for route in ROUTES}


def _cursor(value):
    raw = json.dumps(value).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# Parameters with values they take somewhere (the value may not suit every endpoint).
PARAMETERS = {
    "include": ["user", "devices", "session", "user,session", "session.user",
                "devices.user.devices"],
    "sort": ["created_at", "-updated_at", "created_at,-updated_at", "--created_at", "id"],
    "page[size]": ["1", "2", "100", "101", "0", "-1", ""],
    "page[total]": ["true", "false", "yes"],
    "filter[username]": ["ann_1", "ANN_1", ""],
    "filter[bundle_id]": ["TTYL.Inc.Poparazzi"],
    "filter[is_production]": ["true", "false", "1"],
    "filter[is_voip]": ["false"],
    "filter[is_invalidated]": ["false"],
    "fields[users]": ["first_name,username", "phone_number", "devices", ""],
    "fields[sessions]": ["user", "created_at"],
    "fields[apple_device_tokens]": ["is_production,user", "nope"],
    "fields[configs]": ["app_share_url"],
}
ODD_PARAMETERS = ["page[number]", "filter", "fields", "camelCase", "x-extension", "sort[x]",
                  "include[]", "page[size][x]", "fields[users]extra"]
parameter_names = st.one_of(
    st.sampled_from([*sorted(PARAMETERS), "page[after]", "page[before]"]),
    st.sampled_from(ODD_PARAMETERS), texts,
    st.builds(lambda family, member: f"{family}[{member}]",
              st.sampled_from(["filter", "fields", "page", "include"]), texts))
cursors = st.builds(_cursor, st.lists(
    st.one_of(st.sampled_from(["2024-01-01T00:00:00+00:00", "9999-12-31T23:59:59-01:00",
                               "00000000-0000-0000-0000-000000000000"]), json_values),
    max_size=3))
parameter_values = st.one_of(
    st.sampled_from(sorted({value for values in PARAMETERS.values() for value in values})),
    texts, cursors)
parameters = mostly(
    st.sampled_from([(name, value) for name, values in PARAMETERS.items()
                     for value in values]),
    st.tuples(parameter_names, parameter_values))
queries = mostly(st.just(()), st.lists(parameters, min_size=1, max_size=3).map(tuple))
url_values = mostly(st.just(Ref("real")), st.one_of(
    texts, st.sampled_from(["", "0", "ab" * 32]), st.binary(min_size=32, max_size=32).map(
        bytes.hex)))
authorizations = mostly(st.just("world"), st.one_of(
    st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=20)))
OTHER_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Request:
    method: str
    template: str
    slots: tuple
    query: tuple
    body: Body | None
    authorization: str | None


@st.composite
def requests(draw):
    route = draw(st.sampled_from(ROUTES))
    method = route.method if draw(st.integers(0, 9)) else draw(st.sampled_from(OTHER_METHODS))
    slots = tuple(draw(url_values) for _ in SLOT.findall(route.template))
    body = draw(BODIES[route]) \
        if method not in ("GET", "HEAD") or draw(st.integers(0, 19)) == 0 else None
    return Request(method, route.template, slots, draw(queries), body, draw(authorizations))


# -- sending -----------------------------------------------------------------------------

class World:
    """A logged-in session with its user and a token; built again when a request ended
    it (a logout, a deleted token)."""

    def __init__(self, client, app):
        self.client, self.app = client, app
        self.build()

    def build(self):
        self.session, self.user = log_in(self.client, self.app)
        self.token = register_token(self.client, self.session)
        self.device = str(device_id(self.app, self.token))

    def real(self, slot):
        return {"session": self.session, "user": self.user, "token": self.token,
                "device": self.device, "version": "3.1.23"}.get(slot, "x")


def _quoted(text):
    from urllib.parse import quote

    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def url_of(request, world):
    names = iter(SLOT.findall(request.template))
    values = [world.real(next(names)) if isinstance(value, Ref) else value
              for value in request.slots]
    path = request.template
    for value in values:
        path = SLOT.sub(_quoted(value).replace("\\", "\\\\"), path, count=1)
    query = "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in request.query)
    return path + (f"?{query}" if query else ""), (values[0] if values else None)


ABSENT = object()


def resolve(value, world, url_id):
    if isinstance(value, Ref):
        if value.slot == "url":
            return ABSENT if url_id is None else url_id
        return ABSENT if value.slot == "absent" else world.real(value.slot)
    if isinstance(value, dict):
        members = {name: resolve(member, world, url_id) for name, member in value.items()}
        return {name: member for name, member in members.items() if member is not ABSENT}
    if isinstance(value, list):
        return [item for item in (resolve(item, world, url_id) for item in value)
                if item is not ABSENT]
    return value


def encoded(body, world, url_id):
    if body is None:
        return None
    if isinstance(body.value, bytes):
        return body.value
    value = resolve(body.value, world, url_id)
    return json.dumps(value, ensure_ascii=body.ensure_ascii).encode("utf-8", "surrogatepass")


def send(client, world, request):
    url, url_id = url_of(request, world)
    authorization = bearer(world.session)["Authorization"] \
        if request.authorization == "world" else request.authorization
    return client.open(url, method=request.method, headers={"Authorization": authorization},
                       data=encoded(request.body, world, url_id))


# -- the property ------------------------------------------------------------------------

@pytest.fixture
def world(client, app, monkeypatch):
    # the world is logged in again after a logout: more texts than one client may ask for
    monkeypatch.setitem(app.config, "SMS_RATE_LIMIT_PER_ADDRESS", "100000/hour")
    return World(client, app)


def answers_cleanly(client, app, world, request):
    before = snapshot(app)
    response = send(client, world, request)
    status, text = response.status_code, response.get_data(as_text=True)
    event(f"{request.method} {status}")  # see --hypothesis-show-statistics
    assert status < 500, text
    if response.get_data():
        assert response.mimetype == JSONAPI, text  # and the client checked the document
    if 400 <= status < 500:
        codes = {error["code"] for error in response.get_json()["errors"]} \
            if response.get_data() else set()  # HEAD
        after = snapshot(app)
        changed = {name for name in before if before[name] != after[name]}
        assert not changed - tables_a_refusal_may_change(request, codes), \
            f"a refused request ({status}: {text}) changed {changed}"
    if (request.method == "DELETE" and status < 300) or _is_token_logout(request, status):
        world.build()  # the world's session or token may have ended


def tables_a_refusal_may_change(request, codes):
    tables = set().union(*(ATTEMPT_COUNTING.get(code, set()) for code in codes))
    if _is_token_logout(request, 401):
        tables |= {"devices", "credentials", "verification_codes", "rate_limit_counters"}
    return tables


def _is_token_logout(request, status):
    """Poparazzi logs out with a token PATCH without a session: 401, the token is detached
    from its session and user, the session ends (its codes with it), and the anonymous
    write is counted against the client's address (see docs/operators/rate-limits.md)."""
    return request.method == "PATCH" and request.template == TOKEN_URL and status == 401


@FUZZ
@given(request=requests())
def test_any_request_is_answered_cleanly(client, app, world, request):
    answers_cleanly(client, app, world, request)


COLLECTION_URLS = ["/api/users", "/api/apple_device_tokens", "/api/users/{user}/devices"]
collection_reads = st.builds(
    lambda template, query: Request("GET", template, (Ref("real"),) * ("{" in template),
                                    query, None, "world"),
    st.sampled_from(COLLECTION_URLS),
    st.lists(parameters, min_size=1, max_size=4).map(tuple))


@settings(FUZZ, max_examples=EXAMPLES // 4)
@given(request=collection_reads)
def test_any_query_on_a_collection_is_answered_cleanly(client, app, world, request):
    answers_cleanly(client, app, world, request)
