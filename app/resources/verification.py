"""Verification codes: texted, kept as digests, tried a few times, then dead."""

import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from app.database.engine import EarlyCommit, commit_early
from app.database.results import rows_changed
from app.errors import BadGateway, InvalidAttribute, Unprocessable
from app.extensions import db
from app.formats import phone_numbers
from app.models import VerificationCode
from app.models.types import utcnow
from app.resources import users
from app.security.crypto import digest, new_verification_code, same_digest
from app.sms import SmsDeliveryError, SmsDeliveryUncertain, limits, sender

CODE = re.compile(r"[0-9]{6}\Z")
PHONE = "phone_number"
CODE_FIELD = "verification_code"
PURPOSE = "verification-code"


def send_code(session, phone_number, client_address):
    """Text a new code. The rate-limit hits and the code are committed before the gateway
    is called, so no database lock is held while it answers; a code that could not be
    sent is deleted, and the session's earlier code keeps working. A code the gateway
    may have delivered (it timed out after taking the text) is kept, as if sent."""
    number = _textable(phone_number)
    limits.check_country(number)
    phone_number = number.e164
    limits.spend_text(phone_number, client_address)
    config = current_app.config
    code = new_verification_code()
    pending = VerificationCode(
        session_id=session.id, phone_number=phone_number,
        code_digest=digest(_salted(phone_number, code), PURPOSE),
        expires_at=utcnow() + timedelta(seconds=config["VERIFICATION_CODE_TTL"]),
    )
    db.session.add(pending)
    commit_early(EarlyCommit.CODE_BEFORE_GATEWAY)
    body = (f"Your {config['APP_NAME']} verification code is: {code}. "
            "Don't share this code with anyone; we will never ask for it.")
    try:
        sender().send(phone_number, body)
    except SmsDeliveryUncertain:
        pass  # the gateway logged it; the user may have the code, so it must work
    except SmsDeliveryError as exc:
        db.session.rollback()
        db.session.delete(pending)
        commit_early(EarlyCommit.UNSENT_CODE_VOID)
        raise BadGateway("The verification code could not be texted; try again.",
                         code="SMS_DELIVERY_FAILED") from exc
    _retire_codes_before(pending)


def _textable(phone_number):
    """The parsed number, or a 400 when it is not one in use or of a type not allowed
    (SMS_ALLOWED_NUMBER_TYPES). SMS_TEST_NUMBERS pass unchecked."""
    if phone_number in current_app.config["SMS_TEST_NUMBERS"]:
        return phone_numbers.test_number(phone_number)
    try:
        number = phone_numbers.parse(phone_number)
    except phone_numbers.NotAPhoneNumber as exc:
        raise InvalidAttribute(f"phone_number {exc}; send a number in use in E.164 form, "
                               "like +14155550123.", field=PHONE) from exc
    if number.type not in current_app.config["SMS_ALLOWED_NUMBER_TYPES"]:
        kind = number.type.replace("_", "-")
        raise InvalidAttribute(f"phone_number is a {kind} number; verification codes are "
                               "not texted to those.", field=PHONE,
                               code="PHONE_NUMBER_TYPE_NOT_ALLOWED")
    return number


def _retire_codes_before(sent):
    """A code that reached the phone makes the session's earlier codes useless."""
    db.session.execute(
        update(VerificationCode)
        .where(VerificationCode.session_id == sent.session_id,
               VerificationCode.id != sent.id,
               VerificationCode.consumed_at.is_(None))
        .values(consumed_at=utcnow())
    )


def _salted(phone_number, code):
    return f"{phone_number}:{code}"


def check_code(session, code):
    """The user the code proves, created on first login.

    Each try is counted before the comparison, atomically, so parallel guesses cannot
    get past the limit; the right code is consumed once.
    """
    if not CODE.match(code):
        raise InvalidAttribute("verification_code is six digits.", field=CODE_FIELD)
    pending = _pending_code(session)
    limits.spend_try(pending.phone_number)
    if not _claim_try(pending):
        raise _exhausted()
    if not same_digest(pending.code_digest, _salted(pending.phone_number, code), PURPOSE):
        commit_early(EarlyCommit.WRONG_TRY_COUNTS)
        raise Unprocessable("The verification code is not right.", field=CODE_FIELD,
                            code="VERIFICATION_CODE_INVALID")
    consumed = rows_changed(db.session.execute(
        update(VerificationCode)
        .where(VerificationCode.id == pending.id, VerificationCode.consumed_at.is_(None))
        .values(consumed_at=utcnow())
    ))
    if consumed != 1:
        raise Unprocessable("The verification code was already used.", field=CODE_FIELD,
                            code="VERIFICATION_CODE_USED")
    return users.owner_of_phone(pending.phone_number)


def _pending_code(session):
    pending = db.session.scalar(
        select(VerificationCode)
        .where(VerificationCode.session_id == session.id,
               VerificationCode.consumed_at.is_(None))
        .order_by(VerificationCode.id.desc()).limit(1)
    )
    if pending is None:
        raise Unprocessable("Ask for a verification code first.", field=CODE_FIELD,
                            code="VERIFICATION_CODE_MISSING")
    if pending.expires_at <= utcnow():
        raise Unprocessable("The verification code has expired; ask for a new one.",
                            field=CODE_FIELD, code="VERIFICATION_CODE_EXPIRED")
    return pending


def _claim_try(pending):
    return rows_changed(db.session.execute(
        update(VerificationCode)
        .where(VerificationCode.id == pending.id,
               VerificationCode.attempts < current_app.config["VERIFICATION_MAX_ATTEMPTS"])
        .values(attempts=VerificationCode.attempts + 1)
    )) == 1


def _exhausted():
    return Unprocessable("Too many wrong tries; ask for a new code.", field=CODE_FIELD,
                         code="VERIFICATION_CODE_EXHAUSTED")
