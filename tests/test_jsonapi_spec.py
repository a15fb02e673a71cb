"""JSON:API 1.1 (shared/jsonapi/spec-1.1.md), the rules a server must follow, one test each.

Every test's docstring quotes the rule it checks, with the spec section in brackets. Every
response also passes the official JSON:API schema (``JsonApiClient`` in conftest). What the
service answers differently, and why, is listed in docs/api/jsonapi.md; ``UNSUPPORTED_RULES``
below names the tests that show each entry.
"""

import json
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.jsonapi import render
from app.jsonapi.registry import registry
from tests.factories import (
    bearer,
    create_session,
    new_token,
    register_token,
    session_patch,
    token_document,
)
from tests.jsonapi_helpers import (
    JSONAPI,
    MEMBER_NAME,
    Caller,
    assert_compound_document,
    body,
    device_id,
    error_of,
    key,
    member_names,
)

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api" / "jsonapi.md"
DOCS_SECTION = "## JSON:API 1.1 rules not supported, and why"

# Each rule the docs list as answered differently → the tests that show what the
# service does instead.
UNSUPPORTED_RULES = {
    "PATCH of a missing resource": ("test_the_token_upsert_deviation_is_what_the_service_does",),
    "Client-generated ids": ("test_a_client_generated_id_is_403",
                             "test_a_token_is_created_with_post_and_its_id"),
    "Extensions": ("test_content_type_with_unsupported_extension_is_415",
                   "test_unrecognised_profiles_are_ignored"),
    "Updating relationships": ("test_relationships_in_an_update_are_refused_and_nothing_changes",
                               "test_linkage_sent_back_unchanged_passes",
                               "test_writes_to_read_only_relationships_are_403"),
    "Read-only attributes": ("test_read_only_attributes_sent_back_unchanged_pass",),
    "`include` on relationship URLs": (
        "test_include_on_an_endpoint_that_does_not_support_it_is_400",),
    "Pagination": ("test_pagination_links_use_the_reserved_keys",),
    "To-many linkage": ("test_to_many_linkage_is_one_page_with_a_count",),
    "Sorting": ("test_unsupported_sorting_is_400",),
    "Creating other types": ("test_posting_to_a_type_that_is_not_created_so_is_405",),
    "A URL id that cannot be a device token": ("test_a_malformed_token_in_the_url_is_400",),
    "Hidden linkage": ("test_hidden_linkage_has_links_but_no_data",),
}


# -- Content Negotiation --------------------------------------------------------------


def test_responses_carry_the_jsonapi_media_type_without_parameters(client, app):
    """"Clients and servers MUST send all JSON:API payloads using the JSON:API media type
    in the Content-Type header." [Content Negotiation, Universal Responsibilities]"""
    caller = Caller(client, app)
    for response in (client.get("/api/configs/3.1.23"),
                     client.get(f"/api/users/{caller.user_id}", headers=caller.headers),
                     client.get("/api/nothing-here"),
                     client.post("/api/sessions", data="{", headers={})):
        assert response.headers["Content-Type"] == JSONAPI


