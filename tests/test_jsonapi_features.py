"""The JSON:API features of the "full JSON:API 1.1" issue, end to end: include paths, sparse
fieldsets, sorting, keyset pagination, filters, relationship and related endpoints with
the resource's own authorization, conditional GET; and query counts (no N+1) on every
collection endpoint."""

import base64
import json

import pytest

from tests.factories import bearer, create_session, log_in, random_phone, register_token
from tests.jsonapi_helpers import (
    Caller,
    assert_compound_document,
    body,
    counted_statements,
    device_ids,
    error_of,
    insert_devices,
    insert_sessions,
    insert_users,
    key,
    session_pk,
    utc,
)

TOKENS = "/api/apple_device_tokens"


def ids(document):
    return [item["id"] for item in document["data"]]


def walk(client, headers, url):
    """Every page from ``url`` on through links.next: (pages, ids in order, last URL)."""
    pages, seen = 0, []
    while url:
        document = body(client.get(url, headers=headers), 200)
        pages += 1
        seen += ids(document)
        last, url = url, document["links"].get("next")
        assert pages < 100, "next links do not end"
    return pages, seen, last


def walk_back(client, headers, url):
    """From the page at ``url`` back to the first through links.prev: ids in order."""
    seen = []
    while url:
        document = body(client.get(url, headers=headers), 200)
        seen = ids(document) + seen
        url = document["links"].get("prev")
    return seen


# -- include ----------------------------------------------------------------------------


def test_a_session_with_its_user_and_the_users_devices(client, app):
    caller = Caller(client, app)
    tokens = [register_token(client, caller.session_id) for _ in range(2)]
    document = body(client.get(f"/api/sessions/{caller.session_id}?include=user.devices",
                               headers=caller.headers), 200)
    assert_compound_document(document)
    included = {key(resource): resource for resource in document["included"]}
    device_id = {token: str(pk) for token, pk in device_ids(app, tokens).items()}
    assert set(included) == {("users", caller.user_id),
                             *(("devices", device_id[token]) for token in tokens)}
    devices = included[("users", caller.user_id)]["relationships"]["devices"]["data"]
    assert {device["id"] for device in devices} == set(device_id.values())


def test_sessions_come_with_their_user_unless_told_otherwise(client, app):
    caller = Caller(client, app)
    url = f"/api/sessions/{caller.session_id}"
    default = body(client.get(url, headers=caller.headers), 200)
    assert [key(resource) for resource in default["included"]] == [("users", caller.user_id)]
    assert body(client.get(f"{url}?include=", headers=caller.headers), 200)["included"] == []


def test_tokens_with_user_session_and_the_users_devices(client, app):
    caller = Caller(client, app)
    tokens = [register_token(client, caller.session_id) for _ in range(3)]
    document = body(client.get(f"{TOKENS}?include=user,session,user.devices",
                               headers=caller.headers), 200)
    assert ids(document) == tokens
    assert_compound_document(document)
    # the user's devices are the primary tokens' rows, as devices (another type)
    device_id = {str(pk) for pk in device_ids(app, tokens).values()}
    assert sorted(key(resource) for resource in document["included"]) == sorted([
        ("sessions", caller.session_id), ("users", caller.user_id),
        *(("devices", pk) for pk in device_id)])
    (user,) = [resource for resource in document["included"] if resource["type"] == "users"]
    assert {item["id"] for item in user["relationships"]["devices"]["data"]} == device_id


def test_included_is_an_empty_array_when_requested_and_nothing_is_related(client):
    session_id = create_session(client)
    register_token(client, session_id)
    for include in ("user", "user.devices", "user,user.devices"):
        document = body(client.get(f"{TOKENS}?include={include}", headers=bearer(session_id)),
                        200)
        assert document["included"] == [], include
    document = body(client.get(TOKENS, headers=bearer(session_id)), 200)
    assert "included" not in document


def test_include_on_a_related_collection(client, app):
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    document = body(client.get(f"/api/users/{caller.user_id}/devices?include=user",
                               headers=caller.headers), 200)
    assert_compound_document(document)
    assert [resource["type"] for resource in document["included"]] == ["users"]


