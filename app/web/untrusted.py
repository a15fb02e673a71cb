"""Client text checked once, before any of it is parsed further, stored or echoed.

A body nested too deep would exhaust Python's recursion; NUL cannot be stored by PostgreSQL
(and would be by SQLite: the two must agree); a lone surrogate cannot be encoded as UTF-8,
neither by the database driver nor in an error document; control and bidi-override
characters in member names make them print as something else.
"""

import json
import math
import re

# Deeper than any JSON:API document this service takes, far below the recursion limit.
MAX_DEPTH = 32
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
BAD_NAME_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def too_deep(text, limit=MAX_DEPTH):
    """Does JSON ``text`` nest arrays and objects deeper than ``limit``? A scan of the
    brackets outside strings, so that nothing recursive ever sees such a text."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def loads(text):
    """Strict JSON: no NaN or Infinity, no number too large for a float."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _finite(text):
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:20]} is out of range")
    return number


def unsafe_text(value, pointer=""):
    """The first problem in a parsed JSON ``value`` as (pointer, what is wrong), or None:
    NUL or a lone surrogate in any string, a control, bidi-override or surrogate character
    in any member name."""
    if isinstance(value, str):
        return (pointer, _unstorable(value)) if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for name, member in value.items():
            if BAD_NAME_CHARACTER.search(name):
                # a name that cannot be encoded cannot be pointed at: point at its object
                where = pointer if LONE_SURROGATE.search(name) else child(pointer, name)
                return where, "a member name holds a control, bidi-override or surrogate " \
                              "character"
            problem = unsafe_text(member, child(pointer, name))
            if problem:
                return problem
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = unsafe_text(item, f"{pointer}/{index}")
            if problem:
                return problem
    return None


def _unstorable(text):
    return "a string holds a NUL character" if "\x00" in text \
        else "a string holds a lone surrogate (not valid Unicode)"


def child(pointer, name):
    """The JSON pointer (RFC 6901) of member ``name`` of the value at ``pointer``."""
    return f"{pointer}/{name.replace('~', '~0').replace('/', '~1')}"


def encodable(text):
    """``text`` with any lone surrogate, which UTF-8 cannot encode, replaced by U+FFFD."""
    return LONE_SURROGATE.sub("\ufffd", text)
