"""Logging in with a phone number and a texted code: validation, digests, tries, expiry."""

import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Device, SmsMessage, User, VerificationCode
from app.models.types import utcnow
from tests.factories import (
    bearer,
    create_session,
    last_code,
    log_in,
    random_phone,
    register_token,
    request_code,
    session_patch,
)
from tests.jsonapi_helpers import error_of

CODE_POINTER = "/data/attributes/verification_code"
PHONE_POINTER = "/data/attributes/phone_number"
TEXT = re.compile(r"^Your .+ verification code is: (\d{6})\. Don't share this code with anyone;")


def send_code(client, session_id, code):
    return client.patch(f"/api/sessions/{session_id}",
                        json=session_patch(session_id, verification_code=code),
                        headers=bearer(session_id))


def wrong(code):
    return f"{(int(code) + 1) % 10**6:06d}"



def user_id_of(response):
    return response.get_json()["data"]["relationships"]["user"]["data"]["id"]


def codes_of(app):
    with app.app_context():
        rows = list(db.session.scalars(select(VerificationCode).order_by(VerificationCode.id)))
        db.session.remove()
    return rows


def test_full_login(client, app):
    phone = random_phone()
    session_id = create_session(client)

    response = request_code(client, session_id, phone)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["id"] == session_id
    assert data["relationships"]["user"]["data"] is None
    assert "phone_number" not in data.get("attributes", {})

    response = send_code(client, session_id, last_code(app, phone))
    assert response.status_code == 200, response.get_json()
    user_id = user_id_of(response)

    document = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id)).get_json()
    assert document["data"]["relationships"]["user"]["data"] == {"type": "users", "id": user_id}
    [user] = document["included"]
    assert user["id"] == user_id
    assert user["attributes"]["phone_number"] == phone
    with app.app_context():
        assert db.session.get(User, uuid.UUID(user_id)).phone_number == phone


@pytest.mark.parametrize("phone_number", [
    "10000000000",             # no +
    "+0123456789",             # country codes do not start with 0
    "+1 415 555 0123",         # spaces
    "+1-415-555-0123",
    "+1(415)5550123",
    "",
    "+",
    "+12345",                  # too short
    "+1234567890123456",       # 16 digits: longer than E.164 allows
    "+1415555O123",            # letter O
    "+14155550123\n",          # trailing newline
    " +14155550123",
    "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0662\u0663",  # Arabic-Indic
    "+\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff12\uff13",  # fullwidth
])
def test_bad_phone_numbers_are_invalid_attributes(client, app, phone_number):
    session_id = create_session(client)
    response = request_code(client, session_id, phone_number)
    assert response.status_code == 400, response.get_json()
    error = error_of(response)
    assert error["code"] == "INVALID_ATTRIBUTE"
    assert error["source"]["pointer"] == PHONE_POINTER
    with app.app_context():
        assert db.session.scalar(select(SmsMessage)) is None
        assert db.session.scalar(select(VerificationCode)) is None


@pytest.mark.parametrize("phone_number", [12345678901, None, ["+14155550123"], True])
def test_phone_number_of_the_wrong_type_is_invalid(client, phone_number):
    session_id = create_session(client)
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, phone_number=phone_number),
                            headers=bearer(session_id))
    assert response.status_code == 400, response.get_json()
    assert error_of(response)["source"]["pointer"] == PHONE_POINTER