@pytest.mark.parametrize(("include", "status"), [
    ("user.devices.user", 200),  # three deep: the limit
    ("user.devices.user.devices", 400),
    ("user.devices.session.user", 400),
    ("users", 400),
    ("user.session", 400),
    ("devices", 400),
])
def test_include_paths_are_checked(client, app, include, status):
    assert app.config["INCLUDE_DEPTH_MAX"] == 3
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    response = client.get(f"{TOKENS}?include={include}", headers=caller.headers)
    if status == 200:
        assert_compound_document(body(response, 200))
    else:
        assert error_of(response, 400)["source"] == {"parameter": "include"}


def test_include_does_not_leak_what_linkage_hides(client, app):
    """Another session's id never appears, not even through include."""
    phone = random_phone()
    first_session, user_id = log_in(client, app, phone)
    token = register_token(client, first_session)
    second_session, same_user = log_in(client, app, phone)
    assert same_user == user_id
    document = body(client.get(f"{TOKENS}?include=session,user.devices",
                               headers=bearer(second_session)), 200)
    (resource,) = document["data"]
    assert resource["id"] == token
    assert "data" not in resource["relationships"]["session"]
    assert {item["type"] for item in document["included"]} == {"users", "devices"}
    assert first_session not in json.dumps(document)


# -- sparse fieldsets -------------------------------------------------------------------


def test_fields_apply_to_primary_and_included_resources(client, app):
    caller = Caller(client, app)
    register_token(client, caller.session_id)
    document = body(client.get(
        f"{TOKENS}?include=user&fields[apple_device_tokens]=is_production,user"
        "&fields[users]=username,devices", headers=caller.headers), 200)
    (token,) = document["data"]
    assert set(token["attributes"]) == {"is_production"}
    assert set(token["relationships"]) == {"user"}
    (user,) = document["included"]
    assert set(user["attributes"]) == {"username"}
    assert set(user["relationships"]) == {"devices"}
    assert_compound_document(document)


def test_fields_never_show_what_the_caller_may_not_see(client, app):
    caller, other = Caller(client, app), Caller(client, app)
    own = body(client.get(f"/api/users/{caller.user_id}?fields[users]=phone_number",
                          headers=caller.headers), 200)["data"]
    assert set(own["attributes"]) == {"phone_number"}
    theirs = body(client.get(f"/api/users/{other.user_id}?fields[users]=phone_number",
                             headers=caller.headers), 200)["data"]
    assert not theirs.get("attributes")


@pytest.mark.parametrize("parameter", ["fields[widgets]", "fields[users]"])
def test_unknown_fields_or_types_are_400(client, app, parameter):
    caller = Caller(client, app)
    value = "name" if parameter == "fields[widgets]" else "username,posts_count"
    response = client.get("/api/users", headers=caller.headers, query_string={parameter: value})
    assert error_of(response, 400)["source"] == {"parameter": parameter}


# -- sorting ----------------------------------------------------------------------------


def test_sort_by_several_keys(client, app):
    caller = Caller(client, app)
    rows = [(utc(2024, 1, 1), utc(2024, 2, 2)), (utc(2024, 1, 2), utc(2024, 2, 1)),
            (utc(2024, 1, 3), utc(2024, 2, 1)), (utc(2024, 1, 4), utc(2024, 2, 2))]
    tokens = [insert_devices(app, 1, user_id=caller.user_id, created_at=created,
                             updated_at=updated)[0] for created, updated in rows]
    for sort, order in (("updated_at,-created_at", [2, 1, 3, 0]),
                        ("-updated_at,created_at", [0, 3, 1, 2]),
                        ("-created_at", [3, 2, 1, 0]),
                        ("created_at", [0, 1, 2, 3])):
        document = body(client.get(f"{TOKENS}?sort={sort}", headers=caller.headers), 200)
        assert ids(document) == [tokens[index] for index in order], sort


def test_sort_users_descending(client, app):
    caller = Caller(client, app)
    older = insert_users(app, 1, created_at=utc(2020, 1, 1))
    newer = insert_users(app, 1, created_at=utc(2030, 1, 1))
    document = body(client.get("/api/users?sort=-created_at", headers=caller.headers), 200)
    assert ids(document) == [*newer, caller.user_id, *older]


@pytest.mark.parametrize("sort", ["bundle_id", "token", "-is_production", "user",
                                  "created_at,nope", "--created_at"])
def test_sorting_by_anything_not_whitelisted_is_400(client, app, sort):
    caller = Caller(client, app)
    response = client.get(TOKENS, headers=caller.headers, query_string={"sort": sort})
    assert error_of(response, 400)["source"] == {"parameter": "sort"}


