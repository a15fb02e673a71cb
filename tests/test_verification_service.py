"""Verification codes, called directly: texted as digests, tries counted, used once."""

import pytest
from sqlalchemy import select

from app.errors import InvalidAttribute, Unprocessable, Where
from app.extensions import db
from app.models import SmsMessage, VerificationCode
from app.resources import verification
from tests.factories import CODE_IN_TEXT, make_session, random_phone


def _texted_code(phone):
    message = db.session.scalars(select(SmsMessage).where(SmsMessage.to == phone)).one()
    return CODE_IN_TEXT.search(message.body).group(1)


def test_a_code_is_texted_and_kept_only_as_a_digest(app_context):
    session, _principal = make_session()
    phone = random_phone()
    verification.send_code(session, phone, "192.0.2.1")
    code = _texted_code(phone)
    stored = db.session.scalars(select(VerificationCode)).one()
    assert code not in stored.code_digest and stored.phone_number == phone


def test_a_wrong_try_is_counted_although_the_request_fails(app_context):
    session, _principal = make_session()
    phone = random_phone()
    verification.send_code(session, phone, "192.0.2.1")
    wrong = f"{(int(_texted_code(phone)) + 1) % 1_000_000:06d}"
    with pytest.raises(Unprocessable) as caught:
        verification.check_code(session, wrong)
    assert (caught.value.code, caught.value.field) == ("VERIFICATION_CODE_INVALID",
                                                        "verification_code")
    db.session.rollback()  # what the failed request does: the try stays counted
    assert db.session.scalars(select(VerificationCode)).one().attempts == 1


def test_the_right_code_proves_one_user_once(app_context):
    session, _principal = make_session()
    phone = random_phone()
    verification.send_code(session, phone, "192.0.2.1")
    code = _texted_code(phone)
    user = verification.check_code(session, code)
    assert user.phone_number == phone
    with pytest.raises(Unprocessable) as caught:
        verification.check_code(session, code)
    assert caught.value.code == "VERIFICATION_CODE_MISSING"


def test_a_malformed_phone_number_is_named(app_context):
    session, _principal = make_session()
    with pytest.raises(InvalidAttribute) as caught:
        verification.send_code(session, "555-0100", "192.0.2.1")
    assert (caught.value.field, caught.value.where) == ("phone_number", Where.ATTRIBUTE)
