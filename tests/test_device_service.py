"""The device registry's rules, called directly: no HTTP, no wire format."""

import uuid

import pytest
from sqlalchemy import select

from app.errors import Forbidden, InvalidAttribute, InvalidQueryParameter, NotFound, Where
from app.extensions import db
from app.models import Channel, Credential, Device
from app.resources import devices
from app.resources.listing import Listing, PageRequest
from app.resources.sessions import log_in, log_out_device
from app.security import crypto, policies
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


# -- installations: registration by fingerprint, tokens that move --------------------------

IPHONE = {"app_version": "2.1.0", "device_model": "iPhone15,3", "os_version": "iOS 18.2"}


def _register(principal, token=None, fingerprint=None, **attributes):
    return devices.register(principal, None if token is None else APNS, token,
                            {**IPHONE, **attributes}, fingerprint)


def _row(device_id):
    db.session.expire_all()
    return db.session.get(Device, device_id)


def test_a_fingerprint_finds_the_users_installation_and_keeps_its_id(app_context):
    _session, principal = make_session(make_user())
    made = devices.installation(principal.user_id, "phone-1")  # an auth token's device
    device, created = _register(principal, fingerprint="phone-1", time_zone="Europe/Paris")
    assert not created and device.id == made.id and device.time_zone == "Europe/Paris"
    token = new_token()
    device, created = _register(principal, token, fingerprint="phone-1")
    assert not created and device.id == made.id and device.token == token
    assert device.session_id == principal.session_id


def test_a_token_without_a_fingerprint_is_adopted_by_the_installation(app_context):
    _session, principal = make_session(make_user())
    token = new_token()
    bare, _ = _register(principal, token)
    device, created = _register(principal, token, fingerprint="phone-1")
    assert not created and device.id == bare.id and device.fingerprint == "phone-1"


def test_a_token_moves_to_the_installation_and_a_bare_token_row_goes(app_context):
    _session, principal = make_session(make_user())
    installation, _ = _register(principal, fingerprint="phone-1")
    token = new_token()
    bare, _ = _register(make_session(make_user())[1], token)  # someone else's, no fingerprint
    device, created = _register(principal, token, fingerprint="phone-1")
    assert not created and device.id == installation.id and device.token == token
    assert _row(bare.id) is None
    assert Device.query.filter_by(token=token).count() == 1


def test_a_token_moving_between_users_leaves_the_old_installation_without_it(app_context):
    first, second = make_user(), make_user()
    _s1, alice = make_session(first)
    _s2, bob = make_session(second)
    token = new_token()
    old, _ = _register(alice, token, fingerprint="alice-phone")
    new, created = _register(bob, token, fingerprint="bob-phone")
    assert created and new.id != old.id and new.user_id == second.id
    left = _row(old.id)
    assert (left.user_id, left.fingerprint, left.channel, left.token) == (
        first.id, "alice-phone", None, None)
    assert [row.id for row in Device.query.filter_by(token=token)] == [new.id]


def test_poparazzis_upsert_moves_a_token_off_another_users_installation(app_context):
    """The one-statement path leaves an installation's fingerprint with its user."""
    first, second = make_user(), make_user()
    _s1, alice = make_session(first)
    _s2, bob = make_session(second)
    token = new_token()
    installation, _ = _register(alice, token, fingerprint="alice-phone")
    device, created = devices.register(bob, APNS, token, ATTRIBUTES)
    assert created and device.id != installation.id and device.fingerprint is None
    assert device.user_id == second.id
    assert (_row(installation.id).token, _row(installation.id).fingerprint) == (
        None, "alice-phone")
    # the user's own installation is refreshed in place by the same upsert
    again, created = devices.register(alice, APNS, new_token(), ATTRIBUTES)
    mine, created_mine = _register(alice, again.token, fingerprint="alice-phone")
    assert not created_mine and mine.id == installation.id
    refreshed, created = devices.register(alice, APNS, again.token, {"app_version": "9"})
    assert not created and refreshed.id == installation.id


def test_a_registration_revives_an_invalidated_token_and_refreshes_last_seen(app_context):
    _session, principal = make_session(make_user())
    token = new_token()
    device, _ = devices.register(principal, APNS, token, {"is_invalidated": True})
    seen = device.last_seen_at
    device, _ = _register(principal, token, fingerprint="phone-1", os_version="iOS 19")
    assert not device.is_invalidated and device.invalidated_at is None
    assert device.last_seen_at >= seen and device.os_version == "iOS 19"


