"""A webhook endpoint's signing secret follows its owner: a URL registered again by
another user (the row moves to them) gets a new secret, shown once to the new owner, and
the secret the former owner knows signs nothing any more — on /api/devices and seed 003's
/v1/devices, on the one-statement path and the claiming path (a fingerprint), and when
two users register one URL at the same moment against the real service."""

import uuid

import pytest
import standardwebhooks
from sqlalchemy import select

from app.extensions import db
from app.models import Device
from app.security import crypto
from tests import test_compat_cross_surface, test_races
from tests.compat_helpers import send
from tests.conftest import free_port
from tests.factories import bearer
from tests.live_server import LiveServer
from tests.test_dispatch import one_notification
from tests.test_races import _logged_in, _no_server_error
from tests.test_webhook_channel import send_webhooks
from tests.webhook_receiver import WebhookReceiver

people = test_compat_cross_surface.people
iphones, race = test_races.iphones, test_races.race  # two clients' requests at once


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


def via_json_api(client, who, url, **attributes):
    """The secret shown by registering ``url`` on /api/devices (None: none shown), and the
    device's id."""
    response = client.post("/api/devices", headers=bearer(who.session), json={
        "data": {"type": "devices", "attributes": {"channel": "webhook", "token": url,
                                                     **attributes}}})
    assert response.status_code in (200, 201), response.get_json()
    document = response.get_json()["data"]
    return document["attributes"].get("signing_secret"), document["id"]


def via_seed_003(client, who, url):
    response = send(client, "POST", "/v1/devices", {"channel": "webhook", "token": url},
                    bearer(who.session))
    assert response.status_code == 201, response.get_json()
    document = response.get_json()
    return document.get("signing_secret"), document["device"]["id"]


SURFACES = {"/api/devices": via_json_api, "/v1/devices": via_seed_003}


def stored(app, url):
    """(owner's user id, the unsealed secret) of the device with ``url``."""
    with app.app_context():
        user_id, sealed = db.session.execute(
            select(Device.user_id, Device.signing_secret).where(Device.token == url)).one()
        db.session.remove()
    return str(user_id), sealed and crypto.unseal(sealed, app.config["SECRET_KEY"])


@pytest.mark.parametrize("surface", SURFACES)
def test_a_url_taken_by_another_user_gets_a_new_secret(client, app, people, receiver,
                                                       surface):
    register = SURFACES[surface]
    alice, bob = people(), people()
    url = receiver.url(f"/hook-{uuid.uuid4().hex}")

    alices, _ = register(client, alice, url)
    bobs, _ = register(client, bob, url)

    assert alices and bobs and bobs != alices
    assert stored(app, url) == (bob.user, bobs)
    assert register(client, bob, url)[0] is None  # the owner again: kept, not shown
    # back to alice: a new one again, not the one she had
    alices_again, _ = register(client, alice, url)
    assert alices_again not in (None, alices, bobs)
    assert stored(app, url) == (alice.user, alices_again)


def test_a_url_adopted_by_another_users_installation_gets_a_new_secret(client, app, people,
                                                                       receiver):
    alice, bob = people(), people()
    url = receiver.url("/hook")
    alices, _ = via_json_api(client, alice, url)

    bobs, _ = via_json_api(client, bob, url, fingerprint="bobs-server")

    assert bobs not in (None, alices)
    assert stored(app, url) == (bob.user, bobs)


@pytest.mark.committed
def test_the_former_owners_secret_signs_nothing(client, app, people, receiver):
    alice, bob = people(), people()
    url = receiver.url("/hook")
    alices, _ = via_seed_003(client, alice, url)
    bobs, device_id = via_json_api(client, bob, url)
    receiver.secrets["/hook"] = bobs

    one_notification(app, devices=[{"id": uuid.UUID(device_id), "channel": "webhook"}],
                     content={"alert": "for bob"})
    assert send_webhooks(app)["sent"] == 1

    (received,) = receiver.received()
    assert received.verified
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(alices).verify(received.raw, received.headers)


# -- racing registrations against the real service ---------------------------------------


ROUNDS = 25


@pytest.fixture(scope="module")
def live_server(service_env, tmp_path_factory):
    """The service with this machine's receivers allowed as webhook endpoints."""
    env = {**service_env, "GUNICORN_THREADS": "2", "WEBHOOK_ALLOW_HTTP": "true",
           "WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8"}
    server = LiveServer(free_port(), env, tmp_path_factory.mktemp("gunicorn"), workers=3)
    server.start()
    yield server
    server.stop()


def live_register(iphone, url, seed_003):
    """Register ``url`` as ``iphone``'s user on one surface: the secret shown, or None."""
    if seed_003:
        response = iphone.http.post(iphone.base_url + "/v1/devices", timeout=iphone.timeout,
                                    json={"channel": "webhook", "token": url},
                                    headers={"Authorization": f"Bearer {iphone.session_id}"})
        return response, response.ok and response.json().get("signing_secret")
    response = iphone.request("POST", "/api/devices", {"data": {
        "type": "devices", "attributes": {"channel": "webhook", "token": url}}})
    return response, response.ok and \
        response.json()["data"]["attributes"].get("signing_secret")


@pytest.mark.slow
def test_two_users_taking_one_url_at_once_each_know_only_their_own(live, app, iphones,
                                                                    race):
    """Whatever the order: the URL ends with one of the two, who was shown the secret it
    is signed with; the other was shown nothing or a secret no longer stored; nobody
    else's secret is kept."""
    first_owner, _ = _logged_in(iphones, app)
    racers = [_logged_in(iphones, app) for _ in range(2)]
    for round_number in range(ROUNDS):
        url = f"http://127.0.0.1:9/hook-{round_number}-{uuid.uuid4().hex}"
        seed_003 = round_number % 2 == 1
        _, original = live_register(first_owner, url, seed_003)
        answers = race(*(lambda iphone=iphone, url=url, seed_003=seed_003:
                         live_register(iphone, url, seed_003) for iphone, _ in racers))

        _no_server_error(*(response for response, _ in answers))
        assert all(response.status_code in (200, 201) for response, _ in answers)
        owner, secret = stored(app, url)
        shown = {user_id: revealed for (_, user_id), (_, revealed) in zip(racers, answers,
                                                                          strict=True)}
        assert owner in shown, f"round {round_number}: owned by {owner}"
        assert secret is not None and shown[owner] == secret, f"round {round_number}"
        others = [revealed for user_id, revealed in shown.items() if user_id != owner]
        assert secret not in (original, *others), f"round {round_number}"
