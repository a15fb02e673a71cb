"""The service's documents have the shape of Poparazzi's captured ones (tests/contract/poparazzi).

Every captured payload has a producer here that makes the service's corresponding document
through the Flask test client, driven as Poparazzi's client drives it:

- captured **requests** are sent byte for byte, as captured, and must be accepted. Their
  ids are real values (a session id, a user id, a device token, a phone number and code),
  so the test world is seeded to make those ids mean something: a session whose secret is
  the captured session id, the captured user, and a verification code generator that
  texts the captured code.
- captured **responses** are compared with the service's document by *shape*: the same
  member names, the same JSON types, the same nesting (``shape_difference`` below).

Where the service deliberately differs (WIRE.md §1), the comparison says so explicitly:
the members JSON:API adds (``jsonapi``, ``links``) are listed as allowed extras, and the
user's social-network counters are asserted absent rather than compared.
"""

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Credential, CredentialKind, SmsMessage, User
from app.resources import verification
from app.security.crypto import digest
from tests.factories import bearer, log_in
from tests.jsonapi_schema import assert_valid_jsonapi
from tests.shapes import assert_same_shape, shape_difference

CAPTURES = Path(__file__).parent / "contract" / "poparazzi"
NOT_PAYLOADS = {"client.headers.json"}  # headers, not a document (used by live_server.py)


def captured(name):
    return json.loads((CAPTURES / name).read_text())


def captured_bytes(name):
    return (CAPTURES / name).read_bytes()


CLIENT_HEADERS = captured("client.headers.json")["all_requests"]
SESSION_ID = captured("sessions.patch.phone_number.request.json")["data"]["id"]
PHONE_NUMBER = captured("sessions.patch.phone_number.request.json")["data"]["attributes"][
    "phone_number"]
CODE = captured("sessions.patch.verification_code.request.json")["data"]["attributes"][
    "verification_code"]
USER_ID = captured("users.patch.request.json")["data"]["id"]
TOKEN = captured("apple_device_tokens.patch.request.json")["data"]["id"]
CONFIG_VERSION = captured("configs.get.response.json")["data"]["id"]

# WIRE.md §1: the user attributes this service serves, and the captured ones it does not.
PROFILE_ATTRIBUTES = frozenset({
    "username", "first_name", "last_name", "profile_photo_url", "badges", "is_private",
    "is_banned", "time_zone", "created_at", "updated_at"})
SELF_ONLY_ATTRIBUTES = frozenset({"phone_number"})
SOCIAL_ATTRIBUTES = frozenset({
    "reactions_count", "posts_count", "posted_count", "views_count", "pop_score",
    "followers_count", "following_count", "is_ghost", "is_online", "content_notifications",
    "is_following", "is_followed_by", "is_blocking", "is_blocked_by",
    "create_content_permission"})

# Members JSON:API adds to what Poparazzi's server sent; the client ignores members it
# does not know, and none of these replaces or retypes a captured one.
JSONAPI_ADDITIONS = (
    "$.jsonapi",                             # {"version": "1.1"} on every document
    "$.links",                               # the document's self link
    "$.data.links",                          # the resource's self link
    "$.data[].links",
    "$.included[].links",
    "$.data.relationships.*.links",          # relationship self / related links
    "$.included[].relationships.*.links",
    "$.errors[].meta",                       # the request's id (meta.request_id)
)


# -- the shape comparator ---------------------------------------------------------------

