"""The validator every JSON:API response in the suite goes through (tests/jsonapi_schema.py)
gives the expected verdict on each of the fixtures that ship with the official schema.

A fixture's place in ``schema-fixtures/`` says which schema judges it and what it expects:
``response/{valid,invalid}/…`` the response schema; ``request/resource/create/…``,
``request/resource/update/…`` and ``request/relationship/update/…`` the three request
schemas. If this suite passes, a green ``assert_valid_jsonapi`` means something.
"""

import json
from pathlib import Path

import pytest

from tests.jsonapi_schema import RESPONSE_SCHEMA, SCHEMA_DIR, schema_errors

FIXTURES = SCHEMA_DIR / "schema-fixtures"
EXPECTED_COUNT = 94  # tests/jsonapi/README.md: the fixtures that ship with the schema

REQUEST_SCHEMAS = {
    ("resource", "create"): "jsonapi-1.0-schema_create_resource.json",
    ("resource", "update"): "jsonapi-1.0-schema_update_resource.json",
    ("relationship", "update"): "jsonapi-1.0-schema_update_relationship.json",
}


def _fixture_files():
    return sorted(FIXTURES.rglob("*.json"))


def _verdict_and_schema(path: Path):
    """``('valid' | 'invalid', schema file name)`` from the fixture's place in the tree."""
    parts = path.relative_to(FIXTURES).parts
    verdicts = [part for part in parts[:-1] if part in ("valid", "invalid")]
    assert len(verdicts) == 1, f"{path}: cannot tell whether it is valid or invalid"
    if parts[0] == "response":
        return verdicts[0], RESPONSE_SCHEMA
    assert parts[0] == "request", f"{path}: neither a request nor a response fixture"
    schema = REQUEST_SCHEMAS.get(parts[1:3])
    assert schema, f"{path}: no request schema for {parts[1:3]}"
    return verdicts[0], schema


def test_every_fixture_is_here():
    """The copy in tests/ is complete (the project must test without /work/shared)."""
    files = _fixture_files()
    assert len(files) == EXPECTED_COUNT
    assert all(_verdict_and_schema(path) for path in files)
    for name in (RESPONSE_SCHEMA, *REQUEST_SCHEMAS.values()):
        assert (SCHEMA_DIR / name).is_file(), name


def test_uri_format_is_checked():
    """Without rfc3987 ``format: uri`` is silently ignored and one fixture passes wrongly."""
    import rfc3987  # noqa: F401

    errors = schema_errors({"data": None, "links": {"self": "not a uri at all"}})
    assert errors


@pytest.mark.parametrize(
    "path", _fixture_files(), ids=lambda path: str(path.relative_to(FIXTURES)))
def test_fixture_verdict(path):
    verdict, schema = _verdict_and_schema(path)
    errors = schema_errors(json.loads(path.read_text()), schema)
    if verdict == "valid":
        assert errors == [], f"{path.name} should pass {schema}"
    else:
        assert errors, f"{path.name} should fail {schema}"