# -- pagination -------------------------------------------------------------------------


def test_page_size_defaults_and_limits_come_from_configuration(client, app):
    assert (app.config["PAGE_SIZE_DEFAULT"], app.config["PAGE_SIZE_MAX"]) == (20, 100)
    caller = Caller(client, app)
    insert_devices(app, 101, user_id=caller.user_id)
    assert len(body(client.get(TOKENS, headers=caller.headers), 200)["data"]) == 20
    assert len(body(client.get(f"{TOKENS}?page[size]=100", headers=caller.headers),
                    200)["data"]) == 100
    for size in ("101", "0", "-1", "ten", ""):
        response = client.get(TOKENS, headers=caller.headers, query_string={"page[size]": size})
        assert error_of(response, 400)["source"] == {"parameter": "page[size]"}


def test_pagination_links(client, app):
    caller = Caller(client, app)
    insert_devices(app, 5, user_id=caller.user_id)
    first = body(client.get(f"{TOKENS}?page[size]=2&filter[is_voip]=false",
                            headers=caller.headers), 200)
    links = first["links"]
    assert links["prev"] is None and links["next"]
    for name in ("first", "next"):
        assert "filter%5Bis_voip%5D=false" in links[name] and "page%5Bsize%5D=2" in links[name]
    second = body(client.get(links["next"], headers=caller.headers), 200)
    assert second["links"]["prev"] and second["links"]["next"]
    assert second["links"]["first"] == links["first"]
    third = body(client.get(second["links"]["next"], headers=caller.headers), 200)
    assert len(third["data"]) == 1 and third["links"]["next"] is None
    assert body(client.get(third["links"]["prev"], headers=caller.headers),
                200)["data"] == second["data"]


@pytest.mark.parametrize("sort", [None, "-created_at", "updated_at,-created_at"])
def test_walking_every_page_gives_every_row_once_even_with_tied_timestamps(client, app, sort):
    caller = Caller(client, app)
    tied = utc(2024, 5, 20, 22, 15, 43, 990000)
    tokens = (insert_devices(app, 3, user_id=caller.user_id, created_at=utc(2024, 1, 1))
              + insert_devices(app, 17, user_id=caller.user_id, created_at=tied)
              + insert_devices(app, 4, user_id=caller.user_id, created_at=utc(2025, 1, 1)))
    primary_keys = device_ids(app, tokens)
    query = "page[size]=4" + (f"&sort={sort}" if sort else "")
    pages, seen, last_page = walk(client, caller.headers, f"{TOKENS}?{query}")
    assert pages == 6 and len(seen) == 24 and set(seen) == set(tokens)
    if sort is None:  # the default order: created_at, then the row's id
        created = {token: utc(2024, 1, 1) for token in tokens[:3]}
        created |= {token: tied for token in tokens[3:20]}
        created |= {token: utc(2025, 1, 1) for token in tokens[20:]}
        assert seen == sorted(tokens, key=lambda token: (created[token], primary_keys[token]))
    # and backwards, from the last page through links.prev
    assert walk_back(client, caller.headers, last_page) == seen


def test_page_before_gives_the_rows_before_the_cursor(client, app):
    caller = Caller(client, app)
    tokens = insert_devices(app, 1, user_id=caller.user_id, created_at=utc(2024, 1, 1))
    tokens += insert_devices(app, 1, user_id=caller.user_id, created_at=utc(2024, 1, 2))
    tokens += insert_devices(app, 1, user_id=caller.user_id, created_at=utc(2024, 1, 3))
    second = body(client.get(f"{TOKENS}?page[size]=1", headers=caller.headers), 200)
    second = body(client.get(second["links"]["next"], headers=caller.headers), 200)
    third = body(client.get(second["links"]["next"], headers=caller.headers), 200)
    assert ids(third) == [tokens[2]]
    before = body(client.get(third["links"]["prev"].replace("page%5Bsize%5D=1",
                                                            "page%5Bsize%5D=5"),
                             headers=caller.headers), 200)
    assert ids(before) == tokens[:2]
    assert before["links"]["prev"] is None and before["links"]["next"]


