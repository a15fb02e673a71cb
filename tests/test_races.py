"""Two requests at the same moment against the real service (gunicorn, 3 workers, 2
threads each), many rounds: whatever order the database puts them in, the end state is one
that some order of the two would give, and neither request fails with a 5xx.

On PostgreSQL the requests really interleave; on SQLite ``BEGIN IMMEDIATE`` serialises
them, and the same assertions hold."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Credential, Device
from app.security.crypto import digest
from tests.factories import last_code, new_token, random_phone
from tests.live_server import PoparazziClient

pytestmark = pytest.mark.slow

ROUNDS = 50
TIMEOUT = 30


@pytest.fixture
def race():
    """``race(first, second)``: both called at once from two threads; their results."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        def run(first, second):
            barrier = threading.Barrier(2, timeout=TIMEOUT)

            def at_once(function):
                barrier.wait()
                return function()

            futures = [pool.submit(at_once, function) for function in (first, second)]
            return [future.result(timeout=TIMEOUT) for future in futures]
        yield run


@pytest.fixture
def iphones(live):
    """``iphones()``: a new client of the live server; all closed after the test."""
    made = []

    def new():
        made.append(PoparazziClient(live.url))
        return made[-1]
    yield new
    for iphone in made:
        iphone.close()


def _in_db(app, function):
    with app.app_context():
        try:
            return function(db.session)
        finally:
            db.session.remove()


def _device(app, token):
    """(user_id, session's id as its holder knows it) of the token's row, or None."""
    def read(session):
        row = session.execute(select(Device.user_id, Credential.secret_digest)
                              .outerjoin(Credential, Device.session_id == Credential.id)
                              .where(Device.token == token)).one_or_none()
        return None if row is None else tuple(row)
    return _in_db(app, read)


def _held_by(app, iphone):
    """The digest the database keeps of ``iphone``'s session id."""
    with app.app_context():
        return digest(iphone.session_id)


def _session_exists(app, iphone):
    held = _held_by(app, iphone)
    return _in_db(app, lambda session: session.scalar(
        select(Credential.id).where(Credential.secret_digest == held)) is not None)


def _logged_in(iphones, app):
    iphone = iphones()
    user_id = iphone.log_in(random_phone(), lambda phone: last_code(app, phone))
    return iphone, user_id


def _no_server_error(*responses):
    assert all(r.status_code < 500 for r in responses), [(r.status_code, r.text[:300])
                                                         for r in responses]


def test_token_registration_racing_its_sessions_logout(live, app, iphones, race):
    """Registered before the logout: the logout detached it. After: the session is gone,
    401. Never a device left with the logged-out user, never a 500."""
    for round_number in range(ROUNDS):
        iphone, user_id = _logged_in(iphones, app)
        token = new_token()
        refresh = round_number % 2 == 1  # odd rounds re-register a token the session has
        if refresh:
            assert iphone.patch_token(token).status_code == 200

        registered, logged_out = race(
            lambda iphone=iphone, token=token: iphone.patch_token(token),
            lambda iphone=iphone: iphone.request("DELETE",
                                                 f"/api/sessions/{iphone.session_id}"))

        _no_server_error(registered, logged_out)
        assert logged_out.status_code == 204, logged_out.text
        assert registered.status_code in (200, 401), registered.text
        if registered.status_code == 401:
            assert registered.json()["errors"][0]["code"] == "NOT_AUTHORIZED"
        device = _device(app, token)
        if registered.status_code == 200 or refresh:
            assert device == (None, None), f"round {round_number}: {device}, user {user_id}"
        else:
            assert device is None, f"round {round_number}: {device}"


def test_token_deleted_by_one_user_while_another_registers_it(live, app, iphones, race):
    """The delete came first (204) and the registration made the row again, or the
    registration moved the token first and the delete found nothing of its owner's (404):
    either way the registrant owns the token."""
    owner, _ = _logged_in(iphones, app)
    registrant, registrant_user = _logged_in(iphones, app)
    registrant_session = _held_by(app, registrant)
    for round_number in range(ROUNDS):
        token = new_token()
        assert owner.patch_token(token).status_code == 200

        deleted, registered = race(
            lambda token=token: owner.request("DELETE", f"/api/apple_device_tokens/{token}"),
            lambda token=token: registrant.patch_token(token))

        _no_server_error(deleted, registered)
        assert deleted.status_code in (204, 404), deleted.text
        assert registered.status_code == 200, registered.text
        device = _device(app, token)
        assert device is not None, f"round {round_number}: the registered token is gone"
        assert (str(device[0]), device[1]) == (registrant_user, registrant_session)


def test_code_verified_while_its_session_logs_out(live, app, iphones, race):
    """Logged in before the logout: the logout detached the session's device from the new
    user. After: the code finds no session. No deadlock (503), no device left with the
    user."""
    for round_number in range(ROUNDS):
        iphone = iphones()
        iphone.create_session()
        phone_number = random_phone()
        assert iphone.patch_session(phone_number=phone_number).status_code == 200
        token = new_token()
        assert iphone.patch_token(token).status_code == 200
        code = last_code(app, phone_number)

        verified, logged_out = race(
            lambda iphone=iphone, code=code: iphone.patch_session(verification_code=code),
            lambda iphone=iphone: iphone.request("DELETE",
                                                 f"/api/sessions/{iphone.session_id}"))

        _no_server_error(verified, logged_out)
        assert verified.status_code in (200, 401), verified.text
        assert logged_out.status_code == 204, logged_out.text
        assert not _session_exists(app, iphone)
        assert _device(app, token) == (None, None), f"round {round_number}"