def test_text_carries_a_six_digit_code(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    with app.app_context():
        [message] = db.session.scalars(select(SmsMessage)).all()
    assert message.to == phone
    match = TEXT.match(message.body)
    assert match, message.body
    assert re.findall(r"\d+", message.body) == [match.group(1)]


def test_codes_are_stored_as_digests_only(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    code = last_code(app, phone)

    [row] = codes_of(app)
    assert re.fullmatch(r"[0-9a-f]{64}", row.code_digest)
    assert row.phone_number == phone
    assert row.attempts == 0
    assert row.consumed_at is None
    for column in VerificationCode.__table__.columns:
        assert code not in str(getattr(row, column.key)), column.key
    with app.app_context():  # nor anywhere in the raw row, whatever the mapping
        raw = db.session.execute(VerificationCode.__table__.select()).one()
    assert all(code not in str(value) for value in raw)


def test_code_lives_for_the_configured_ttl(client, app):
    phone = random_phone()
    session_id = create_session(client)
    before = utcnow()
    assert request_code(client, session_id, phone).status_code == 200
    after = utcnow()
    [row] = codes_of(app)
    ttl = timedelta(seconds=app.config["VERIFICATION_CODE_TTL"])
    assert ttl == timedelta(minutes=10)
    assert before + ttl - timedelta(seconds=1) <= row.expires_at <= after + ttl + timedelta(
        seconds=1)


def test_wrong_code_is_unprocessable(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    response = send_code(client, session_id, wrong(last_code(app, phone)))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VERIFICATION_CODE_INVALID"
    assert error["status"] == "422"
    assert error["source"]["pointer"] == CODE_POINTER
    [row] = codes_of(app)
    assert row.attempts == 1


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 345", "", "123456\n",
                                  "\u0661\u0662\u0663\u0664\u0665\u0666"])
def test_malformed_code_is_an_invalid_attribute(client, app, code):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    response = send_code(client, session_id, code)
    assert response.status_code == 400, response.get_json()
    assert error_of(response)["source"]["pointer"] == CODE_POINTER


def test_five_wrong_tries_kill_the_code(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    code = last_code(app, phone)
    assert app.config["VERIFICATION_MAX_ATTEMPTS"] == 5

    for _ in range(5):
        response = send_code(client, session_id, wrong(code))
        assert response.status_code == 422
        assert error_of(response)["code"] == "VERIFICATION_CODE_INVALID"

    response = send_code(client, session_id, code)
    assert response.status_code == 422
    assert error_of(response)["code"] == "VERIFICATION_CODE_EXHAUSTED"
    assert error_of(response)["source"]["pointer"] == CODE_POINTER
    document = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id)).get_json()
    assert document["data"]["relationships"]["user"]["data"] is None
    with app.app_context():
        assert db.session.scalar(select(User)) is None

    # A fresh code works again.
    assert request_code(client, session_id, phone).status_code == 200
    assert send_code(client, session_id, last_code(app, phone)).status_code == 200