def test_a_fingerprint_needs_a_user(app_context):
    _session, anonymous = make_session()
    with pytest.raises(Forbidden) as caught:
        _register(anonymous, new_token(), fingerprint="phone-1")
    assert caught.value.field == "fingerprint"


@pytest.mark.parametrize(("attributes", "field"), [
    ({"token": "ab" * 32}, "channel"),
    ({"channel": "ios_push"}, "token"),
    ({"app_version": "1"}, "token"),
])
def test_a_registration_names_what_it_lacks(app_context, attributes, field):
    _session, principal = make_session(make_user())
    with pytest.raises(InvalidAttribute) as caught:
        devices.register_from_attributes(principal, attributes)
    assert caught.value.field == field


def test_the_live_activity_token_is_sealed_at_rest(app_context):
    _session, principal = make_session(make_user())
    device, _ = _register(principal, fingerprint="phone-1", live_activity_token="la-secret")
    stored = db.session.execute(select(Device.__table__.c.live_activity_token)
                                .where(Device.id == device.id)).scalar_one()
    assert "la-secret" not in stored and crypto.unseal(stored) == "la-secret"
    devices.update_owned(principal, str(device.id), {"live_activity_token": "la-second"})
    stored = db.session.execute(select(Device.__table__.c.live_activity_token)
                                .where(Device.id == device.id)).scalar_one()
    assert "la-second" not in stored and crypto.unseal(stored) == "la-second"


def test_seal_is_authenticated_and_keyed(app):
    with app.app_context():
        sealed = crypto.seal("secret")
        assert crypto.seal("secret") != sealed  # a fresh nonce each time
        assert crypto.unseal(sealed) == "secret"
        tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
        for bad in (tampered, "v0:" + sealed[3:], "secret", "v1:!!"):
            with pytest.raises(ValueError):
                crypto.unseal(bad)
    other = app.config["SECRET_KEY"] + "-rotated"
    with app.app_context():
        app.config["SECRET_KEY"], kept = other, app.config["SECRET_KEY"]
        try:
            with pytest.raises(ValueError):
                crypto.unseal(sealed)
        finally:
            app.config["SECRET_KEY"] = kept


def test_devices_by_id_are_the_owners_only(app_context):
    _mine, me = make_session(make_user())
    _theirs, them = make_session(make_user())
    device, _ = _register(me, new_token(), fingerprint="phone-1")
    for call in (lambda p, i: devices.get_owned_by_id(p, i),
                 lambda p, i: devices.update_owned(p, i, {"os_version": "x"}),
                 devices.delete_owned_by_id):
        for principal, raw_id in ((them, str(device.id)), (me, "not-a-uuid"),
                                  (me, str(uuid.uuid4()))):
            with pytest.raises(NotFound):
                call(principal, raw_id)
    assert _row(device.id).os_version == IPHONE["os_version"]
    assert devices.update_owned(me, str(device.id), {"os_version": "y"}).os_version == "y"
    devices.delete_owned_by_id(me, str(device.id))
    assert _row(device.id) is None


def test_listing_every_channel_latest_seen_first(app_context):
    _session, principal = make_session(make_user())
    made = [_register(principal, new_token())[0].id,
            _register(principal, fingerprint="phone-1")[0].id,
            _register(principal, new_token())[0].id]
    page = devices.list_devices(principal, Listing())
    assert [device.id for device in page.items] == made[::-1]
    page = devices.list_devices(principal, Listing(filters={"channel": "ios_push"}))
    assert {device.id for device in page.items} == {made[0], made[2]}


def test_detaching_by_id_names_the_bad_item(app_context):
    user = make_user()
    _session, owner = make_session(user)
    device, _ = _register(owner, new_token())
    with pytest.raises(InvalidAttribute) as caught:
        devices.detach_ids_from_user(owner, user, [str(device.id), "nope"])
    assert (caught.value.field, caught.value.where) == ("1", Where.ITEM)
    devices.detach_ids_from_user(owner, user, [str(device.id)])
    assert _row(device.id).user_id is None


def test_caps_hold_for_installations(app, app_context):
    user = make_user()
    _session, principal = make_session(user)
    cap = app.config["DEVICES_PER_SESSION_MAX"]
    for index in range(cap + 2):
        _register(principal, fingerprint=f"phone-{index}")
    assert Device.query.filter_by(user_id=user.id).count() == cap
