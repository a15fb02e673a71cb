"""``/api/devices`` against the real service (gunicorn, 3 workers, 2 threads each): a token
registered at once through both views by different users, many rounds, on SQLite and
PostgreSQL; and write-only members that never reach a response or a log line."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Credential, Device
from app.security.crypto import digest
from tests import test_races
from tests.factories import last_code, new_token, random_phone

iphones, race = test_races.iphones, test_races.race  # the race tests' fixtures

pytestmark = pytest.mark.slow

ROUNDS = 40
PUSH_TO_START = "5e" * 40


def registration(token, **attributes):
    return {"data": {"type": "devices", "attributes": {
        "channel": "ios_push", "token": token, "app_version": "2.1.0", **attributes}}}


def _logged_in(iphones, app):
    iphone = iphones()
    return iphone, iphone.log_in(random_phone(), lambda phone: last_code(app, phone))


def _rows(app, token):
    """(user id, the digest of the session id) of every row holding ``token``."""
    with app.app_context():
        try:
            return [tuple(row) for row in db.session.execute(
                select(Device.user_id, Credential.secret_digest)
                .outerjoin(Credential, Device.session_id == Credential.id)
                .where(Device.token == token)).all()]
        finally:
            db.session.remove()


def _installation(app, user_id, fingerprint):
    with app.app_context():
        try:
            return db.session.execute(select(Device.token).where(
                Device.user_id == uuid.UUID(user_id), Device.fingerprint == fingerprint)).all()
        finally:
            db.session.remove()


def test_one_token_registered_at_once_through_both_views_by_two_users(live, app, iphones,
                                                                      race):
    """Whichever comes last owns the token: one row, one owner (with that owner's session),
    never a 5xx. On odd rounds the devices registration names its installation, so the
    token may move between an installation and a bare token row."""
    alice, alice_id = _logged_in(iphones, app)
    bob, bob_id = _logged_in(iphones, app)
    with app.app_context():
        sessions = {alice_id: digest(alice.session_id), bob_id: digest(bob.session_id)}
    for round_number in range(ROUNDS):
        token = new_token()
        fingerprint = {"fingerprint": f"alice-{round_number}"} if round_number % 2 else {}
        if round_number % 4 == 3:  # the token is already someone's
            assert bob.patch_token(token).status_code == 200

        registered, patched = race(
            lambda token=token, extra=fingerprint: alice.request(
                "POST", "/api/devices", registration(token, **extra)),
            lambda token=token: bob.patch_token(token))

        statuses = (registered.status_code, patched.status_code)
        assert all(status < 500 for status in statuses), (registered.text, patched.text)
        assert registered.status_code in (200, 201) and patched.status_code == 200, statuses
        rows = _rows(app, token)
        assert len(rows) == 1, f"round {round_number}: {rows}"
        ((owner, session),) = rows
        assert str(owner) in sessions and session == sessions[str(owner)], round_number
        if fingerprint:  # Alice's installation exists; it holds the token iff she owns it
            ((held,),) = _installation(app, alice_id, fingerprint["fingerprint"])
            assert (held == token) == (str(owner) == alice_id), round_number


def test_one_token_registered_at_once_by_two_installations(live, app, iphones,
                                                           race):
    """Two users' installations claim one token at once: it ends with one of them, the
    other installation keeps its row without it."""
    alice, alice_id = _logged_in(iphones, app)
    bob, bob_id = _logged_in(iphones, app)
    for round_number in range(ROUNDS // 2):
        token = new_token()
        first, second = race(
            lambda token=token: alice.request("POST", "/api/devices", registration(
                token, fingerprint="alice-phone")),
            lambda token=token: bob.request("POST", "/api/devices", registration(
                token, fingerprint="bob-phone")))
        assert {first.status_code, second.status_code} <= {200, 201}, (first.text,
                                                                        second.text)
        ((owner, _session),) = _rows(app, token)
        holders = {user_id: _installation(app, user_id, f"{name}-phone")[0][0]
                   for user_id, name in ((alice_id, "alice"), (bob_id, "bob"))}
        assert holders[str(owner)] == token, round_number
        assert [held for held in holders.values() if held == token] == [token]


def test_write_only_members_reach_no_response_and_no_log(live, app, iphones):
    iphone, user_id = _logged_in(iphones, app)
    token = new_token()
    since = live.log_size()
    access_log = Path(live.env["GUNICORN_ACCESS_LOG"])
    access_since = access_log.stat().st_size if access_log.exists() else 0
    made = iphone.request("POST", "/api/devices", registration(
        token, fingerprint="phone-1", live_activity_push_to_start_token=PUSH_TO_START))
    device_id = made.json()["data"]["id"]
    url = f"/api/devices/{device_id}"
    change = {"data": {"type": "devices", "id": device_id,
                       "attributes": {"live_activity_push_to_start_token": PUSH_TO_START}}}
    responses = [
        made,
        iphone.request("POST", "/api/devices", registration(token.upper())),
        iphone.request("GET", "/api/devices?include=user.devices"),
        iphone.request("GET", f"{url}?filter[token]={token}"),  # refused: no such filter
        iphone.request("PATCH", url, change),
        iphone.request("PATCH", url, {"data": {**change["data"], "attributes": {
            "token": token}}}),
        iphone.request("POST", "/api/devices", registration(token, environment=token)),
        iphone.request("GET", f"/api/users/{user_id}/devices"),
    ]
    assert [response.status_code for response in responses] == [
        201, 200, 200, 400, 200, 400, 400, 200]
    for response in responses:
        text = response.text.lower()
        assert token not in text and PUSH_TO_START not in text, response.text
    # Poparazzi's view names the token in its URLs (its id): those reach the logs redacted
    assert iphone.request("DELETE", f"/api/apple_device_tokens/{token}").status_code == 204
    logged = live.logs(since, limit=10**7)
    logged += access_log.read_text(errors="replace")[access_since:] if access_log.exists() \
        else ""
    assert "/api/devices" in logged  # the requests were logged, the secrets were not
    assert token not in logged.lower() and PUSH_TO_START not in logged, logged[-3000:]


CROWD = 10


def test_a_crowd_registering_one_new_token_with_fingerprints(live, app, iphones):
    """Ten users register one new token at once, each from their own installation, ten
    rounds: every answer is a 200 or 201, one row holds the token, and no log line names
    the token (a unique violation's DETAIL would)."""
    crowd = [_logged_in(iphones, app) for _ in range(CROWD)]
    since = live.log_size()
    with ThreadPoolExecutor(CROWD) as pool:
        for round_number in range(CROWD):
            token = new_token()
            barrier = threading.Barrier(CROWD, timeout=test_races.TIMEOUT)

            def register(member, token=token, barrier=barrier):
                (iphone, _user_id), number = member
                barrier.wait()
                return iphone.request("POST", "/api/devices", registration(
                    token, fingerprint=f"phone-{number}"))

            answers = list(pool.map(register, zip(crowd, range(CROWD), strict=True)))
            statuses = [answer.status_code for answer in answers]
            assert set(statuses) <= {200, 201}, [(a.status_code, a.text[:300]) for a in answers]
            assert len(_rows(app, token)) == 1, round_number
            logged = live.logs(since, limit=10**7)
            assert token not in logged.lower(), logged[-3000:]