def test_a_204_has_no_media_type(client, app):
    """A 204 carries no payload, so no JSON:API media type either. [Deleting, 204]"""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    response = client.delete(f"/api/apple_device_tokens/{token}", headers=caller.headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers


@pytest.mark.parametrize("content_type", [
    f"{JSONAPI}; charset=utf-8",
    f'{JSONAPI}; version="1.1"',
    f'{JSONAPI}; profile="https://example.com/p"; charset=utf-8',
])
def test_content_type_with_other_parameters_is_415(client, content_type):
    """"servers MUST respond with a 415 Unsupported Media Type status code if that media
    type contains any media type parameters other than ext or profile."
    [Content Negotiation, Server Responsibilities]"""
    response = client.post("/api/sessions", headers={"Content-Type": content_type},
                           data=json.dumps({"data": {"type": "sessions"}}))
    assert error_of(response, 415)["source"] == {"header": "Content-Type"}


def test_content_type_with_unsupported_extension_is_415(client):
    """"If a request specifies the Content-Type header with an instance of the JSON:API
    media type modified by the ext media type parameter and that parameter contains an
    unsupported extension URI, the server MUST respond with a 415"
    [Content Negotiation, Server Responsibilities]"""
    response = client.post(
        "/api/sessions", data=json.dumps({"data": {"type": "sessions"}}),
        headers={"Content-Type": f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"'})
    error_of(response, 415)


def test_content_type_parameters_are_checked_on_a_delete_with_a_body_too(client, app):
    """The 415 rule applies to any request that "specifies the Content-Type header with
    the JSON:API media type", a DELETE to a relationship URL included.
    [Content Negotiation, Server Responsibilities]"""
    caller = Caller(client, app)
    response = client.delete(f"/api/users/{caller.user_id}/relationships/devices",
                             data=json.dumps({"data": []}),
                             headers={**caller.headers,
                                      "Content-Type": f"{JSONAPI}; charset=utf-8"})
    error_of(response, 415)


def test_unrecognised_profiles_are_ignored(client):
    """"A server MUST ignore any profiles that it does not recognize."
    [Content Negotiation, Server Responsibilities]"""
    profile = '; profile="https://example.com/profiles/a https://example.com/profiles/b"'
    response = client.post("/api/sessions", headers={"Content-Type": JSONAPI + profile,
                                                     "Accept": JSONAPI + profile},
                           data=json.dumps({"data": {"type": "sessions"}}))
    body(response, 201)


@pytest.mark.parametrize("accept", [
    f"{JSONAPI}; charset=utf-8",
    f"{JSONAPI}; charset=utf-8; q=0.5, application/json",
    f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic"',
    f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic", {JSONAPI}; ext="urn:x"',
])
def test_accept_where_no_jsonapi_instance_can_be_served_is_406(client, accept):
    """"If all instances of that media type are modified with a media type parameter other
    than ext or profile, servers MUST respond with a 406 Not Acceptable ... If every
    instance of that media type is modified by the ext parameter and each contains at
    least one unsupported extension URI, the server MUST also respond with a 406"
    [Content Negotiation, Server Responsibilities]"""
    error = error_of(client.get("/api/configs/3.1.23", headers={"Accept": accept}), 406)
    assert error["source"] == {"header": "Accept"}


@pytest.mark.parametrize("accept", [
    f"{JSONAPI}; charset=utf-8, {JSONAPI}",
    f"{JSONAPI}; charset=utf-8, {JSONAPI}; q=0.5",
    f'{JSONAPI}; ext="https://jsonapi.org/ext/atomic", {JSONAPI}',
    f'{JSONAPI}; profile="https://example.com/unknown"',
    f"{JSONAPI}, application/json",
])
def test_parameterised_accept_instances_are_ignored_when_another_is_servable(client, accept):
    """"servers MUST ignore instances of that media type which are modified by a media
    type parameter other than ext or profile." [Content Negotiation, Server
    Responsibilities]"""
    body(client.get("/api/configs/3.1.23", headers={"Accept": accept}), 200)


# -- Document Structure ---------------------------------------------------------------


def test_top_level_has_data_or_errors_never_both(client, app):
    """"A document MUST contain at least one of the following top-level members: data,
    errors, meta ... The members data and errors MUST NOT coexist in the same document.
    ... If a document does not contain a top-level data key, the included member MUST NOT
    be present either." [Document Structure, Top Level]"""
    caller = Caller(client, app)
    document = body(client.get(f"/api/sessions/{caller.session_id}", headers=caller.headers),
                    200)
    assert "data" in document and "errors" not in document
    assert document["jsonapi"] == {"version": "1.1"}
    for response in (client.get(f"/api/sessions/{caller.session_id}?include=nope",
                                headers=caller.headers),
                     client.get(f"/api/users/{uuid.uuid4()}", headers=caller.headers)):
        document = response.get_json()
        assert "errors" in document and "data" not in document and "included" not in document


def test_a_collection_is_an_array_even_if_empty_or_of_one(client, app):
    """"A logical collection of resources MUST be represented as an array, even if it only
    contains one item or is empty." [Document Structure, Top Level]"""
    caller = Caller(client, app)
    assert body(client.get("/api/apple_device_tokens", headers=caller.headers),
                200)["data"] == []
    token = register_token(client, caller.session_id)
    data = body(client.get("/api/apple_device_tokens", headers=caller.headers), 200)["data"]
    assert [item["id"] for item in data] == [token]


def test_resource_objects_have_string_type_and_id(client, app):
    """"every resource object MUST contain a type member. Every resource object MUST also
    contain an id member ... The values of the id, type, and lid members MUST be
    strings." [Resource Objects, Identification]"""
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    document = body(client.get("/api/apple_device_tokens?include=user,session",
                               headers=caller.headers), 200)
    resources = document["data"] + document["included"]
    assert {resource["type"] for resource in resources} == {
        "apple_device_tokens", "users", "sessions"}
    for resource in resources:
        assert isinstance(resource["type"], str) and isinstance(resource["id"], str)
        for relationship in resource.get("relationships", {}).values():
            data = relationship.get("data")
            for identifier in data if isinstance(data, list) else [data] if data else []:
                assert set(identifier) == {"type", "id"}
                assert all(isinstance(value, str) for value in identifier.values())


def test_fields_share_one_namespace_without_type_or_id():
    """"Fields for a resource object MUST share a common namespace with each other and
    with type and id. In other words, a resource can not have an attribute or
    relationship named type or id." [Resource Objects, Fields]"""
    for resource_type in registry.values():
        attributes, relationships = resource_type.attribute_names, set(
            resource_type.relationships)
        assert not attributes & relationships, resource_type.type
        assert not (attributes | relationships) & {"type", "id"}, resource_type.type


def test_member_names_are_legal(client, app):
    """"Member names MUST contain only the allowed characters ... MUST start and end with a
    'globally allowed character'" [Document Structure, Member Names]"""
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    documents = [
        client.get("/api/apple_device_tokens?include=user.devices,session",
                   headers=caller.headers).get_json(),
        client.get("/api/configs/3.1.23").get_json(),
        client.get(f"/api/sessions/{caller.session_id}", headers=caller.headers).get_json(),
        client.get("/api/users?page[bogus]=1", headers=caller.headers).get_json(),
    ]
    names = {name for document in documents for name in member_names(document)}
    assert names and all(MEMBER_NAME.match(name) for name in names), sorted(names)


def test_relationship_objects_have_links_and_linkage(client, app):
    """"A relationship object MUST contain at least one of the following: links ... data
    ... meta" and "Resource linkage MUST be represented as ... null for empty to-one
    relationships ... a single resource identifier object for non-empty to-one
    relationships" [Resource Objects, Relationships; Resource Linkage]"""
    session_id = create_session(client)
    token = register_token(client, session_id)
    data = body(client.get(f"/api/apple_device_tokens/{token}", headers=bearer(session_id)),
                200)["data"]
    base = f"http://localhost/api/apple_device_tokens/{token}"
    assert data["relationships"]["user"] == {
        "links": {"self": f"{base}/relationships/user", "related": f"{base}/user"},
        "data": None}
    assert data["relationships"]["session"]["data"] == {"type": "sessions", "id": session_id}


def test_resource_self_links_answer_with_the_resource(client, app):
    """"A server MUST respond to a GET request to the specified URL [a resource's links.
    self] with a response that includes the resource as the primary data."
    [Resource Objects, Resource Links]"""
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    document = body(client.get("/api/apple_device_tokens?include=user,session",
                               headers=caller.headers), 200)
    config = body(client.get("/api/configs/3.1.23"), 200)["data"]
    for resource in [*document["data"], *document["included"], config]:
        fetched = body(client.get(resource["links"]["self"], headers=caller.headers), 200)
        assert key(fetched["data"]) == key(resource)


def test_top_level_self_links_can_be_fetched_and_keep_the_query(client, app):
    """"A server MUST support fetching resource data for every URL provided as: a self link
    as part of the top-level links object" and "the link must contain the query
    parameters provided by the client" [Fetching Resources; Top Level]"""
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    path = ("/api/apple_device_tokens?include=user&fields[apple_device_tokens]=bundle_id,user"
            "&fields[users]=time_zone&sort=-created_at&page[size]=5&filter[is_voip]=false")
    document = body(client.get(path, headers=caller.headers), 200)
    self_link = document["links"]["self"]
    assert parse_qs(urlsplit(self_link).query) == parse_qs(urlsplit(path).query)
    assert body(client.get(self_link, headers=caller.headers), 200) == document


def test_the_self_link_of_a_created_resource_can_be_fetched(client):
    """The top-level self link of a 201 must be fetchable as well ("A server MUST support
    fetching resource data for every URL provided as a self link"); GET of the POST URL
    (/api/sessions) is no collection, so the document points at the new resource.
    [Fetching Resources]"""
    response = client.post("/api/sessions", json={"data": {"type": "sessions"}})
    document = body(response, 201)
    assert document["links"]["self"] == response.headers["Location"]
    fetched = client.get(document["links"]["self"], headers=bearer(document["data"]["id"]))
    assert key(body(fetched, 200)["data"]) == key(document["data"])


# -- Fetching Resources -----------------------------------------------------------------


def test_fetching_a_missing_single_resource_is_404(client, app):
    """"A server MUST respond with 404 Not Found when processing a request to fetch a
    single resource that does not exist" [Fetching Resources, 404 Not Found]"""
    caller = Caller(client, app)
    for path in (f"/api/users/{uuid.uuid4()}", "/api/users/not-a-uuid",
                 f"/api/apple_device_tokens/{new_token()}",
                 f"/api/sessions/{uuid.uuid4()}"):
        error_of(client.get(path, headers=caller.headers), 404)


def test_an_empty_to_one_related_link_answers_200_with_null(client):
    """"null is only an appropriate response when the requested URL is one that might
    correspond to a single resource, but doesn't currently" (a to-one related link whose
    relationship is empty) [Fetching Resources, 200 OK]"""
    session_id = create_session(client)
    token = register_token(client, session_id)
    document = body(client.get(f"/api/apple_device_tokens/{token}/user",
                               headers=bearer(session_id)), 200)
    assert document["data"] is None
    assert document["links"]["self"].endswith(f"/api/apple_device_tokens/{token}/user")


def test_related_links_answer_with_the_related_resources(client, app):
    """"A server MUST support fetching resource data for every URL provided as ... a
    related link as part of a relationship-level links object" [Fetching Resources]"""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    data = body(client.get(f"/api/apple_device_tokens/{token}", headers=caller.headers),
                200)["data"]
    user = body(client.get(data["relationships"]["user"]["links"]["related"],
                           headers=caller.headers), 200)["data"]
    assert key(user) == ("users", caller.user_id)
    session = body(client.get(data["relationships"]["session"]["links"]["related"],
                              headers=caller.headers), 200)["data"]
    assert key(session) == ("sessions", caller.session_id)
    devices = body(client.get(user["relationships"]["devices"]["links"]["related"],
                              headers=caller.headers), 200)["data"]
    assert [key(device) for device in devices] == [("devices", device_id(app, token))]


# -- Fetching Relationships -------------------------------------------------------------


def test_relationship_links_answer_with_linkage(client, app):
    """"A server MUST support fetching relationship data for every relationship URL
    provided as a self link ... The primary data in the response document MUST match the
    appropriate value for resource linkage" [Fetching Relationships, 200 OK]"""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    resource = body(client.get(f"/api/apple_device_tokens/{token}", headers=caller.headers),
                    200)["data"]
    for name, relationship in resource["relationships"].items():
        document = body(client.get(relationship["links"]["self"], headers=caller.headers), 200)
        assert document["data"] == relationship["data"], name
        assert document["links"] == relationship["links"]
    user = body(client.get(f"/api/users/{caller.user_id}", headers=caller.headers), 200)["data"]
    devices = body(client.get(user["relationships"]["devices"]["links"]["self"],
                              headers=caller.headers), 200)
    assert devices["data"] == [{"type": "devices", "id": device_id(app, token)}]


def test_empty_relationships_answer_200_with_null_or_empty_array(client, app):
    """"If a relationship link URL exists but the relationship is empty, then 200 OK MUST
    be returned" — null for to-one, [] for to-many. [Fetching Relationships, 404 Not
    Found; 200 OK]"""
    session_id = create_session(client)
    token = register_token(client, session_id)
    document = body(client.get(f"/api/apple_device_tokens/{token}/relationships/user",
                               headers=bearer(session_id)), 200)
    assert document["data"] is None
    caller = Caller(client, app)
    document = body(client.get(f"/api/users/{caller.user_id}/relationships/devices",
                               headers=caller.headers), 200)
    assert document["data"] == []


def test_relationship_url_that_does_not_exist_is_404(client, app):
    """"A server MUST return 404 Not Found when processing a request to fetch a
    relationship link URL that does not exist." [Fetching Relationships, 404 Not Found]"""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    for path in (f"/api/users/{uuid.uuid4()}/relationships/devices",
                 f"/api/apple_device_tokens/{new_token()}/relationships/user",
                 f"/api/users/{caller.user_id}/relationships/friends",
                 f"/api/apple_device_tokens/{token}/relationships/owner",
                 "/api/widgets/1/relationships/parts"):
        error_of(client.get(path, headers=caller.headers), 404)


# -- Inclusion of Related Resources -----------------------------------------------------


def test_include_gives_a_compound_document_even_when_nothing_is_related(client):
    """"The server's response MUST be a compound document with an included key — even if
    that included key holds an empty array" [Inclusion of Related Resources]"""
    session_id = create_session(client)
    register_token(client, session_id)
    document = body(client.get("/api/apple_device_tokens?include=user",
                               headers=bearer(session_id)), 200)
    assert document["included"] == []
    document = body(client.get(f"/api/sessions/{session_id}?include=",
                               headers=bearer(session_id)), 200)
    assert document["included"] == []


def test_included_resources_have_full_linkage_and_are_unique(client, app):
    """"Every included resource object MUST be identified via a chain of relationships
    originating in a document's primary data" and "A compound document MUST NOT include
    more than one resource object for each type and id pair." [Compound Documents]"""
    caller = Caller(client, app)
    for _ in range(3):
        register_token(client, caller.session_id)
    document = body(client.get("/api/apple_device_tokens?include=user.devices,session",
                               headers=caller.headers), 200)
    assert len(document["data"]) == 3
    assert {resource["type"] for resource in document["included"]} == {
        "users", "sessions", "devices"}
    assert_compound_document(document)
    document = body(client.get(f"/api/sessions/{caller.session_id}?include=user.devices",
                               headers=caller.headers), 200)
    assert [resource["type"] for resource in document["included"]].count("devices") == 3
    assert_compound_document(document)


def test_unrequested_resources_are_not_included(client, app):
    """"The server MUST NOT include unrequested resource objects in the included section"
    [Inclusion of Related Resources]"""
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    document = body(client.get("/api/apple_device_tokens?include=user",
                               headers=caller.headers), 200)
    assert [key(resource) for resource in document["included"]] == [("users", caller.user_id)]


@pytest.mark.parametrize("include", ["owner", "user.friends", "user..devices", ".user",
                                     "user.devices.user.devices"])
def test_an_unknown_or_unsupported_include_path_is_400(client, app, include):
    """"If a server is unable to identify a relationship path or does not support
    inclusion of resources from a path, it MUST respond with 400 Bad Request."
    [Inclusion of Related Resources]"""
    caller = Caller(client, app)
    response = client.get(f"/api/apple_device_tokens?include={include}",
                          headers=caller.headers)
    assert error_of(response, 400)["source"] == {"parameter": "include"}


def test_include_on_an_endpoint_that_does_not_support_it_is_400(client, app):
    """"If an endpoint does not support the include parameter, it MUST respond with 400
    Bad Request to any requests that include it." (relationship endpoints)
    [Inclusion of Related Resources]"""
    caller = Caller(client, app)
    response = client.get(f"/api/users/{caller.user_id}/relationships/devices?include=user",
                          headers=caller.headers)
    assert error_of(response, 400)["source"] == {"parameter": "include"}


# -- Sparse Fieldsets -----------------------------------------------------------------


def test_sparse_fieldsets_return_no_other_fields(client, app):
    """"If a client requests a restricted set of fields for a given resource type, an
    endpoint MUST NOT include additional fields in resource objects of that type"
    [Sparse Fieldsets]"""
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    document = body(client.get(
        "/api/apple_device_tokens?include=user,session&fields[apple_device_tokens]="
        "bundle_id,user&fields[users]=time_zone&fields[sessions]=", headers=caller.headers),
        200)
    (token,) = document["data"]
    assert set(token["attributes"]) == {"bundle_id"}
    assert set(token["relationships"]) == {"user"}
    for resource in document["included"]:
        fields = set(resource.get("attributes", {})) | set(resource.get("relationships", {}))
        assert fields == ({"time_zone"} if resource["type"] == "users" else set())


def test_an_empty_fieldset_returns_no_fields(client, app):
    """"An empty value indicates that no fields should be returned." [Sparse Fieldsets]"""
    caller = Caller(client, app)
    data = body(client.get(f"/api/users/{caller.user_id}?fields[users]=",
                           headers=caller.headers), 200)["data"]
    assert not data.get("attributes") and not data.get("relationships")


# -- Sorting ----------------------------------------------------------------------------


def test_sort_ascending_unless_prefixed_with_minus(client, app):
    """"The sort order for each sort field MUST be ascending unless it is prefixed with a
    minus ... in which case it MUST be descending." and "the server MUST return elements
    of the top-level data array of the response ordered according to the criteria
    specified." [Sorting]"""
    caller = Caller(client, app)
    tokens = [register_token(client, caller.session_id) for _ in range(3)]
    ids = [item["id"] for item in body(client.get("/api/apple_device_tokens?sort=created_at",
                                                  headers=caller.headers), 200)["data"]]
    assert ids == tokens
    ids = [item["id"] for item in body(client.get("/api/apple_device_tokens?sort=-created_at",
                                                  headers=caller.headers), 200)["data"]]
    assert ids == tokens[::-1]


@pytest.mark.parametrize("path", [
    "/api/apple_device_tokens?sort=bundle_id",
    "/api/apple_device_tokens?sort=user.username",
    "/api/users?sort=phone_number",
    "/api/users?sort=",
    "/api/configs/3.1.23?sort=created_at",
])
def test_unsupported_sorting_is_400(client, app, path):
    """"If the server does not support sorting as specified in the query parameter sort,
    it MUST return 400 Bad Request." [Sorting]"""
    caller = Caller(client, app)
    assert error_of(client.get(path, headers=caller.headers), 400)["source"] == {
        "parameter": "sort"}


# -- Pagination -------------------------------------------------------------------------


def test_pagination_links_use_the_reserved_keys(client, app):
    """"The following keys MUST be used for pagination links: first, last, prev, next.
    Keys MUST either be omitted or have a null value to indicate that a particular link is
    unavailable." [Pagination]"""
    caller = Caller(client, app)
    tokens = [register_token(client, caller.session_id) for _ in range(3)]
    first = body(client.get("/api/apple_device_tokens?page[size]=2", headers=caller.headers),
                 200)
    assert set(first["links"]) <= {"self", "first", "last", "prev", "next"}
    assert first["links"].get("prev") is None
    second = body(client.get(first["links"]["next"], headers=caller.headers), 200)
    assert second["links"].get("next") is None
    assert [item["id"] for item in first["data"] + second["data"]] == tokens
    back = body(client.get(second["links"]["prev"], headers=caller.headers), 200)
    assert back["data"] == first["data"]
    assert body(client.get(second["links"]["first"], headers=caller.headers),
                200)["data"] == first["data"]


# -- Filtering --------------------------------------------------------------------------


def test_the_filter_family_filters(client, app):
    """"The filter query parameter family is reserved for filtering data." [Filtering]"""
    caller = Caller(client, app)
    production = register_token(client, caller.session_id, is_production=True)
    sandbox = register_token(client, caller.session_id, is_production=False)
    for value, expected in (("true", production), ("false", sandbox)):
        data = body(client.get(f"/api/apple_device_tokens?filter[is_production]={value}",
                               headers=caller.headers), 200)["data"]
        assert [item["id"] for item in data] == [expected]


# -- Creating Resources -----------------------------------------------------------------


def test_create_answers_201_with_the_resource_and_a_matching_location(client):
    """"the server MUST return a 201 Created response and a document that contains the
    resource as primary data" and "If the resource object returned by the response
    contains a self key in its links member and a Location header is provided, the value
    of the self member MUST match the value of the Location header." [Creating, 201]"""
    response = client.post("/api/sessions", json={
        "data": {"type": "sessions", "attributes": {"is_cookie_based": False}}})
    data = body(response, 201)["data"]
    assert data["type"] == "sessions" and data["id"]
    assert data["links"]["self"] == response.headers["Location"]


def test_a_client_generated_id_is_403(client):
    """"A server MUST return 403 Forbidden in response to an unsupported request to create
    a resource with a client-generated ID." [Creating, Client-Generated IDs]"""
    response = client.post("/api/sessions", json={
        "data": {"type": "sessions", "id": str(uuid.uuid4()), "attributes": {}}})
    assert error_of(response, 403)["source"] == {"pointer": "/data/id"}


def test_creating_with_a_type_the_collection_does_not_hold_is_409(client):
    """"A server MUST return 409 Conflict when processing a POST request in which the
    resource object's type is not among the type(s) that constitute the collection
    represented by the endpoint." [Creating, 409 Conflict]"""
    response = client.post("/api/sessions", json={"data": {"type": "users"}})
    assert error_of(response, 409)["source"] == {"pointer": "/data/type"}


@pytest.mark.parametrize("document", [
    {"data": {"attributes": {"is_cookie_based": False}}},
    {"data": [{"type": "sessions"}]},
    {"data": None},
    {"meta": {}},
    [],
])
def test_a_create_request_needs_a_single_resource_object_with_a_type(client, document):
    """"The request MUST include a single resource object as primary data. The resource
    object MUST contain at least a type member." [Creating Resources]"""
    error_of(client.post("/api/sessions", data=json.dumps(document)), 400)


def test_creating_with_relationships_is_refused_whole(client):
    """"A server MAY return 403 Forbidden in response to an unsupported request to create a
    resource." Relationships are set by the service. [Creating, 403 Forbidden]"""
    response = client.post("/api/sessions", json={"data": {
        "type": "sessions", "relationships": {"user": {"data": None}}}})
    assert error_of(response, 403)["source"] == {"pointer": "/data/relationships/user"}


# -- Updating Resources -----------------------------------------------------------------


def test_update_answers_200_with_the_updated_resource(client, app):
    """"If a server accepts an update but also changes the targeted resource in ways other
    than those specified by the request (for example, updating the updatedAt attribute
    ...), it MUST return a 200 OK response and a document that contains the updated
    resource as primary data." [Updating, 200 OK]"""
    caller = Caller(client, app)
    before = body(client.get(f"/api/users/{caller.user_id}", headers=caller.headers),
                  200)["data"]
    response = client.patch(f"/api/users/{caller.user_id}", headers=caller.headers, json={
        "data": {"type": "users", "id": caller.user_id,
                 "attributes": {"time_zone": "Europe/Paris"}}})
    data = body(response, 200)["data"]
    assert key(data) == ("users", caller.user_id)
    assert data["attributes"]["time_zone"] == "Europe/Paris"
    assert data["attributes"]["updated_at"] >= before["attributes"]["updated_at"]


def test_missing_attributes_keep_their_values(client, app):
    """"If a request does not include all of the attributes for a resource, the server
    MUST interpret the missing attributes as if they were included with their current
    values. The server MUST NOT interpret missing attributes as null values."
    [Updating a Resource's Attributes]"""
    caller = Caller(client, app)
    url = f"/api/users/{caller.user_id}"
    client.patch(url, headers=caller.headers, json={"data": {
        "type": "users", "id": caller.user_id,
        "attributes": {"time_zone": "Europe/Paris", "first_name": "Ada"}}})
    data = body(client.patch(url, headers=caller.headers, json={"data": {
        "type": "users", "id": caller.user_id, "attributes": {"last_name": "Lovelace"}}}),
        200)["data"]
    assert data["attributes"]["time_zone"] == "Europe/Paris"
    assert data["attributes"]["first_name"] == "Ada"
    assert data["attributes"]["last_name"] == "Lovelace"


@pytest.mark.parametrize(("document", "pointer"), [
    ({"type": "sessions", "id": "<me>", "attributes": {}}, "/data/type"),
    ({"type": "users", "id": str(uuid.UUID(int=1)), "attributes": {}}, "/data/id"),
])
def test_type_or_id_that_do_not_match_the_endpoint_is_409(client, app, document, pointer):
    """"A server MUST return 409 Conflict when processing a PATCH request in which the
    resource object's type or id do not match the server's endpoint." [Updating, 409]"""
    caller = Caller(client, app)
    document = {**document, "id": document["id"].replace("<me>", caller.user_id)}
    response = client.patch(f"/api/users/{caller.user_id}", headers=caller.headers,
                            json={"data": document})
    assert error_of(response, 409)["source"] == {"pointer": pointer}


def test_an_update_needs_type_and_id(client, app):
    """"The PATCH request MUST include a single resource object as primary data. The
    resource object MUST contain type and id members." [Updating Resources]"""
    caller = Caller(client, app)
    for document in ({"type": "users", "attributes": {"first_name": "Ada"}},
                     {"id": caller.user_id, "attributes": {"first_name": "Ada"}}):
        response = client.patch(f"/api/users/{caller.user_id}", headers=caller.headers,
                                json={"data": document})
        error_of(response, 400)


def test_an_update_is_all_or_nothing(client, app):
    """"A request MUST completely succeed or fail (in a single 'transaction'). No partial
    updates are allowed." [Creating, Updating and Deleting Resources]"""
    caller = Caller(client, app)
    url = f"/api/users/{caller.user_id}"
    response = client.patch(url, headers=caller.headers, json={"data": {
        "type": "users", "id": caller.user_id,
        "attributes": {"first_name": "Ada", "time_zone": "Mars/Olympus_Mons"}}})
    error = error_of(response, 400)
    assert error["source"] == {"pointer": "/data/attributes/time_zone"}
    attributes = body(client.get(url, headers=caller.headers), 200)["data"]["attributes"]
    assert attributes["first_name"] is None and attributes["time_zone"] is None


def test_relationships_in_an_update_are_refused_and_nothing_changes(client, app):
    """"A server MAY reject an attempt to do a full replacement of a to-many relationship.
    In such a case, the server MUST reject the entire update, and return a 403 Forbidden
    response." [Updating a Resource's Relationships]"""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    url = f"/api/users/{caller.user_id}"
    response = client.patch(url, headers=caller.headers, json={"data": {
        "type": "users", "id": caller.user_id, "attributes": {"first_name": "Ada"},
        "relationships": {"devices": {"data": []}}}})
    assert error_of(response, 403)["source"] == {"pointer": "/data/relationships/devices"}
    data = body(client.get(f"{url}?include=devices", headers=caller.headers), 200)
    assert data["data"]["attributes"]["first_name"] is None
    assert data["data"]["relationships"]["devices"]["data"] == [
        {"type": "devices", "id": device_id(app, token)}]


def test_relationships_echoed_without_data_are_no_change_and_pass(client, app):
    """A client that sends back the resource it fetched echoes relationship objects with
    links only; they ask for no change, so the update goes through."""
    caller = Caller(client, app)
    url = f"/api/users/{caller.user_id}"
    fetched = body(client.get(url, headers=caller.headers), 200)["data"]
    response = client.patch(url, headers=caller.headers, json={"data": {
        "type": "users", "id": caller.user_id, "attributes": {"first_name": "Ada"},
        "relationships": fetched["relationships"]}})
    assert body(response, 200)["data"]["attributes"]["first_name"] == "Ada"


def test_an_unsupported_update_is_403(client, app):
    """"A server MUST return 403 Forbidden in response to an unsupported request to update
    a resource or relationship." (configuration; another user's profile)
    [Updating, 403 Forbidden]"""
    caller, other = Caller(client, app), Caller(client, app)
    response = client.patch("/api/configs/3.1.23", headers=caller.headers, json={
        "data": {"type": "configs", "id": "3.1.23", "attributes": {"is_live": True}}})
    error_of(response, 403)
    response = client.patch(f"/api/users/{other.user_id}", headers=caller.headers, json={
        "data": {"type": "users", "id": other.user_id, "attributes": {"first_name": "X"}}})
    error_of(response, 403)


def test_updating_a_missing_resource_is_404(client, app):
    """"A server MUST return 404 Not Found when processing a request to modify a resource
    that does not exist." (apple_device_tokens upsert instead: see docs/api/jsonapi.md)
    [Updating, 404 Not Found]"""
    caller = Caller(client, app)
    missing_user = str(uuid.uuid4())
    response = client.patch(f"/api/users/{missing_user}", headers=caller.headers, json={
        "data": {"type": "users", "id": missing_user, "attributes": {"first_name": "X"}}})
    error_of(response, 404)
    missing_session = str(uuid.uuid4())
    response = client.patch(f"/api/sessions/{missing_session}", headers=caller.headers,
                            json=session_patch(missing_session, phone_number="+12122000000"))
    error_of(response, 404)


def test_a_uniqueness_conflict_is_409(client, app):
    """"A server MAY return 409 Conflict when processing a PATCH request to update a
    resource if that update would violate other server-enforced constraints (such as a
    uniqueness constraint on a property other than id)." [Updating, 409 Conflict]"""
    first, second = Caller(client, app), Caller(client, app)
    for caller, status in ((first, 200), (second, 409)):
        response = client.patch(f"/api/users/{caller.user_id}", headers=caller.headers,
                                json={"data": {"type": "users", "id": caller.user_id,
                                               "attributes": {"username": "ada"}}})
        assert response.status_code == status
    assert error_of(response, 409)["source"] == {"pointer": "/data/attributes/username"}


# -- Updating Relationships -------------------------------------------------------------


def test_writes_to_read_only_relationships_are_403(client, app):
    """"A server MUST return 403 Forbidden in response to an unsupported request to update
    a relationship." [Updating Relationships, 403 Forbidden]"""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    user = {"type": "users", "id": caller.user_id}
    device = {"type": "apple_device_tokens", "id": token}
    for method, path, document in (
        ("PATCH", f"/api/apple_device_tokens/{token}/relationships/user", {"data": None}),
        ("PATCH", f"/api/apple_device_tokens/{token}/relationships/user", {"data": user}),
        ("DELETE", f"/api/apple_device_tokens/{token}/relationships/session", {"data": None}),
        ("PATCH", f"/api/users/{caller.user_id}/relationships/devices", {"data": []}),
        ("POST", f"/api/users/{caller.user_id}/relationships/devices", {"data": [device]}),
    ):
        response = client.open(path, method=method, headers=caller.headers,
                               data=json.dumps(document))
        assert error_of(response, 403)["code"] == "RELATIONSHIP_READ_ONLY", (method, path)


def test_delete_from_a_to_many_relationship_removes_the_members(client, app):
    """"If the client makes a DELETE request to a URL from a relationship link the server
    MUST delete the specified members from the relationship or return a 403 Forbidden
    response. If all of the specified resources are able to be removed from, or are
    already missing from, the relationship then the server MUST return a successful
    response." [Updating To-Many Relationships]"""
    caller = Caller(client, app)
    kept, removed = (register_token(client, caller.session_id) for _ in range(2))
    url = f"/api/users/{caller.user_id}/relationships/devices"
    document = json.dumps({"data": [{"type": "devices", "id": device_id(app, removed)}]})
    for _ in range(2):  # the second time the member is already missing
        response = client.delete(url, headers=caller.headers, data=document)
        assert response.status_code == 204
    assert body(client.get(url, headers=caller.headers), 200)["data"] == [
        {"type": "devices", "id": device_id(app, kept)}]
    assert client.delete(url, headers=caller.headers,
                         data=json.dumps({"data": []})).status_code == 204


@pytest.mark.parametrize(("document", "status"), [
    ({"data": {"type": "apple_device_tokens", "id": "x"}}, 400),
    ({"data": [{"type": "apple_device_tokens"}]}, 400),
    ({"data": [{"type": "users", "id": "1"}]}, 409),
    ({}, 400),
])
def test_a_to_many_delete_needs_an_array_of_identifiers(client, app, document, status):
    """"For all request types, the body MUST contain a data member whose value is an empty
    array or an array of resource identifier objects." [Updating To-Many Relationships]"""
    caller = Caller(client, app)
    response = client.delete(f"/api/users/{caller.user_id}/relationships/devices",
                             headers=caller.headers, data=json.dumps(document))
    error_of(response, status)


# -- Deleting Resources -----------------------------------------------------------------


def test_delete_answers_204_and_the_resource_is_gone(client, app):
    """"If a deletion request is successful, the server MUST return either a 200 OK status
    code and response document (as described above) or a 204 No Content status code with
    no response document." and "A server SHOULD return a 404 Not Found status code if a
    deletion request fails due to the resource not existing." [Deleting Resources]"""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    url = f"/api/apple_device_tokens/{token}"
    response = client.delete(url, headers=caller.headers)
    assert response.status_code == 204 and response.get_data() == b""
    error_of(client.get(url, headers=caller.headers), 404)
    error_of(client.delete(url, headers=caller.headers), 404)
    response = client.delete(f"/api/sessions/{caller.session_id}", headers=caller.headers)
    assert response.status_code == 204 and response.get_data() == b""


# -- Query Parameters -------------------------------------------------------------------


@pytest.mark.parametrize("parameter", [
    "foo", "page[number]", "page[size][x]", "filter[x][y]", "filter", "fields", "x[]",
    "sort[x]", "include[x]",
])
def test_an_unknown_reserved_query_parameter_is_400(client, app, parameter):
    """"If a server encounters a query parameter that does not follow the naming
    conventions above, or the server does not know how to process it as a query parameter
    from this specification, it MUST return 400 Bad Request." (all-lowercase names are
    reserved for the spec) [Implementation-Specific Query Parameters]"""
    caller = Caller(client, app)
    response = client.get("/api/users", headers=caller.headers,
                          query_string={parameter: "1"})
    assert error_of(response, 400)["source"] == {"parameter": parameter}


@pytest.mark.parametrize("parameter", ["_", "_cache", "foo_", "-x", "filter[_]", "fooBar[_]",
                                       "a[b", "a]b"])
def test_a_query_parameter_with_an_illegal_name_is_400(client, app, parameter):
    """"the names of these query parameters MUST come from a family whose base name is a
    legal member name" and otherwise "it MUST return 400 Bad Request."
    [Implementation-Specific Query Parameters]"""
    caller = Caller(client, app)
    response = client.get("/api/users", headers=caller.headers,
                          query_string={parameter: "1"})
    assert error_of(response, 400)["source"] == {"parameter": parameter}


def test_implementation_specific_query_parameters_are_ignored(client, app):
    """"Implementations MAY support custom query parameters. However, the names of these
    query parameters MUST come from a family whose base name is a legal member name and
    also contains at least one non a-z character" — those this server does not use are
    ignored. [Implementation-Specific Query Parameters]"""
    caller = Caller(client, app)
    plain = body(client.get("/api/users", headers=caller.headers), 200)["data"]
    for query in ("fooBar=1", "cache-buster=1&cache-buster=2", "myParam[a][b.c]=1",
                  "x2=1", "Sort=bogus", "camelCase[]=1"):
        document = body(client.get(f"/api/users?{query}", headers=caller.headers), 200)
        assert document["data"] == plain, query


def test_unencoded_square_brackets_mean_the_same_as_encoded_ones(client, app):
    """"If a server does accept these requests, it MUST treat the request as equivalent to
    one in which the square brackets were percent-encoded." [Square Brackets in Parameter
    Names]"""
    caller = Caller(client, app)
    raw = body(client.get("/api/users?fields[users]=time_zone", headers=caller.headers), 200)
    encoded = body(client.get("/api/users?fields%5Busers%5D=time_zone",
                              headers=caller.headers), 200)
    assert raw["data"] == encoded["data"]
    assert set(raw["data"][0]["attributes"]) == {"time_zone"}


# -- Errors -----------------------------------------------------------------------------


def test_error_objects(client, app):
    """"Error objects MUST be returned as an array keyed by errors in the top level of a
    JSON:API document." status is "the HTTP status code applicable to this problem,
    expressed as a string value"; source.pointer "MUST point to a value in the request
    document that exists" [Errors, Error Objects]"""
    caller = Caller(client, app)
    document = {"data": {"type": "users", "id": caller.user_id,
                         "attributes": {"time_zone": "Nowhere/Land", "is_private": "yes"}}}
    response = client.patch(f"/api/users/{caller.user_id}", headers=caller.headers,
                            json=document)
    errors = body(response, 400)["errors"]
    assert {error["source"]["pointer"] for error in errors} == {
        "/data/attributes/time_zone", "/data/attributes/is_private"}
    for error in errors:
        assert error["status"] == "400" and error["code"] and error["title"] and error["id"]
        target = document
        for step in error["source"]["pointer"].split("/")[1:]:
            target = target[step]  # the pointer names a value that exists
    for response, status in (
        (client.get("/api/nowhere"), 404),
        (client.put("/api/users", headers=caller.headers, json={}), 405),
        (client.get("/api/apple_device_tokens"), 401),
        (client.post("/api/sessions", data="{not json"), 400),
    ):
        error = error_of(response, status)
        assert error["status"] == str(status) and error["code"] == error["code"].upper()
    assert client.put("/api/users", headers=caller.headers, json={}).headers["Allow"]


def _documented_rules():
    text = DOCS_PAGE.read_text()
    section = text[text.index(DOCS_SECTION) + len(DOCS_SECTION):]
    section = re.split(r"^#{1,2} ", section, maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r"^- \*\*(.+?)\*\*", section, flags=re.MULTILINE)


def test_every_rule_the_docs_list_has_tests_showing_it():
    """The docs' list of rules answered differently is the one this module checks: each
    entry has tests here, and no entry here is missing from the docs."""
    rules = _documented_rules()
    assert len(rules) == len(set(rules)), rules
    assert set(rules) == set(UNSUPPORTED_RULES)
    for rule, tests in UNSUPPORTED_RULES.items():
        for name in tests:
            assert callable(globals().get(name)), f"{rule}: no test named {name}"


def test_a_token_is_created_with_post_and_its_id(client):
    """The way JSON:API clients create: POST with the token as the client-generated id;
    201 with a Location when new, 200 when the token exists (an upsert, like the PATCH)."""
    session_id = create_session(client)
    token = new_token()
    created = client.post("/api/apple_device_tokens", headers=bearer(session_id),
                          json=token_document(token))
    assert key(body(created, 201)["data"]) == ("apple_device_tokens", token)
    assert created.headers["Location"].endswith(f"/api/apple_device_tokens/{token}")
    again = client.post("/api/apple_device_tokens", headers=bearer(session_id),
                        json=token_document(token, bundle_version="3.2"))
    assert body(again, 200)["data"]["attributes"]["bundle_version"] == "3.2"
    missing_id = token_document(token)
    del missing_id["data"]["id"]
    error_of(client.post("/api/apple_device_tokens", headers=bearer(session_id),
                         json=missing_id), 400)


def test_linkage_sent_back_unchanged_passes(client, app):
    """A fetched resource sent back whole carries its linkage: identical linkage asks for
    no change; a different one is still refused."""
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    url = f"/api/apple_device_tokens/{token}"
    fetched = body(client.get(url, headers=caller.headers), 200)["data"]
    fetched["attributes"]["bundle_version"] = "4.0"
    response = client.patch(url, headers=caller.headers, json={"data": fetched})
    fetched = body(response, 200)["data"]
    assert fetched["attributes"]["bundle_version"] == "4.0"
    fetched["relationships"]["user"]["data"] = {"type": "users", "id": str(uuid.uuid4())}
    error = error_of(client.patch(url, headers=caller.headers, json={"data": fetched}), 403)
    assert error["code"] == "RELATIONSHIP_READ_ONLY"
    assert error["source"] == {"pointer": "/data/relationships/user"}


def test_read_only_attributes_sent_back_unchanged_pass(client, app):
    """Read-only attributes of a fetched resource sent back as they were are ignored; a
    changed one is an unsupported update: 403 with its pointer, and nothing changes."""
    caller = Caller(client, app)
    url = f"/api/users/{caller.user_id}"
    fetched = body(client.get(url, headers=caller.headers), 200)["data"]
    fetched["attributes"]["first_name"] = "Ada"
    response = client.patch(url, headers=caller.headers, json={"data": fetched})
    assert body(response, 200)["data"]["attributes"]["first_name"] == "Ada"
    fetched["attributes"].update(first_name="Grace", created_at="2020-01-01T00:00:00.000Z")
    error = error_of(client.patch(url, headers=caller.headers, json={"data": fetched}), 403)
    assert (error["code"], error["source"]) == (
        "READ_ONLY_ATTRIBUTE", {"pointer": "/data/attributes/created_at"})
    assert body(client.get(url, headers=caller.headers), 200)["data"]["attributes"][
        "first_name"] == "Ada"


def test_to_many_linkage_is_one_page_with_a_count(client, app, monkeypatch):
    """A user's devices linkage carries at most a page, the count of all, and the related
    link that pages through the rest."""
    caller = Caller(client, app)
    size = 3
    monkeypatch.setitem(app.config, "PAGE_SIZE_DEFAULT", size)
    for _ in range(size + 2):
        register_token(client, caller.session_id)
    fetched = body(client.get(f"/api/users/{caller.user_id}", headers=caller.headers),
                   200)["data"]
    devices = fetched["relationships"]["devices"]
    assert len(devices["data"]) == size and devices["meta"] == {"count": size + 2}
    related = body(client.get(devices["links"]["related"], headers=caller.headers), 200)
    assert related["links"]["next"]


def test_a_to_many_count_past_its_bound_says_it_is_a_lower_bound(client, app, monkeypatch):
    """Counting stops at the bound, so a resource object costs the same however many members
    it has; the document says the count is only a lower bound."""
    caller = Caller(client, app)
    monkeypatch.setattr(render, "RELATIONSHIP_COUNT_MAX", 2)
    for _ in range(3):
        register_token(client, caller.session_id)
    fetched = body(client.get(f"/api/users/{caller.user_id}", headers=caller.headers),
                   200)["data"]
    devices = fetched["relationships"]["devices"]
    assert len(devices["data"]) == 3
    assert devices["meta"] == {"count": 2, "count_is_lower_bound": True}


def test_posting_to_a_type_that_is_not_created_so_is_405(client, app):
    """Only sessions and device tokens are created with POST."""
    caller = Caller(client, app)
    response = client.post("/api/users", headers=caller.headers,
                           json={"data": {"type": "users", "attributes": {}}})
    error_of(response, 405)
    assert "POST" not in response.headers["Allow"]


def test_a_malformed_token_in_the_url_is_400(client, app):
    """A URL that cannot name a device token is 400 INVALID_DEVICE_TOKEN, not 404; the
    error names no member of a document, as the id was in the URL."""
    caller = Caller(client, app)
    for method in ("GET", "DELETE"):
        response = client.open("/api/apple_device_tokens/xyz", method=method,
                               headers=caller.headers)
        error = error_of(response, 400)
        assert error["code"] == "INVALID_DEVICE_TOKEN" and "source" not in error


def test_hidden_linkage_has_links_but_no_data(client, app):
    """Linkage the caller may not see is left out, and its endpoints answer 403."""
    caller, other = Caller(client, app), Caller(client, app)
    url = f"/api/users/{other.user_id}"
    devices = body(client.get(url, headers=caller.headers), 200)["data"]["relationships"][
        "devices"]
    assert "data" not in devices and devices["links"]["related"]
    error_of(client.get(devices["links"]["self"], headers=caller.headers), 403)


def test_a_401_challenges_for_a_bearer_token(client):
    """RFC 9110: a 401 carries WWW-Authenticate."""
    response = client.get("/api/apple_device_tokens")
    error_of(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_token_upsert_deviation_is_what_the_service_does(client):
    """The deviation in UNSUPPORTED_RULES: PATCH of a token that does not exist creates
    it and answers 200 (WIRE.md §1) instead of 404."""
    session_id = create_session(client)
    token = new_token()
    response = client.patch(f"/api/apple_device_tokens/{token}", headers=bearer(session_id),
                            json=token_document(token))
    assert key(body(response, 200)["data"]) == ("apple_device_tokens", token)
