"""A third-party JSON:API client (jsonapi-requests, from PyPI) against the real service:
wsgi.py under gunicorn, over HTTP, on this run's test database.

The session is created and logged in with plain requests (the library has no notion of
Poparazzi's phone-number login); from then on the library does the talking, sending the
session id as a bearer token through its AUTH setting."""

import secrets

import pytest
import requests
from jsonapi_requests import Api, data
from jsonapi_requests.orm import ApiModel, AttributeField, OrmApi, RelationField
from jsonapi_requests.request_factory import ApiClientError

from tests.factories import last_code, random_phone
from tests.jsonapi_helpers import device_id
from tests.jsonapi_schema import JSONAPI

pytestmark = pytest.mark.slow



class Bearer(requests.auth.AuthBase):
    def __init__(self, session_id):
        self.session_id = session_id

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.session_id}"
        return request


def log_in(app, base_url):
    """A session logged in as a new phone number, with plain requests: (session, user)."""
    http = requests.Session()
    http.trust_env = False
    http.headers.update({"Accept": JSONAPI, "Content-Type": JSONAPI})
    response = http.post(f"{base_url}/api/sessions", timeout=10,
                         json={"data": {"type": "sessions",
                                        "attributes": {"is_cookie_based": False}}})
    assert response.status_code == 201, response.text
    session_id = response.json()["data"]["id"]
    http.headers["Authorization"] = f"Bearer {session_id}"
    phone = random_phone()
    for attributes in ({"phone_number": phone}, None):
        attributes = attributes or {"verification_code": last_code(app, phone)}
        response = http.patch(f"{base_url}/api/sessions/{session_id}", timeout=10, json={
            "data": {"type": "sessions", "id": session_id, "attributes": attributes}})
        assert response.status_code == 200, response.text
    http.close()
    return session_id, response.json()["data"]["relationships"]["user"]["data"]["id"]


class Client:
    """The library configured for one logged-in session, with ORM models of our types."""

    def __init__(self, base_url, session_id):
        self.api = Api.config({"API_ROOT": f"{base_url}/api", "AUTH": Bearer(session_id),
                               "APPEND_SLASH": False, "TIMEOUT": 10, "RETRIES": 1})
        orm = OrmApi(self.api)

        class User(ApiModel):
            class Meta:
                type = "users"
                api = orm

            time_zone = AttributeField("time_zone")
            username = AttributeField("username")
            devices = RelationField("devices")

        class Session(ApiModel):
            class Meta:
                type = "sessions"
                api = orm

            user = RelationField("user")

        class Token(ApiModel):
            class Meta:
                type = "apple_device_tokens"
                api = orm

            bundle_id = AttributeField("bundle_id")
            is_production = AttributeField("is_production")
            user = RelationField("user")
            session = RelationField("session")

        class Device(ApiModel):
            class Meta:
                type = "devices"
                api = orm

            channel = AttributeField("channel")
            user = RelationField("user")

        self.User, self.Session, self.Token, self.Device = User, Session, Token, Device

    def register(self, **attributes):
        token = secrets.token_hex(32)
        document = data.JsonApiObject(type="apple_device_tokens", id=token, attributes={
            "is_invalidated": False, "bundle_version": "3.1.23", "build_number": "839",
            "is_production": True, "bundle_id": "TTYL.Inc.Poparazzi", "is_voip": False,
            **attributes})
        response = self.api.endpoint(f"apple_device_tokens/{token}").patch(object=document)
        assert response.status_code == 200
        assert response.data.id == token
        return token


@pytest.fixture
def caller(app, live):
    session_id, user_id = log_in(app, live.url)
    client = Client(live.url, session_id)
    client.session_id, client.user_id = session_id, user_id
    return client


