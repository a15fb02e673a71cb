"""GET /api/audience_counts?filter[audience]=…: how many devices an audience matches now,
exact up to 10,000 and then an estimate flagged as such; nothing is written."""

import json
import uuid

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Notification
from app.resources import audience_counts
from tests.jsonapi_helpers import body, error_of
from tests.push_rows import make_devices, make_fcm_devices
from tests.test_audiences import broadcaster, connected, sender, subscribe  # noqa: F401


def asked(client, headers, audience, **filters):
    params = {"filter[audience]": audience if isinstance(audience, str)
              else json.dumps(audience),
              **{f"filter[{name}]": value for name, value in filters.items()}}
    return client.get("/api/audience_counts", query_string=params, headers=headers)


def test_an_audience_is_counted_exactly_and_nothing_is_written(client, app, sender):  # noqa: F811
    with connected(app) as connection:
        fans = make_devices(connection, 4) + make_fcm_devices(connection, 3)
        subscribe(connection, fans, "news")
        make_devices(connection, 2, app_version="2.10")
    counted = body(asked(client, sender, {"topics": ["news"]}), 200)["data"]
    assert counted["type"] == "audience_counts"
    assert counted["attributes"] == {"audience": {"topics": ["news"]}, "push_type": "alert",
                                     "devices": 7, "is_estimate": False, "at_least": 7}
    where = {"topics": ["news"], "where": {"channel": ["fcm"]}}
    assert body(asked(client, sender, where), 200)["data"]["attributes"]["devices"] == 3
    assert body(asked(client, sender, {"topics": ["news"]}, push_type="voip"),
                200)["data"]["attributes"]["devices"] == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_past_the_exact_limit_it_is_an_estimate(client, app, broadcaster, monkeypatch):  # noqa: F811
    monkeypatch.setattr(audience_counts, "EXACT_UP_TO", 10)
    monkeypatch.setattr(audience_counts, "SAMPLE_SIZE", 60)
    monkeypatch.setattr(audience_counts, "SCANNED_UP_TO", 30)
    with connected(app) as connection:
        make_devices(connection, 60, app_version="3.0")
        make_devices(connection, 20, app_version="1.0")
    counted = body(asked(client, broadcaster, {"all": True}), 200)["data"]["attributes"]
    assert counted["is_estimate"] is True and counted["at_least"] == 11
    assert 11 <= counted["devices"] <= 80
    versioned = {"all": True, "where": {"app_version": {"gte": "2"}}}
    counted = body(asked(client, broadcaster, versioned), 200)["data"]["attributes"]
    assert counted["is_estimate"] is True and counted["at_least"] <= 30
    assert counted["at_least"] <= counted["devices"] <= 80


@pytest.mark.parametrize("audience, words", [
    ("{not json", "as JSON"),
    ("[" * 5000 + "]" * 5000, "as JSON"),
    ('{"topics": ["a"], "x": NaN}', "as JSON"),
    ({"condition": "'a' in topics &&"}, "audience/condition: Expected a quoted topic name"),
    ({"topics": ["a"], "where": {"app_version": {"gte": "x"}}},
     "audience/where/app_version/gte: A version"),
])
def test_a_bad_audience_filter_is_a_400_naming_the_filter(client, sender, audience, words):  # noqa: F811
    error = error_of(asked(client, sender, audience), 400)
    assert error["source"] == {"parameter": "filter[audience]"}
    assert words in error["detail"]


def test_counting_everyone_needs_the_broadcast_scope(client, sender):  # noqa: F811
    assert error_of(asked(client, sender, {"all": True}), 403)["code"] == "INSUFFICIENT_SCOPE"


def test_an_unknown_push_type_and_a_missing_audience_are_400s(client, sender):  # noqa: F811
    error = error_of(asked(client, sender, {"topics": ["a"]}, push_type="sms"), 400)
    assert error["source"] == {"parameter": "filter[push_type]"}
    error = error_of(client.get("/api/audience_counts", headers=sender), 400)
    assert error["source"] == {"parameter": "filter[audience]"}


def test_the_same_audience_has_the_same_id(client, sender):  # noqa: F811
    first = body(asked(client, sender, {"topics": ["a", "b"]}), 200)["data"]["id"]
    assert body(asked(client, sender, {"topics": ["a", "b"]}), 200)["data"]["id"] == first
    assert uuid.UUID(first)


def test_it_takes_filters_but_no_paging_or_sort_and_openapi_lists_only_those(
        client, app, sender):  # noqa: F811
    for parameter, value in (("page[size]", "5"), ("sort", "devices"), ("page[after]", "x")):
        error = error_of(client.get("/api/audience_counts", headers=sender, query_string={
            "filter[audience]": '{"topics": ["a"]}', parameter: value}), 400)
        assert error["source"] == {"parameter": parameter}
    operation = client.get("/openapi.json").get_json()["paths"]["/api/audience_counts"]["get"]
    assert sorted(parameter["name"] for parameter in operation["parameters"]) == [
        "fields[audience_counts]", "filter[audience]", "filter[push_type]", "include"]
