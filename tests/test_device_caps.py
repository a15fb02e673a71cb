"""Caps on the devices one user and one session may have: a registration beyond them
deletes the owner's least recently registered devices."""

import uuid

import pytest
from sqlalchemy import func, select

from app.config import Config, ConfigurationError
from app.extensions import db
from app.models import Device
from tests.factories import (
    bearer,
    create_session,
    log_in,
    log_in_with,
    random_phone,
    register_token,
)


@pytest.fixture
def caps(app, monkeypatch):
    def set_caps(per_user, per_session):
        monkeypatch.setitem(app.config, "DEVICES_PER_USER_MAX", per_user)
        monkeypatch.setitem(app.config, "DEVICES_PER_SESSION_MAX", per_session)
    return set_caps


def registered(client, session_id, count):
    return [register_token(client, session_id) for _ in range(count)]


def listed_tokens(client, session_id):
    response = client.get("/api/apple_device_tokens?page[size]=100",
                          headers=bearer(session_id))
    assert response.status_code == 200, response.get_json()
    return {item["id"] for item in response.get_json()["data"]}


def stored_tokens(app):
    with app.app_context():
        return set(db.session.scalars(select(Device.token)))


def devices_of_user(app, user_id):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Device)
                                 .where(Device.user_id == uuid.UUID(user_id)))


def test_one_more_than_the_session_cap_deletes_the_oldest(client, app, caps):
    caps(per_user=50, per_session=3)
    session_id = create_session(client)
    tokens = registered(client, session_id, 4)
    assert listed_tokens(client, session_id) == set(tokens[1:])
    assert stored_tokens(app) == set(tokens[1:])


def test_registering_again_makes_a_device_the_newest(client, app, caps):
    caps(per_user=50, per_session=3)
    session_id = create_session(client)
    first, _second, third = registered(client, session_id, 3)
    register_token(client, session_id, first)
    fourth = register_token(client, session_id)
    assert listed_tokens(client, session_id) == {first, third, fourth}


def test_one_more_than_the_user_cap_deletes_the_users_oldest(client, app, caps):
    caps(per_user=3, per_session=10)
    session_id, user_id = log_in(client, app)
    tokens = registered(client, session_id, 4)
    assert listed_tokens(client, session_id) == set(tokens[1:])
    assert devices_of_user(app, user_id) == 3


def test_the_caps_hold_across_a_users_sessions(client, app, caps):
    caps(per_user=4, per_session=2)
    phone_number = random_phone()
    sessions = [log_in(client, app, phone_number)[0] for _ in range(3)]
    user_id = log_in_with(client, app, sessions[0], phone_number)
    tokens = {session_id: registered(client, session_id, 3) for session_id in sessions}

    assert devices_of_user(app, user_id) == 4
    # Each session kept its two newest; of those six the user kept the four newest.
    _first, second, third = sessions
    assert stored_tokens(app) == {*tokens[second][1:], *tokens[third][1:]}
    for session_id in sessions:
        assert len(listed_tokens(client, session_id)) == 4  # the user's, seen by each


def test_taking_over_tokens_counts_against_the_new_owner(client, app, caps):
    caps(per_user=50, per_session=2)
    others = [create_session(client) for _ in range(3)]
    moved = [register_token(client, other) for other in others]
    session_id = create_session(client)
    for token in moved:
        register_token(client, session_id, token)
    assert listed_tokens(client, session_id) == set(moved[1:])


def test_logging_in_brings_the_session_devices_within_the_user_cap(client, app, caps):
    caps(per_user=3, per_session=10)
    phone_number = random_phone()
    phone_session, user_id = log_in(client, app, phone_number)
    registered(client, phone_session, 2)
    tablet = create_session(client)
    tablet_tokens = registered(client, tablet, 2)

    assert log_in_with(client, app, tablet, phone_number) == user_id

    assert devices_of_user(app, user_id) == 3
    assert set(tablet_tokens) <= listed_tokens(client, tablet)


@pytest.mark.parametrize("name", ["DEVICES_PER_USER_MAX", "DEVICES_PER_SESSION_MAX"])
def test_a_cap_below_one_is_refused(monkeypatch, name):
    monkeypatch.setenv(name, "0")
    with pytest.raises(ConfigurationError, match=name):
        Config().validate()


def test_a_user_with_many_devices_is_shown_with_one_page_of_them(client, app, caps,
                                                                  monkeypatch):
    caps(per_user=50, per_session=10)
    monkeypatch.setitem(app.config, "PAGE_SIZE_DEFAULT", 2)
    session_id, user_id = log_in(client, app)
    registered(client, session_id, 5)
    response = client.get(f"/api/users/{user_id}?include=devices", headers=bearer(session_id))
    document = response.get_json()
    devices = document["data"]["relationships"]["devices"]
    assert (len(devices["data"]), devices["meta"]["count"]) == (2, 5)
    assert len(document["included"]) == 2