@pytest.mark.parametrize(("expected", "actual", "difference"), [
    ({"a": {"b": 1}}, {"a": {"b": 2}}, None),
    ({"a": {"b": 1}}, {"a": {"b": "1"}}, "$.a.b: string where the capture has integer"),
    ({"a": {"b": 1}}, {"a": {"b": 1.5}}, "$.a.b: number where the capture has integer"),
    ({"a": {"b": True}}, {"a": {"b": 1}}, "$.a.b: integer where the capture has boolean"),
    ({"a": {"b": 1}}, {"a": {}}, "$.a.b: missing"),
    ({"a": {}}, {"a": {"c": 1}}, "$.a.c: not in the capture"),
    ({"a": None}, {"a": {"any": ["thing"]}}, None),
    ({"a": "x"}, {"a": None}, "$.a: null where the capture has string"),
    ({"a": [{"b": 1}]}, {"a": [{"b": 1}, {"b": "2"}]},
     "$.a[].b: string where the capture has integer"),
    ({"a": [{"b": 1}]}, {"a": []}, "$.a: empty, so its elements' shape cannot be compared"),
    ({"a": []}, {"a": [1, "x"]}, None),
    ({"a": [1]}, {"a": {}}, "$.a: object where the capture has array"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_shape_difference_reports_the_first_difference_by_path(expected, actual, difference):
    assert shape_difference(expected, actual) == difference


def test_allowed_extras_match_whole_member_names():
    patterns = ("$.data.relationships.*.links",)
    assert shape_difference({"data": {"relationships": {"u": {}}}},
                            {"data": {"relationships": {"u": {"links": {}}}}}, patterns) is None
    assert shape_difference({"data": {"relationships": {}}},
                            {"data": {"relationships": {"u": {}}}}, patterns) \
        == "$.data.relationships.u: not in the capture"


# -- the world the captured requests speak about ----------------------------------------

class Poparazzi:
    """Poparazzi's client, sending the captured documents with the captured headers."""

    def __init__(self, app, client):
        self.app, self.client = app, client

    def headers(self, authorized=True, **extra):
        headers = {**CLIENT_HEADERS, **extra}
        if authorized:
            headers.update(bearer(SESSION_ID))
        return headers

    def send(self, method, url, capture, expected_status, authorized=True, **headers):
        response = self.client.open(url, method=method, data=captured_bytes(capture),
                                    headers=self.headers(authorized, **headers))
        assert response.status_code == expected_status, response.get_json()
        return response

    def seed(self):
        """The session the captured ids name (its secret *is* the captured session id), and
        the captured user, who owns the captured phone number."""
        with self.app.app_context():
            db.session.add(User(id=_uuid(USER_ID), phone_number=PHONE_NUMBER, badges=[]))
            db.session.add(Credential(kind=CredentialKind.SESSION,
                                      secret_digest=digest(SESSION_ID)))
            db.session.commit()
            db.session.remove()

    def request_code(self):
        return self.send("PATCH", f"/api/sessions/{SESSION_ID}",
                         "sessions.patch.phone_number.request.json", 200,
                         **{"Device-Check": "ab" * 128})

    def verify(self):
        return self.send("PATCH", f"/api/sessions/{SESSION_ID}",
                         "sessions.patch.verification_code.request.json", 200,
                         **{"Device-Check": "ab" * 128})

    def log_in(self):
        self.seed()
        self.request_code()
        return self.verify()

    def register_token(self, authorized=True):
        return self.send("PATCH", f"/api/apple_device_tokens/{TOKEN}",
                         "apple_device_tokens.patch.request.json",
                         200 if authorized else 401, authorized, Connection="close")

    def set_profile(self, user_id, session_id, **attributes):
        response = self.client.patch(
            f"/api/users/{user_id}",
            json={"data": {"type": "users", "id": user_id, "attributes": attributes}},
            headers=bearer(session_id))
        assert response.status_code == 200, response.get_json()

    def set_badges(self, user_id, badges):
        """Badges are the service's to award, never the client's: set in the database."""
        with self.app.app_context():
            db.session.execute(update(User).where(User.id == _uuid(user_id))
                               .values(badges=badges))
            db.session.commit()
            db.session.remove()


def _uuid(text):
    return uuid.UUID(text)


@pytest.fixture
def poparazzi(app, client, monkeypatch):
    """The captured verification code is the one the service texts."""
    monkeypatch.setattr(verification, "new_verification_code", lambda: CODE)
    return Poparazzi(app, client)


# -- producers: one per captured payload ------------------------------------------------

def sessions_post_request(p):
    response = p.send("POST", "/api/sessions", "sessions.post.request.json", 201,
                      authorized=False)
    assert response.get_json()["data"]["type"] == "sessions"
    assert response.headers["Location"].endswith(response.get_json()["data"]["id"])


def sessions_post_response(p):
    return p.send("POST", "/api/sessions", "sessions.post.request.json", 201,
                  authorized=False).get_json()


def sessions_patch_phone_number_request(p):
    p.seed()
    p.request_code()
    with p.app.app_context():
        texts = db.session.scalars(select(SmsMessage.body)
                                   .where(SmsMessage.to == PHONE_NUMBER)).all()
        db.session.remove()
    assert len(texts) == 1 and f"code is: {CODE}." in texts[0]


def sessions_patch_verification_code_request(p):
    p.seed()
    p.request_code()
    data = p.verify().get_json()["data"]
    assert data["relationships"]["user"]["data"] == {"type": "users", "id": USER_ID}


def sessions_get_response(p):
    p.log_in()
    attributes = captured("sessions.get.response.json")["included"][0]["attributes"]
    p.set_profile(USER_ID, SESSION_ID, **{name: attributes[name] for name in
                                          ("first_name", "last_name", "username")})
    response = p.client.get(f"/api/sessions/{SESSION_ID}", headers=p.headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def apple_device_tokens_patch_request(p):
    p.log_in()
    data = p.register_token().get_json()["data"]
    assert data["id"] == TOKEN
    assert data["relationships"]["user"]["data"] == {"type": "users", "id": USER_ID}


def apple_device_tokens_patch_response(p):
    p.log_in()
    return p.register_token().get_json()


def users_patch_request(p):
    p.log_in()
    response = p.send("PATCH", f"/api/users/{USER_ID}", "users.patch.request.json", 200)
    wanted = captured("users.patch.request.json")["data"]["attributes"]
    assert response.get_json()["data"]["attributes"]["time_zone"] == wanted["time_zone"]


def users_get_response(p):
    """Another user's profile, seen by the captured user (the capture shows one followed)."""
    p.log_in()
    other_session, other_id = log_in(p.client, p.app)
    attributes = captured("users.get.response.json")["data"]["attributes"]
    p.set_profile(other_id, other_session, **{
        name: attributes[name]
        for name in ("first_name", "last_name", "username", "profile_photo_url")})
    p.set_badges(other_id, attributes["badges"])
    response = p.client.get(f"/api/users/{other_id}", headers=p.headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def users_filter_response(p):
    p.log_in()
    response = p.client.get("/api/users?filter[username]=nobody-has-this",
                            headers=p.headers())
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def configs_get_response(p):
    response = p.client.get(f"/api/configs/{CONFIG_VERSION}", headers=p.headers(False))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def errors_not_authorized_response(p):
    """Poparazzi's logout: the token PATCH without Authorization."""
    p.log_in()
    p.register_token()
    return p.register_token(authorized=False).get_json()


PRODUCERS = {
    "sessions.post.request.json": sessions_post_request,
    "sessions.post.response.json": sessions_post_response,
    "sessions.patch.phone_number.request.json": sessions_patch_phone_number_request,
    "sessions.patch.verification_code.request.json": sessions_patch_verification_code_request,
    "sessions.get.response.json": sessions_get_response,
    "apple_device_tokens.patch.request.json": apple_device_tokens_patch_request,
    "apple_device_tokens.patch.response.json": apple_device_tokens_patch_response,
    "users.patch.request.json": users_patch_request,
    "users.get.response.json": users_get_response,
    "users.filter.response.json": users_filter_response,
    "configs.get.response.json": configs_get_response,
    "errors.not_authorized.response.json": errors_not_authorized_response,
}

# Per capture, the members beside JSON:API's additions that the service adds, and why.
EXTRA_MEMBERS = {
    # Sessions come with their user included by default; before login there is none.
    "sessions.post.response.json": ("$.included",),
    # time_zone is a profile attribute (WIRE.md §1); phone_number is shown to its owner,
    # who is the one asking here; `devices` is the user's to-many (links only).
    "sessions.get.response.json": ("$.included[].attributes.time_zone",
                                   "$.included[].attributes.phone_number",
                                   "$.included[].relationships"),
    "users.get.response.json": ("$.data.attributes.time_zone", "$.data.relationships"),
    # Keyset pagination links: self, first, prev, next.
    "users.filter.response.json": ("$.links.*",),
}


def _captures():
    return sorted(path.name for path in CAPTURES.glob("*.json")
                  if path.name not in NOT_PAYLOADS)


def test_every_capture_has_a_producer():
    assert set(_captures()) == set(PRODUCERS)


@pytest.mark.parametrize("name", _captures())
def test_capture_is_a_valid_jsonapi_document(name):
    """The captures themselves are sound JSON:API, so comparing with them is meaningful."""
    schema = "jsonapi-1.0-schema.json"
    if name.endswith(".request.json"):
        schema = ("jsonapi-1.0-schema_create_resource.json" if ".post." in name
                  else "jsonapi-1.0-schema_update_resource.json")
    assert_valid_jsonapi(captured(name), schema)


@pytest.mark.parametrize("name", _captures())
def test_service_matches_capture(poparazzi, name):
    document = PRODUCERS[name](poparazzi)
    if name.endswith(".request.json"):
        assert document is None  # the producer showed the request is accepted as-is
        return
    expected = captured(name)
    allowed = (*JSONAPI_ADDITIONS, *EXTRA_MEMBERS.get(name, ()))
    if name == "users.get.response.json":
        expected = _without_social_attributes(expected)
    assert_same_shape(expected, document, allowed)
    CHECKS.get(name, lambda *_: None)(expected, document)


def _without_social_attributes(document):
    attributes = document["data"]["attributes"]
    assert set(attributes) == (PROFILE_ATTRIBUTES - {"time_zone"}) | SOCIAL_ATTRIBUTES, \
        "the capture's user attributes are not the ones WIRE.md §1 sorts"
    served = {name: value for name, value in attributes.items() if name in PROFILE_ATTRIBUTES}
    return {**document, "data": {**document["data"], "attributes": served}}


# -- what a shape comparison cannot see -------------------------------------------------

def _check_user_profile(_expected, document):
    attributes = document["data"]["attributes"]
    assert not SOCIAL_ATTRIBUTES & set(attributes), "social counters are not served"
    assert set(attributes) >= PROFILE_ATTRIBUTES
    assert "phone_number" not in attributes, "another user's phone number is not shown"


def _check_session_user(_expected, document):
    (user,) = document["included"]
    assert user["id"] == document["data"]["relationships"]["user"]["data"]["id"] == USER_ID
    assert set(user["attributes"]) >= PROFILE_ATTRIBUTES | SELF_ONLY_ATTRIBUTES
    assert user["attributes"]["phone_number"] == PHONE_NUMBER  # the user themself asks
    assert not SOCIAL_ATTRIBUTES & set(user["attributes"])


def _check_token(expected, document):
    """WIRE.md says the capture puts ``relationships`` beside ``data`` with full objects as
    linkage. The captured file does not: its relationships are inside ``data`` and its
    linkage are resource identifiers — as JSON:API has it and as the service serves."""
    assert "relationships" not in expected and "relationships" in expected["data"]
    assert "included" not in document
    for name in ("session", "user"):
        assert set(expected["data"]["relationships"][name]["data"]) == {"type", "id"}
        assert set(document["data"]["relationships"][name]["data"]) == {"type", "id"}
    assert document["data"]["relationships"]["session"]["data"] == {
        "type": "sessions", "id": SESSION_ID}
    assert document["data"]["relationships"]["user"]["data"] == {"type": "users", "id": USER_ID}
    assert document["data"]["attributes"]["created_at"].endswith("Z")


def _check_error(expected, document):
    (error,) = document["errors"]
    (captured_error,) = expected["errors"]
    for name in ("status", "code", "title", "detail"):
        assert error[name] == captured_error[name], name
    assert _uuid(error["id"])


def _check_config(expected, document):
    assert set(document["data"]["attributes"]) == set(expected["data"]["attributes"])
    assert document["data"]["id"] == CONFIG_VERSION


def _check_session_created(_expected, document):
    assert _uuid(document["data"]["id"]).version == 4
    assert document["data"]["relationships"]["user"]["data"] is None
    assert document["included"] == []


CHECKS = {
    "users.get.response.json": _check_user_profile,
    "sessions.get.response.json": _check_session_user,
    "apple_device_tokens.patch.response.json": _check_token,
    "errors.not_authorized.response.json": _check_error,
    "configs.get.response.json": _check_config,
    "sessions.post.response.json": _check_session_created,
}


def test_phone_number_is_shown_only_to_the_user_themself(poparazzi):
    poparazzi.log_in()
    other_session, other_id = log_in(poparazzi.client, poparazzi.app)
    own = poparazzi.client.get(f"/api/users/{USER_ID}", headers=poparazzi.headers())
    assert own.get_json()["data"]["attributes"]["phone_number"] == PHONE_NUMBER
    others = poparazzi.client.get(f"/api/users/{other_id}", headers=poparazzi.headers())
    assert "phone_number" not in others.get_json()["data"]["attributes"]
    seen_by_other = poparazzi.client.get(f"/api/users/{USER_ID}",
                                         headers=bearer(other_session))
    assert "phone_number" not in seen_by_other.get_json()["data"]["attributes"]