def test_page_total_adds_meta_total(client, app):
    caller = Caller(client, app)
    insert_devices(app, 7, user_id=caller.user_id)
    insert_devices(app, 2, user_id=caller.user_id, environment="sandbox")
    document = body(client.get(f"{TOKENS}?page[size]=2&page[total]=true",
                               headers=caller.headers), 200)
    assert document["meta"] == {"total": 9}
    document = body(client.get(document["links"]["next"], headers=caller.headers), 200)
    assert document["meta"] == {"total": 9}
    document = body(client.get(f"{TOKENS}?filter[is_production]=false&page[total]=true",
                               headers=caller.headers), 200)
    assert document["meta"] == {"total": 2}
    assert "meta" not in body(client.get(f"{TOKENS}?page[total]=false",
                                         headers=caller.headers), 200)
    error_of(client.get(f"{TOKENS}?page[total]=yes", headers=caller.headers), 400)


def _b64(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("cursor", [
    "not-a-cursor!", "", _b64(["2024-01-01T00:00:00+00:00"]),
    _b64(["yesterday", "00000000-0000-0000-0000-000000000000"]),
    _b64(["2024-01-01T00:00:00+00:00", "not-a-uuid"]), _b64({"a": 1}), _b64([1, 2]),
])
def test_a_cursor_this_server_did_not_issue_is_400(client, app, cursor):
    caller = Caller(client, app)
    insert_devices(app, 2, user_id=caller.user_id)
    for parameter in ("page[after]", "page[before]"):
        response = client.get(TOKENS, headers=caller.headers,
                              query_string={parameter: cursor, "page[size]": "1"})
        assert error_of(response, 400)["source"] == {"parameter": parameter}


def test_page_after_and_before_together_are_400(client, app):
    caller = Caller(client, app)
    insert_devices(app, 3, user_id=caller.user_id)
    first = body(client.get(f"{TOKENS}?page[size]=1", headers=caller.headers), 200)
    cursor = first["links"]["next"].rpartition("page%5Bafter%5D=")[2]
    response = client.get(f"{TOKENS}?page[after]={cursor}&page[before]={cursor}",
                          headers=caller.headers)
    error_of(response, 400)


# -- filters ----------------------------------------------------------------------------


def test_token_filters(client, app):
    caller = Caller(client, app)
    sandbox = register_token(client, caller.session_id, is_production=False)
    voip = register_token(client, caller.session_id, is_voip=True)
    other_app = register_token(client, caller.session_id, bundle_id="com.example.other")
    invalidated = register_token(client, caller.session_id, is_invalidated=True)
    for query, expected in (
        ("filter[is_production]=false", [sandbox]),
        ("filter[is_voip]=true", [voip]),
        ("filter[bundle_id]=com.example.other", [other_app]),
        ("filter[is_invalidated]=true", [invalidated]),
        ("filter[is_invalidated]=false&filter[is_voip]=false&filter[is_production]=true",
         [other_app]),
    ):
        assert ids(body(client.get(f"{TOKENS}?{query}", headers=caller.headers),
                        200)) == expected, query


@pytest.mark.parametrize("query", ["filter[is_voip]=yes", "filter[is_voip]=1",
                                   "filter[token]=abc", "filter[user]=x",
                                   "filter[is_voip][eq]=true"])
def test_bad_or_unknown_filters_are_400(client, app, query):
    caller = Caller(client, app)
    response = client.get(f"{TOKENS}?{query}", headers=caller.headers)
    assert error_of(response, 400)["source"]["parameter"].startswith("filter[")


def test_filter_users_by_username(client, app):
    caller, other = Caller(client, app), Caller(client, app)
    client.patch(f"/api/users/{other.user_id}", headers=other.headers, json={
        "data": {"type": "users", "id": other.user_id, "attributes": {"username": "ada"}}})
    for value in ("ada", "ADA"):
        document = body(client.get(f"/api/users?filter[username]={value}",
                                   headers=caller.headers), 200)
        assert ids(document) == [other.user_id]
    assert body(client.get("/api/users?filter[username]=nobody", headers=caller.headers),
                200)["data"] == []


# -- relationship and related endpoints: the resource's own authorization ----------------


def test_another_users_devices_are_403(client, app):
    owner, other = Caller(client, app), Caller(client, app)
    register_token(client, owner.session_id)
    for path in (f"/api/users/{owner.user_id}/relationships/devices",
                 f"/api/users/{owner.user_id}/devices"):
        error_of(client.get(path, headers=other.headers), 403)
    response = client.delete(f"/api/users/{owner.user_id}/relationships/devices",
                             headers=other.headers, data=json.dumps({"data": []}))
    error_of(response, 403)
    user = body(client.get(f"/api/users/{owner.user_id}?include=devices",
                           headers=other.headers), 200)
    assert "data" not in user["data"]["relationships"]["devices"]
    assert user["included"] == []


def test_another_users_token_is_404_everywhere(client, app):
    owner, other = Caller(client, app), Caller(client, app)
    token = register_token(client, owner.session_id)
    for suffix in ("", "/relationships/user", "/user", "/relationships/session", "/session"):
        error_of(client.get(f"{TOKENS}/{token}{suffix}", headers=other.headers), 404)


def test_a_session_the_caller_does_not_hold_is_403_and_never_shown(client, app):
    phone = random_phone()
    first_session, _user_id = log_in(client, app, phone)
    token = register_token(client, first_session)
    second_session, _same_user = log_in(client, app, phone)
    headers = bearer(second_session)
    resource = body(client.get(f"{TOKENS}/{token}", headers=headers), 200)["data"]
    assert "data" not in resource["relationships"]["session"]
    for suffix in ("/relationships/session", "/session"):
        response = client.get(f"{TOKENS}/{token}{suffix}", headers=headers)
        assert first_session not in response.get_data(as_text=True)
        error_of(response, 403)
    # the holder sees it
    linkage = body(client.get(f"{TOKENS}/{token}/relationships/session",
                              headers=bearer(first_session)), 200)["data"]
    assert linkage == {"type": "sessions", "id": first_session}


def test_relationship_endpoints_need_a_session(client, app):
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    for path in (f"/api/users/{caller.user_id}/relationships/devices",
                 f"/api/users/{caller.user_id}/devices", f"{TOKENS}/{token}/user",
                 f"/api/sessions/{caller.session_id}/relationships/user"):
        error_of(client.get(path, headers={"Authorization": None}), 401)


def test_another_session_is_404(client, app):
    caller, other = Caller(client, app), Caller(client, app)
    for suffix in ("", "/user", "/relationships/user"):
        error_of(client.get(f"/api/sessions/{other.session_id}{suffix}",
                            headers=caller.headers), 404)


def test_a_users_devices_page_like_any_collection(client, app):
    caller = Caller(client, app)
    tokens = insert_devices(app, 7, user_id=caller.user_id)
    url = f"/api/users/{caller.user_id}/devices?page[size]=3&page[total]=true"
    pages, seen, _last = walk(client, caller.headers, url)
    assert pages == 3 and sorted(seen) == sorted(str(pk) for pk in
                                                 device_ids(app, tokens).values())
    document = body(client.get(url, headers=caller.headers), 200)
    assert document["meta"] == {"total": 7}
    document = body(client.get(f"/api/users/{caller.user_id}/devices?filter[is_voip]=true",
                               headers=caller.headers), 200)
    assert document["data"] == []


def test_detaching_devices_stops_them_belonging_to_the_user(client, app):
    caller = Caller(client, app)
    kept, detached = (register_token(client, caller.session_id) for _ in range(2))
    device_id = {token: str(pk) for token, pk in device_ids(app, [kept, detached]).items()}
    response = client.delete(f"/api/users/{caller.user_id}/relationships/devices",
                             headers=caller.headers, data=json.dumps(
                                 {"data": [{"type": "devices", "id": device_id[detached]}]}))
    assert response.status_code == 204
    assert ids(body(client.get(TOKENS, headers=caller.headers), 200)) == [kept]
    assert ids(body(client.get(f"/api/users/{caller.user_id}/devices",
                               headers=caller.headers), 200)) == [device_id[kept]]


# -- conditional GET, Vary --------------------------------------------------------------


def test_etag_and_if_none_match(client, app):
    caller = Caller(client, app)
    url = f"/api/users/{caller.user_id}"
    first = client.get(url, headers=caller.headers)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    response = client.get(url, headers={**caller.headers, "If-None-Match": etag})
    assert response.status_code == 304 and response.get_data() == b""
    assert response.headers["ETag"] == etag and "Accept" in response.headers["Vary"]
    client.patch(url, headers=caller.headers, json={
        "data": {"type": "users", "id": caller.user_id, "attributes": {"first_name": "Ada"}}})
    changed = client.get(url, headers={**caller.headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    collection = client.get(TOKENS, headers=caller.headers)
    again = client.get(TOKENS, headers={**caller.headers,
                                        "If-None-Match": collection.headers["ETag"]})
    assert again.status_code == 304


def test_vary_accept_on_every_kind_of_answer(client, app):
    caller = Caller(client, app)
    token = register_token(client, caller.session_id)
    for response in (
        client.get("/api/configs/3.1.23"),
        client.get(f"/api/users/{caller.user_id}", headers=caller.headers),
        client.get("/api/users/nope", headers=caller.headers),
        client.get("/api/configs/3.1.23", headers={"Accept": "application/vnd.api+json; x=1"}),
        client.delete(f"{TOKENS}/{token}", headers=caller.headers),
    ):
        assert "Accept" in response.headers.get("Vary", ""), response.status_code
    assert "ETag" not in client.get("/api/users/nope", headers=caller.headers).headers


# -- query counts: no N+1 on any collection ----------------------------------------------

COLLECTIONS = [
    (TOKENS, ""), (TOKENS, "include=user"), (TOKENS, "include=session"),
    (TOKENS, "include=user,session"), (TOKENS, "include=user.devices,session"),
    (TOKENS, "include=user&fields[apple_device_tokens]=bundle_id"),
    ("/api/users", ""), ("/api/users", "include=devices"),
    ("/api/users", "include=devices.user"),
    ("/api/users/{me}/devices", ""), ("/api/users/{me}/devices", "include=user"),
    ("/api/users/{me}/devices", "include=user.devices"),
    ("/api/devices", ""), ("/api/devices", "include=user"),
    ("/api/devices", "include=user.devices"),
]


@pytest.fixture
def crowd(client, app):
    """A caller with 140 tokens of varied owners and sessions (105 of them the caller's
    own), and 105 other users with tokens of their own: a full page of anything has many
    distinct related rows."""
    caller = Caller(client, app)
    others = insert_users(app, 105)
    own_session = session_pk(app, caller.session_id)
    foreign_sessions = insert_sessions(app, 10, user_id=caller.user_id)
    for index in range(35):  # registered with my session, then their user logged in
        insert_devices(app, 1, user_id=others[index], session_id=own_session)
    for index in range(105):  # mine, registered from my other (hidden) sessions
        insert_devices(app, 1, user_id=caller.user_id,
                       session_id=foreign_sessions[index % 10])
    for user_id in others:
        insert_devices(app, 2, user_id=user_id)
    return caller


def _statements(client, app, headers, url):
    client.get(url, headers=headers)  # warm: nothing first-request-only is counted
    with counted_statements(app) as statements:
        document = body(client.get(url, headers=headers), 200)
    return statements, document


@pytest.mark.parametrize(("path", "query"), COLLECTIONS)
def test_a_page_costs_the_same_number_of_queries_whatever_its_size(client, app, crowd,
                                                                     path, query):
    path = path.replace("{me}", crowd.user_id)
    separator = "&" if query else ""
    small, small_document = _statements(client, app, crowd.headers,
                                        f"{path}?{query}{separator}page[size]=5")
    large, large_document = _statements(client, app, crowd.headers,
                                        f"{path}?{query}{separator}page[size]=100")
    assert len(small_document["data"]) == 5 and len(large_document["data"]) == 100
    # The caller's own devices (a bounded page and its count) are read only when the
    # caller is among the included users: two statements at most, whatever the page size.
    assert len(small) <= len(large) <= len(small) + 2, "\n".join(large)


def test_a_hundred_tokens_with_user_and_session_take_a_few_queries(client, app, crowd):
    statements, document = _statements(client, app, crowd.headers,
                                       f"{TOKENS}?include=user,session&page[size]=100")
    assert len(document["data"]) == 100
    users = {item["id"] for item in document["included"] if item["type"] == "users"}
    linked = {item["relationships"]["user"]["data"]["id"] for item in document["data"]}
    assert users == linked and len(users) > 30  # the caller and many others
    selects = [statement for statement in statements if statement.lstrip().startswith("SELECT")]
    # the caller's session, the page, the users, the sessions, and the caller's own
    # devices linkage (a bounded page and its count)
    assert len(selects) == 6, "\n".join(statements)
    assert len(statements) <= 8, "\n".join(statements)
