"""The real service: wsgi.py under gunicorn (3 workers, 2 threads each), driven over HTTP
with the headers Poparazzi's iOS app sends, against the test database of this run."""

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Credential, Device, SmsMessage
from tests.conftest import free_port
from tests.factories import last_code, new_token, random_phone
from tests.live_server import LiveServer, PoparazziClient, code_from_outbox, contract

pytestmark = pytest.mark.slow

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JOIN_TIMEOUT = 60


def _db(app, function):
    with app.app_context():
        try:
            return function(db.session)
        finally:
            db.session.remove()


def _devices_with(app, token):
    return _db(app, lambda session: [
        (device.user_id, device.session_id)
        for device in session.scalars(select(Device).where(Device.token == token))])


def _count(app, model):
    return _db(app, lambda session: session.scalar(select(func.count()).select_from(model)))


def _user_of_credential(app, credential_id):
    return _db(app, lambda session: session.get(Credential, credential_id).user_id)


def _unique_phones(count):
    phones = set()
    while len(phones) < count:
        phones.add(random_phone())
    return sorted(phones)


def _run_all(count, function, timeout=JOIN_TIMEOUT):
    """``function(i)`` in ``count`` threads at once; the results, any exception raised."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(function, i) for i in range(count)]
        return [future.result(timeout=timeout) for future in futures]


def test_poparazzi_client_flow(live, service_env, app):
    phone_number = random_phone()
    token = new_token()
    iphone = PoparazziClient(live.url)

    # 1. An anonymous session; its id is the credential from now on.
    response = iphone.create_session()
    session_id = response.json()["data"]["id"]
    assert uuid.UUID(session_id)
    assert response.json()["data"]["relationships"]["user"]["data"] is None
    assert response.headers["Location"] == f"{live.url}/api/sessions/{session_id}"

    # 2. The token PATCH creates the token, tied to the session and not yet to a user.
    response = iphone.patch_token(token)
    assert response.status_code == 200, response.text
    assert response.headers.get("Connection", "").lower() == "close"
    data = response.json()["data"]
    assert (data["type"], data["id"]) == ("apple_device_tokens", token)
    sent = contract("apple_device_tokens.patch.request.json")["data"]["attributes"]
    assert {name: data["attributes"][name] for name in sent} == sent
    assert TIMESTAMP.match(data["attributes"]["created_at"])
    assert TIMESTAMP.match(data["attributes"]["updated_at"])
    assert data["relationships"]["session"]["data"] == {"type": "sessions", "id": session_id}
    assert data["relationships"]["user"]["data"] is None

    # 3. The phone number: a code is texted (to the outbox).
    response = iphone.patch_session(phone_number=phone_number)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["relationships"]["user"]["data"] is None

    # 4. The code, read from the outbox with the operators' CLI, logs the session in.
    code = code_from_outbox(service_env, phone_number)
    response = iphone.patch_session(verification_code=code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body and "errors" not in body
    user_id = body["data"]["relationships"]["user"]["data"]["id"]
    assert uuid.UUID(user_id)

    # 5. The session with its user included.
    response = iphone.request("GET", f"/api/sessions/{session_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"]["id"] == session_id
    assert body["data"]["relationships"]["user"]["data"] == {"type": "users", "id": user_id}
    [included] = body["included"]
    assert (included["type"], included["id"]) == ("users", user_id)
    assert included["attributes"]["phone_number"] == phone_number

    # Logging in tied the token registered before to the new user.
    response = iphone.request("GET", f"/api/apple_device_tokens/{token}")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["relationships"]["user"]["data"] == {
        "type": "users", "id": user_id}

    response = iphone.request("GET", "/api/configs/3.1.23")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert {key: data[key] for key in ("type", "id", "attributes")} == \
        contract("configs.get.response.json")["data"]

    response = iphone.request("GET", f"/api/users/{user_id}")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == user_id
    assert response.json()["data"]["attributes"]["phone_number"] == phone_number

    document = contract("users.patch.request.json")
    document["data"]["id"] = user_id
    response = iphone.request("PATCH", f"/api/users/{user_id}", document)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["time_zone"] == "America/Phoenix"
    response = iphone.request("GET", f"/api/users/{user_id}")
    assert response.json()["data"]["attributes"]["time_zone"] == "America/Phoenix"

    # 6. Logout: the token PATCH without Authorization is refused, detaches the token and
    # ends the session it was registered with.
    response = iphone.patch_token(token, authorized=False)
    assert response.status_code == 401, response.text
    [error] = response.json()["errors"]
    expected = contract("errors.not_authorized.response.json")["errors"][0]
    assert {key: error[key] for key in ("status", "code", "title", "detail")} == {
        key: expected[key] for key in ("status", "code", "title", "detail")}
    assert uuid.UUID(error["id"])
    assert _devices_with(app, token) == [(None, None)]
    # The client forgets the session; anyone who kept its id holds nothing any more.
    response = iphone.request("GET", "/api/apple_device_tokens")
    assert response.status_code == 401, response.text

    # The same person logs in again: same user, and the logged-out token is not theirs.
    again = PoparazziClient(live.url)
    assert again.log_in(phone_number, lambda phone: code_from_outbox(service_env, phone)) \
        == user_id
    assert again.session_id != session_id
    response = again.request("GET", "/api/apple_device_tokens")
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []
    iphone.close()
    again.close()


def test_twenty_users_racing_for_one_token_leave_one_row_with_one_owner(live, app):
    count = 20
    phones = _unique_phones(count)
    iphones = [PoparazziClient(live.url) for _ in range(count)]
    user_ids = _run_all(count, lambda i: iphones[i].log_in(phones[i],
                                                           lambda p: last_code(app, p)))
    assert len(set(user_ids)) == count

    token = new_token()
    barrier = threading.Barrier(count, timeout=30)

    def race(i):
        barrier.wait()
        return iphones[i].patch_token(token)

    responses = _run_all(count, race)
    assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses
                                                                 if r.status_code != 200]
    for iphone, user_id, response in zip(iphones, user_ids, responses, strict=True):
        relationships = response.json()["data"]["relationships"]
        assert relationships["user"]["data"] == {"type": "users", "id": user_id}
        assert relationships["session"]["data"] == {"type": "sessions",
                                                    "id": iphone.session_id}

    [(owner_id, owner_session)] = _devices_with(app, token)
    assert str(owner_id) in user_ids
    assert _user_of_credential(app, owner_session) == owner_id

    # Exactly one of the twenty can see the token now: its owner.
    seen = _run_all(count, lambda i: iphones[i].request(
        "GET", f"/api/apple_device_tokens/{token}").status_code)
    assert sorted(seen) == [200] + [404] * (count - 1)
    assert user_ids[seen.index(200)] == str(owner_id)
    for iphone in iphones:
        iphone.close()


def test_concurrent_writes_across_workers_all_succeed(live, app):
    """SQLite's single writer shared by three worker processes: every write waits its
    turn (WAL, busy timeout, BEGIN IMMEDIATE) instead of failing with "database is
    locked"."""
    count = 40
    phones = _unique_phones(count)
    barrier = threading.Barrier(count, timeout=30)

    def new_device(i):
        iphone = PoparazziClient(live.url)
        barrier.wait()
        try:
            statuses = [iphone.create_session().status_code,
                        iphone.patch_token(new_token()).status_code,
                        iphone.patch_session(phone_number=phones[i]).status_code]
        finally:
            iphone.close()
        return statuses

    assert _run_all(count, new_device) == [[201, 200, 200]] * count
    assert _count(app, Credential) == count
    assert _count(app, Device) == count
    assert _count(app, SmsMessage) == count


def test_workers_without_a_secret_key_share_one_development_key(service_env, tmp_path):
    """Three workers, each making its app at once: a session one of them made is accepted by
    every one, on fresh connections that land on any of them."""
    key_file = tmp_path / "instance" / "secret_key"
    env = {name: value for name, value in service_env.items() if name != "SECRET_KEY"}
    server = LiveServer(free_port(), {**env, "SECRET_KEY_FILE": str(key_file)}, tmp_path)
    server.start()
    try:
        session_id = PoparazziClient(server.url).create_session().json()["data"]["id"]

        def read_session(_):
            client = PoparazziClient(server.url)
            client.session_id = session_id
            try:
                return client.request("GET", f"/api/sessions/{session_id}").status_code
            finally:
                client.close()

        assert _run_all(30, read_session) == [200] * 30
        assert server.logs(limit=10**6).count("SECRET_KEY is not set") >= 3  # each worker
        assert key_file.read_text().strip() not in server.logs(limit=10**6)
    finally:
        server.stop()