def test_a_collection_with_its_included_resources(caller):
    tokens = [caller.register() for _ in range(3)]
    listed = caller.Token.get_list(params={"include": "user,session"})
    assert [token.id for token in listed] == tokens
    for token in listed:
        # resolved from `included`: no stub left to fetch
        assert not token.user.is_stub and token.user.id == caller.user_id
        assert not token.session.is_stub and token.session.id == caller.session_id
        assert token.bundle_id == "TTYL.Inc.Poparazzi"


def test_following_relationships(app, caller):
    token = caller.register()
    device = device_id(app, token)  # the token's row, as the devices type shows it
    fetched = caller.Token.from_id(token)
    user = fetched.user  # GET the token, then the user it links to
    assert user.id == caller.user_id and user.time_zone is None
    # a to-many relationship, its linkage and members given with include
    response = caller.api.endpoint(f"users/{caller.user_id}").get(params={"include": "devices"})
    user = caller.User.from_response_content(response.content)
    assert [(item.id, item.is_stub, item.channel) for item in user.devices] == [
        (device, False, "ios_push")]
    # the related and relationship links it was given answer as well
    resource = caller.api.endpoint(f"apple_device_tokens/{token}").get().data
    related = caller.api.endpoint(resource.relationships["user"].links["related"]).get()
    assert (related.data.type, related.data.id) == ("users", caller.user_id)
    linkage = caller.api.endpoint(
        f"users/{caller.user_id}/relationships/devices").get().content.data
    assert [(item.type, item.id) for item in linkage] == [("devices", device)]
    devices = caller.api.endpoint(f"users/{caller.user_id}/devices").get(
        params={"include": "user"})
    assert [item.id for item in devices.data] == [device]
    assert [item.id for item in devices.content.included] == [caller.user_id]


def test_paging_through_a_collection(caller):
    tokens = [caller.register() for _ in range(5)]
    seen, pages = [], 0
    response = caller.api.endpoint("apple_device_tokens").get(
        params={"page[size]": 2, "page[total]": "true"})
    while True:
        pages += 1
        assert response.content.meta == {"total": 5}
        seen += [item.id for item in response.data]
        next_link = response.content.links.get("next")
        if not next_link:
            break
        response = caller.api.endpoint(next_link).get()
    assert pages == 3 and seen == tokens


def test_updating_a_resource(caller):
    user = caller.User(raw_object=data.JsonApiObject(
        type="users", id=caller.user_id, attributes={"time_zone": "Europe/Paris"}))
    user.save()  # PATCH /api/users/<id>
    assert user.time_zone == "Europe/Paris"
    assert user.attributes["updated_at"]
    fetched = caller.User.from_id(caller.user_id)
    assert fetched.time_zone == "Europe/Paris"
    response = caller.api.endpoint(f"users/{caller.user_id}").patch(
        object=data.JsonApiObject(type="users", id=caller.user_id,
                                  attributes={"username": "ada_lovelace"}))
    assert response.data.attributes["username"] == "ada_lovelace"
    assert response.data.attributes["time_zone"] == "Europe/Paris"


def test_deleting_a_resource(caller):
    kept, deleted = caller.register(), caller.register()
    (token,) = [token for token in caller.Token.get_list() if token.id == deleted]
    token.delete()  # DELETE /api/apple_device_tokens/<token>, with the library's body
    assert [token.id for token in caller.Token.get_list()] == [kept]
    with pytest.raises(ApiClientError) as failure:
        caller.api.endpoint(f"apple_device_tokens/{deleted}").get()
    assert failure.value.status_code == 404


def test_another_users_resources_through_the_library(app, caller, live):
    token = caller.register()
    other_session, _other_user = log_in(app, live.url)
    other = Client(live.url, other_session)
    with pytest.raises(ApiClientError) as failure:
        other.api.endpoint(f"apple_device_tokens/{token}").get()
    assert failure.value.status_code == 404
    with pytest.raises(ApiClientError) as failure:
        other.api.endpoint(f"users/{caller.user_id}/devices").get()
    assert failure.value.status_code == 403
    user = other.User.from_id(caller.user_id)
    assert user.time_zone is None  # profiles are readable by anyone signed in
