"""The device registry's rules, called directly: no HTTP, no wire format."""

import pytest

from app import policies
from app.errors import Forbidden, InvalidAttribute, InvalidQueryParameter, NotFound, Where
from app.extensions import db
from app.models import Channel, Credential, Device
from app.resources import devices
from app.resources.listing import Listing, PageRequest
from app.resources.sessions import log_in, log_out_device
from tests.factories import make_session, make_user, new_token

APNS = Channel.IOS_PUSH
ATTRIBUTES = {"bundle_id": "TTYL.Inc.Poparazzi", "app_version": "3.1.23",
              "build_number": "839", "environment": "production", "is_voip": False}


@pytest.mark.parametrize(("raw", "token"), [
    ("AB" * 32, "ab" * 32),
    ("<" + " ".join(["abcd1234"] * 8) + ">", "abcd1234" * 8),
    ("0f" * 100, "0f" * 100),
])
def test_tokens_are_normalised(raw, token):
    assert devices.normalise_token(APNS, raw) == token


@pytest.mark.parametrize("raw", ["zz" * 32, "a" * 65, "ab" * 31, "ab" * 101, ""])
def test_a_malformed_token_names_where_it_was_sent(raw):
    with pytest.raises(InvalidAttribute) as caught:
        devices.normalise_token(APNS, raw, field="id", where=Where.URL)
    assert (caught.value.code, caught.value.field, caught.value.where) == (
        "INVALID_DEVICE_TOKEN", "id", Where.URL)


def test_register_creates_then_refreshes_one_row(app_context):
    _session, principal = make_session()
    token = new_token()
    device, created = devices.register(principal, APNS, token.upper(), ATTRIBUTES)
    assert created and device.token == token and device.session_id == principal.session_id
    again, created = devices.register(principal, APNS, token, {"app_version": "3.2"})
    assert not created and again.id == device.id
    assert (again.app_version, again.bundle_id) == ("3.2", "TTYL.Inc.Poparazzi")
    assert Device.query.filter_by(token=token).count() == 1


def test_a_token_registered_by_another_session_moves_to_it(app_context):
    first_user, second_user = make_user(), make_user()
    _first, first = make_session(first_user)
    _second, second = make_session(second_user)
    token = new_token()
    devices.register(first, APNS, token, ATTRIBUTES)
    device, created = devices.register(second, APNS, token, ATTRIBUTES)
    assert not created
    assert (device.user_id, device.session_id) == (second_user.id, second.session_id)
    with pytest.raises(NotFound):
        devices.get_owned(first, APNS, token)


def test_a_client_reported_invalid_token_is_marked_and_registering_again_revives_it(
        app_context):
    _session, principal = make_session()
    token = new_token()
    device, _ = devices.register(principal, APNS, token, {"is_invalidated": True})
    assert device.is_invalidated and device.invalidated_reason == devices.CLIENT_REPORTED
    device, _ = devices.register(principal, APNS, token, {})
    assert not device.is_invalidated and device.invalidated_reason is None


def test_logging_in_gives_the_sessions_devices_to_the_user(app_context):
    session, principal = make_session()
    device, _ = devices.register(principal, APNS, new_token(), ATTRIBUTES)
    user = make_user()
    log_in(session, user)
    assert Device.query.filter_by(token=device.token).one().user_id == user.id


def test_a_device_logged_out_belongs_to_nobody_and_its_session_ends(app_context):
    user = make_user()
    session, principal = make_session(user)
    token, other_token = new_token(), new_token()
    devices.register(principal, APNS, token, ATTRIBUTES)
    devices.register(principal, APNS, other_token, ATTRIBUTES)
    log_out_device(APNS, token, "192.0.2.1")
    rows = Device.query.filter(Device.token.in_([token, other_token])).all()
    assert {(row.user_id, row.session_id) for row in rows} == {(None, None)}
    assert db.session.get(Credential, session.id) is None
    log_out_device(APNS, "not a token", "192.0.2.1")  # names no device: nothing to do


def test_only_the_owner_deletes(app_context):
    _mine, me = make_session(make_user())
    _theirs, them = make_session(make_user())
    token = new_token()
    devices.register(me, APNS, token, ATTRIBUTES)
    with pytest.raises(NotFound):
        devices.delete_owned(them, APNS, token)
    devices.delete_owned(me, APNS, token)
    assert Device.query.filter_by(token=token).count() == 0


def test_listing_filters_orders_and_pages(app_context):
    _session, principal = make_session(make_user())
    tokens = [devices.register(principal, APNS, new_token(),
                               {**ATTRIBUTES, "is_voip": index % 2 == 0})[0].token
              for index in range(5)]
    voip = devices.list_owned(principal, APNS, Listing(filters={"is_voip": "true"}))
    assert [device.token for device in voip.items] == tokens[0::2]
    first = devices.list_owned(principal, APNS, Listing(
        order=(("created_at", True),), page=PageRequest(size=2, want_total=True)))
    assert [device.token for device in first.items] == tokens[:-3:-1] and first.total == 5
    rest = devices.list_owned(principal, APNS, Listing(
        order=(("created_at", True),), page=PageRequest(size=10, after=first.next_cursor)))
    assert [device.token for device in rest.items] == tokens[-3::-1]
    with pytest.raises(InvalidQueryParameter) as caught:
        devices.list_owned(principal, APNS, Listing(filters={"is_voip": "yes"}))
    assert (caught.value.field, caught.value.where) == ("is_voip", Where.FILTER)


def test_a_users_devices_are_listed_to_that_user_only(app_context):
    user = make_user()
    _session, owner = make_session(user)
    _other, stranger = make_session(make_user())
    devices.register(owner, APNS, new_token(), ATTRIBUTES)
    assert len(devices.list_of_user(owner, user, APNS, Listing()).items) == 1
    with pytest.raises(Forbidden):
        devices.list_of_user(stranger, user, APNS, Listing())


def test_detaching_from_a_user_names_the_bad_item(app_context):
    user = make_user()
    _session, owner = make_session(user)
    with pytest.raises(InvalidAttribute) as caught:
        devices.detach_from_user(owner, user, APNS, [new_token(), "nope"])
    assert (caught.value.field, caught.value.where) == ("1", Where.ITEM)


def test_policies(app_context):
    user = make_user()
    session, principal = make_session(user)
    assert policies.is_self(principal, user.id)
    assert not policies.is_self(principal, make_user().id)
    assert not policies.is_self(None, user.id)
    assert policies.holds_session(principal, session.id)
    assert not policies.holds_session(principal, session.id + 1)
    assert policies.presented_session(principal, principal.secret)
    assert not policies.presented_session(principal, principal.secret.upper() + "x")


def test_an_installation_is_found_by_its_fingerprint_or_made(app_context):
    user = make_user()
    first = devices.installation(user.id, "fingerprint-1")
    again = devices.installation(user.id, "fingerprint-1")
    other = devices.installation(user.id, "fingerprint-2")
    assert first.id == again.id != other.id and first.token is None
    assert devices.installation(make_user().id, "fingerprint-1").id != first.id
