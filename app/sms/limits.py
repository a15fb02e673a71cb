"""Who may have a code texted, and how many codes may be tried, before any text goes out.

Budgets (see README, "Rate limits"):
- per client address (an IPv6 client by its /64);
- per phone number *and* client address, so strangers asking for codes to someone's
  number spend their own budget, not the owner's;
- per phone number from any address, a higher cap that bounds the texts one number gets;
- for the whole service, so a flood cannot run up the SMS bill;
- tries of codes per phone number across codes and sessions, so new codes do not buy new
  guesses.
"""

from flask import current_app

from app.errors import Unprocessable
from app.security import ratelimit


def check_country(phone_number):
    """Refuse numbers outside ``SMS_ALLOWED_COUNTRY_CODES`` (E.164 calling codes are
    prefix-free, so a prefix match is exact)."""
    allowed = current_app.config["SMS_ALLOWED_COUNTRY_CODES"]
    if allowed and not phone_number.startswith(tuple(f"+{code}" for code in allowed)):
        raise Unprocessable("Verification codes cannot be texted to this country.",
                            field="phone_number", code="PHONE_COUNTRY_NOT_ALLOWED")


def spend_text(phone_number, client_address):
    """Count one text against every budget it is in, or refuse it with 429."""
    address = ratelimit.address_key(client_address)
    detail = "Too many verification codes requested; try again later."
    _spend(f"sms:address:{address}", "SMS_RATE_LIMIT_PER_ADDRESS", detail)
    _spend(f"sms:phone:{phone_number}:{address}", "SMS_RATE_LIMIT_PER_PHONE", detail)
    _spend(f"sms:phone-total:{phone_number}", "SMS_RATE_LIMIT_PER_PHONE_TOTAL", detail)
    _spend("sms:global", "SMS_GLOBAL_RATE_LIMIT",
           "The service is texting too many codes right now; try again later.")


def spend_try(phone_number):
    """Count one try of a code sent to ``phone_number``, or refuse it with 429."""
    _spend(f"verify:phone:{phone_number}", "VERIFICATION_MAX_WRONG_PER_PHONE",
           "Too many codes tried for this phone number; try again later.")


_spend = ratelimit.spend