def test_expired_code_is_refused(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    code = last_code(app, phone)
    with app.app_context():
        db.session.execute(update(VerificationCode).values(
            expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()

    response = send_code(client, session_id, code)
    assert response.status_code == 422
    assert error_of(response)["code"] == "VERIFICATION_CODE_EXPIRED"
    assert error_of(response)["source"]["pointer"] == CODE_POINTER


def test_expiry_follows_the_configured_ttl(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "VERIFICATION_CODE_TTL", 0)
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    response = send_code(client, session_id, last_code(app, phone))
    assert response.status_code == 422
    assert error_of(response)["code"] == "VERIFICATION_CODE_EXPIRED"


def test_new_code_retires_the_old_one(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    old = last_code(app, phone)
    new = old
    while new == old:  # one chance in a million that the two codes are equal
        assert request_code(client, session_id, phone).status_code == 200
        new = last_code(app, phone)

    response = send_code(client, session_id, old)
    assert response.status_code == 422
    assert error_of(response)["code"] == "VERIFICATION_CODE_INVALID"
    assert send_code(client, session_id, new).status_code == 200
    assert sum(row.consumed_at is None for row in codes_of(app)) == 0


def test_code_for_another_session_is_useless(client, app):
    phone = random_phone()
    holder = create_session(client)
    other = create_session(client)
    assert request_code(client, holder, phone).status_code == 200
    response = send_code(client, other, last_code(app, phone))
    assert response.status_code == 422
    assert error_of(response)["code"] == "VERIFICATION_CODE_MISSING"


def test_code_cannot_be_used_twice(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    code = last_code(app, phone)
    assert send_code(client, session_id, code).status_code == 200

    response = send_code(client, session_id, code)
    assert response.status_code == 422
    assert error_of(response)["code"] in {"VERIFICATION_CODE_MISSING", "VERIFICATION_CODE_USED"}
    [row] = codes_of(app)
    assert row.consumed_at is not None


def test_code_without_a_request_is_missing(client):
    session_id = create_session(client)
    response = send_code(client, session_id, "123456")
    assert response.status_code == 422
    assert error_of(response)["code"] == "VERIFICATION_CODE_MISSING"


def test_known_number_logs_in_as_the_same_user(client, app):
    phone = random_phone()
    first_session, first_user = log_in(client, app, phone)
    second_session, second_user = log_in(client, app, phone)
    assert first_session != second_session
    assert first_user == second_user
    _, third_user = log_in(client, app)
    assert third_user != first_user
    with app.app_context():
        assert len(db.session.scalars(select(User)).all()) == 2


def test_login_attaches_the_sessions_tokens_to_the_user(client, app):
    session_id = create_session(client)
    tokens = [register_token(client, session_id), register_token(client, session_id)]
    stranger_session = create_session(client)
    stranger_token = register_token(client, stranger_session)

    phone = random_phone()
    assert request_code(client, session_id, phone).status_code == 200
    response = send_code(client, session_id, last_code(app, phone))
    assert response.status_code == 200
    user_id = user_id_of(response)

    for token in tokens:
        data = client.get(f"/api/apple_device_tokens/{token}",
                          headers=bearer(session_id)).get_json()["data"]
        assert data["relationships"]["user"]["data"] == {"type": "users", "id": user_id}
    with app.app_context():
        stranger = db.session.scalar(select(Device).where(Device.token == stranger_token))
        assert stranger.user_id is None


def test_phone_number_and_code_together_are_refused(client, app):
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    response = client.patch(
        f"/api/sessions/{session_id}",
        json=session_patch(session_id, phone_number=phone,
                           verification_code=last_code(app, phone)),
        headers=bearer(session_id))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "INVALID_ATTRIBUTE"
    assert error["source"]["pointer"] in {PHONE_POINTER, CODE_POINTER}
    # Nothing happened: the pending code is still the only one and still works.
    assert len(codes_of(app)) == 1
    assert send_code(client, session_id, last_code(app, phone)).status_code == 200


def test_code_request_needs_the_session(client, app):
    session_id = create_session(client)
    response = client.patch(f"/api/sessions/{session_id}",
                            json=session_patch(session_id, phone_number=random_phone()))
    assert response.status_code == 401
    assert error_of(response)["code"] == "NOT_AUTHORIZED"
    with app.app_context():
        assert db.session.scalar(select(SmsMessage)) is None


def test_logout_with_delete(client, app):
    session_id, user_id = log_in(client, app)
    token = register_token(client, session_id)

    response = client.delete(f"/api/sessions/{session_id}", headers=bearer(session_id))
    assert response.status_code == 204
    assert response.data == b""

    response = client.get(f"/api/sessions/{session_id}", headers=bearer(session_id))
    assert response.status_code == 401
    assert error_of(response)["code"] == "NOT_AUTHORIZED"
    with app.app_context():
        device = db.session.scalar(select(Device).where(Device.token == token))
        assert device.user_id is None
        assert device.session_id is None
        assert db.session.get(User, uuid.UUID(user_id)) is not None  # the user stays


@pytest.mark.committed  # threads, each on its own connection
def test_parallel_guesses_get_no_more_than_the_allowed_tries(app, client):
    """Tries are counted atomically: ten wrong guesses at once still make only five tries."""
    phone = random_phone()
    session_id = create_session(client)
    assert request_code(client, session_id, phone).status_code == 200
    guess = wrong(last_code(app, phone))
    barrier = threading.Barrier(10)

    def attempt(_):
        barrier.wait()
        return error_of(send_code(app.test_client(), session_id, guess))["code"]

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(attempt, range(10)))
    assert codes.count("VERIFICATION_CODE_INVALID") == 5, codes
    assert codes.count("VERIFICATION_CODE_EXHAUSTED") == 5, codes
    [row] = codes_of(app)
    assert row.attempts == 5


# -- limits on who may be texted and on guessing ------------------------------------------

def test_tries_per_phone_number_hold_across_codes_and_sessions(client, app, monkeypatch):
    """New codes do not buy new guesses: tries are also counted per phone number."""
    monkeypatch.setitem(app.config, "VERIFICATION_MAX_WRONG_PER_PHONE", "7/day")
    phone = random_phone()
    first = create_session(client)
    assert request_code(client, first, phone).status_code == 200
    for _ in range(5):
        assert error_of(send_code(client, first, wrong(last_code(app, phone))))["code"] == \
            "VERIFICATION_CODE_INVALID"

    second = create_session(client)
    assert request_code(client, second, phone).status_code == 200
    code = last_code(app, phone)
    for _ in range(2):
        assert error_of(send_code(client, second, wrong(code)))["code"] == \
            "VERIFICATION_CODE_INVALID"
    for guess in (wrong(code), code):
        response = send_code(client, second, guess)
        assert response.status_code == 429, response.get_json()
        assert error_of(response)["code"] == "RATE_LIMITED"
        assert int(response.headers["Retry-After"]) > 0
    assert [row.attempts for row in codes_of(app)] == [5, 2]  # refused tries are not tries

    other = random_phone()  # other numbers are not affected
    assert request_code(client, second, other).status_code == 200
    assert send_code(client, second, last_code(app, other)).status_code == 200


@pytest.mark.parametrize("phone_number, allowed", [
    ("+14155550123", False), ("+447400123456", True), ("+905321234567", True),
    ("+4915112345678", False), ("+971501234567", False),
])
def test_only_allowed_countries_get_texts(client, app, monkeypatch, phone_number, allowed):
    monkeypatch.setitem(app.config, "SMS_ALLOWED_COUNTRY_CODES", ("44", "90"))
    response = request_code(client, create_session(client), phone_number)
    if allowed:
        assert response.status_code == 200, response.get_json()
        return
    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "PHONE_COUNTRY_NOT_ALLOWED"
    assert error["source"]["pointer"] == PHONE_POINTER
    with app.app_context():
        assert db.session.scalar(select(SmsMessage)) is None
        assert db.session.scalar(select(VerificationCode)) is None


def _refused_with_nothing_sent(app, response, code):
    assert response.status_code == 400, response.get_json()
    error = error_of(response)
    assert (error["code"], error["source"]["pointer"]) == (code, PHONE_POINTER)
    with app.app_context():
        assert db.session.scalar(select(SmsMessage)) is None
        assert db.session.scalar(select(VerificationCode)) is None


@pytest.mark.parametrize("phone_number", [
    "+15550001234",    # area code 555 is not assigned
    "+447700900123",   # Ofcom's range for drama: never a real number
    "+9715012345678",  # a digit too many for the UAE
    "+10000000001",
])
def test_numbers_not_in_use_are_refused(client, app, phone_number):
    response = request_code(client, create_session(client), phone_number)
    _refused_with_nothing_sent(app, response, "INVALID_ATTRIBUTE")
    assert "not a number in use" in error_of(response)["detail"]


@pytest.mark.parametrize("phone_number, kind", [
    ("+19005550123", "premium-rate"), ("+33899123456", "premium-rate"),
])
def test_premium_rate_numbers_are_refused(client, app, phone_number, kind):
    response = request_code(client, create_session(client), phone_number)
    _refused_with_nothing_sent(app, response, "PHONE_NUMBER_TYPE_NOT_ALLOWED")
    assert f"is a {kind} number" in error_of(response)["detail"]


def test_the_operator_chooses_the_number_types(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_ALLOWED_NUMBER_TYPES", ("mobile", "premium_rate"))
    assert request_code(client, create_session(client), "+19005550123").status_code == 200
    assert request_code(client, create_session(client), "+447400123456").status_code == 200
    response = request_code(client, create_session(client), random_phone())
    assert error_of(response)["code"] == "PHONE_NUMBER_TYPE_NOT_ALLOWED"  # fixed_line_or_mobile


def test_the_country_allow_list_reads_the_region(client, app, monkeypatch):
    """+44 is Great Britain's calling code, and Guernsey's, Jersey's and the Isle of Man's."""
    monkeypatch.setitem(app.config, "SMS_ALLOWED_COUNTRY_CODES", ("GB",))
    assert request_code(client, create_session(client), "+447400123456").status_code == 200
    response = request_code(client, create_session(client), "+447911123456")  # Guernsey
    assert response.status_code == 422
    assert error_of(response)["code"] == "PHONE_COUNTRY_NOT_ALLOWED"


def test_a_number_is_kept_in_its_normal_form(client, app):
    """A national prefix written after the country code is not part of the number."""
    session_id = create_session(client)
    assert request_code(client, session_id, "+4407400123456").status_code == 200
    assert send_code(client, session_id, last_code(app, "+447400123456")).status_code == 200


def test_the_operators_test_numbers_pass_unchecked(client, app, monkeypatch):
    """The captured Poparazzi client logs in with +10000000000 (TestConfig's
    SMS_TEST_NUMBERS), which no numbering plan has."""
    monkeypatch.setitem(app.config, "SMS_ALLOWED_COUNTRY_CODES", ("GB",))
    session_id = create_session(client)
    assert request_code(client, session_id, "+10000000000").status_code == 200
    assert send_code(client, session_id, last_code(app, "+10000000000")).status_code == 200
