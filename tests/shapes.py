"""Comparing a service's documents with captured ones by shape: the same member names, the
same JSON types, the same nesting (values aside)."""

import json
import re


def json_type(value):
    """The JSON type of a decoded value. Integers and fractions are kept apart: JSON has one
    number type, but Poparazzi's Swift client decodes ``Int`` and ``Double`` differently."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def _pattern(text):
    """``'$.data.relationships.*.links'`` → a regex; ``*`` stands for one member name."""
    return re.compile("^" + re.escape(text).replace(r"\*", r"[^.\[\]]+") + "$")


def shape_difference(expected, actual, allowed_extra=(), path="$"):
    """Where ``actual`` first differs in shape from the captured ``expected``, or None.

    - objects: every captured member must be present with the same shape; a member the
      capture does not have is a difference unless its path matches ``allowed_extra``.
    - arrays: every element of ``actual`` must have the shape of every captured element.
      An empty captured array says nothing about its elements, so any elements pass; an
      empty ``actual`` against a non-empty capture is a difference (nothing was shown).
    - null: a captured null shows only that the member exists and may be null; what type
      it has when set is not in the capture, so any value (null or typed) passes there.
      The reverse does not hold: where the capture has a typed value the client decodes
      that type, and null (or any other type) is a difference.
    """
    patterns = [_pattern(text) for text in allowed_extra]
    return _difference(expected, actual, patterns, path)


def _difference(expected, actual, patterns, path):
    if expected is None:
        return None
    expected_type, actual_type = json_type(expected), json_type(actual)
    if expected_type != actual_type:
        return f"{path}: {actual_type} where the capture has {expected_type}"
    if expected_type == "object":
        for name, value in expected.items():
            if name not in actual:
                return f"{path}.{name}: missing"
            difference = _difference(value, actual[name], patterns, f"{path}.{name}")
            if difference:
                return difference
        for name in actual:
            extra = f"{path}.{name}"
            if name not in expected and not any(p.match(extra) for p in patterns):
                return f"{extra}: not in the capture"
    elif expected_type == "array" and expected:
        if not actual:
            return f"{path}: empty, so its elements' shape cannot be compared"
        for element in actual:
            for shape in expected:
                difference = _difference(shape, element, patterns, f"{path}[]")
                if difference:
                    return difference
    return None


def assert_same_shape(expected, actual, allowed_extra=()):
    difference = shape_difference(expected, actual, allowed_extra)
    assert difference is None, f"{difference}\nservice's document: {json.dumps(actual)[:3000]}"
