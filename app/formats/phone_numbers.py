"""Phone numbers as libphonenumber (the ``phonenumbers`` package) knows them: parsed from
international form, checked against the numbering plan of their region, typed, and kept in
E.164. A regular expression lets unassigned and premium-rate numbers through, which is what
SMS-pumping fraud texts."""

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

# The form clients were always told to send: E.164, ASCII digits only (phonenumbers alone
# would read letters, as in "1-800-FLOWERS", separators and extensions); \Z, as $ lets "\n"
# through.
WRITTEN = re.compile(r"\+[1-9][0-9]{6,14}\Z")
TYPES = {
    "fixed_line": PhoneNumberType.FIXED_LINE,
    "mobile": PhoneNumberType.MOBILE,
    "fixed_line_or_mobile": PhoneNumberType.FIXED_LINE_OR_MOBILE,
    "toll_free": PhoneNumberType.TOLL_FREE,
    "premium_rate": PhoneNumberType.PREMIUM_RATE,
    "shared_cost": PhoneNumberType.SHARED_COST,
    "voip": PhoneNumberType.VOIP,
    "personal_number": PhoneNumberType.PERSONAL_NUMBER,
    "pager": PhoneNumberType.PAGER,
    "uan": PhoneNumberType.UAN,
    "voicemail": PhoneNumberType.VOICEMAIL,
    "unknown": PhoneNumberType.UNKNOWN,
}
TYPE_NAMES = {number_type: name for name, number_type in TYPES.items()}
# Numbers whose texts cost the sender extra or reach no person.
REFUSED_BY_DEFAULT = frozenset({"premium_rate", "shared_cost", "uan", "voicemail", "pager"})
ALLOWED_BY_DEFAULT = tuple(sorted(set(TYPES) - REFUSED_BY_DEFAULT))


class NotAPhoneNumber(ValueError):
    """The text is not a phone number in use; the message says why, without the number."""


@dataclass(frozen=True)
class PhoneNumber:
    e164: str
    calling_code: str
    region: str | None
    type: str


def parse(text):
    """The number ``text`` writes in E.164 (``+14155550123``), normalised (a national
    prefix written after the country code goes), or ``NotAPhoneNumber``."""
    if not isinstance(text, str) or not WRITTEN.match(text):
        raise NotAPhoneNumber("is not in E.164 form")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise NotAPhoneNumber("is not in E.164 form") \
            from exc
    if not phonenumbers.is_valid_number(number):
        raise NotAPhoneNumber("is not a number in use in its country's numbering plan")
    return PhoneNumber(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        calling_code=str(number.country_code),
        region=phonenumbers.region_code_for_number(number),
        type=TYPE_NAMES[phonenumbers.number_type(number)])


def test_number(text):
    """A number the operator lets through unchecked (``SMS_TEST_NUMBERS``: an app store
    reviewer's login, a client's captured test account), of its own type ("test"), of
    no region."""
    return PhoneNumber(e164=text, calling_code="", region=None, type="test")


def test_numbers(raw):
    """``SMS_TEST_NUMBERS``: E.164 numbers separated by commas; ValueError otherwise."""
    numbers = tuple(number.strip() for number in raw.split(",") if number.strip())
    if not all(WRITTEN.match(number) for number in numbers):
        raise ValueError("must be E.164 numbers separated by commas, like +10000000000")
    return numbers


def e164_or_none(text):
    """``text`` in E.164 if it is a valid number, else None (for numbers others vouch for,
    like an ID token's claim)."""
    try:
        return parse(text).e164
    except NotAPhoneNumber:
        return None


def number_types(raw):
    """``SMS_ALLOWED_NUMBER_TYPES``: ``'mobile, fixed_line_or_mobile'`` → a tuple of names;
    ValueError naming the unknown ones."""
    names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    unknown = sorted(set(names) - set(TYPES))
    if unknown or not names:
        raise ValueError(f"must be number types separated by commas, from {sorted(TYPES)}"
                         + (f"; unknown: {unknown}" if unknown else ""))
    return names
