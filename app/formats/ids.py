"""Numbers and ids as clients write them in a URL, a query parameter or a cursor.

Python's ``int()`` and ``uuid.UUID()`` read more than a client should send: Unicode
digits (superscript two, Arabic-Indic one), signs, underscores, spaces, and integers no
database column holds. Anything but plain ASCII is refused here, so an id that is not
one names no row (a 404 where it is looked up) instead of failing in the database.
"""

import uuid

from sqlalchemy import BigInteger

INTEGER_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
_LONGEST = len(str(BIGINT_MAX))


def whole_number(raw, maximum=BIGINT_MAX):
    """The non-negative integer ``raw`` spells in ASCII decimal digits up to ``maximum``,
    or None."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdecimal():
        return None
    if len(raw.lstrip("0")) > _LONGEST:  # before int(): no quadratic work on huge strings
        return None
    value = int(raw)
    return value if value <= maximum else None


def integer_id(raw, column):
    """The id ``raw`` spells for the integer ``column`` (from 1 up to the largest value
    the column holds on every database), or None."""
    value = whole_number(raw, column_maximum(column))
    return value if value is not None and value >= 1 else None


def column_maximum(column):
    """The largest value an integer column holds (PostgreSQL's INTEGER is 32 bits;
    SQLite's is always 64)."""
    return BIGINT_MAX if isinstance(column.type, BigInteger) else INTEGER_MAX


def uuid_id(raw):
    """The UUID ``raw`` spells in ASCII (as ``uuid.UUID`` reads it), or None."""
    if not isinstance(raw, str) or not raw.isascii():
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
