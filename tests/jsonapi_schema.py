"""The official JSON:API schema, loaded offline, as every test response is checked by it."""

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

JSONAPI = "application/vnd.api+json"  # the media type, spelled once for the tests

SCHEMA_DIR = Path(__file__).parent / "jsonapi"
RESPONSE_SCHEMA = "jsonapi-1.0-schema.json"


def _load(name):
    return json.loads((SCHEMA_DIR / name).read_text())


@cache
def _registry():
    schema = _load(RESPONSE_SCHEMA)
    return Registry().with_resource(schema["$id"],
                                    Resource.from_contents(schema, default_specification=DRAFT7))


@cache
def validator(name=RESPONSE_SCHEMA):
    return Draft7Validator(_load(name), registry=_registry(),
                           format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_errors(document, name=RESPONSE_SCHEMA):
    return [f"{list(error.absolute_path)}: {error.message}"
            for error in validator(name).iter_errors(document)]


def assert_valid_jsonapi(document, name=RESPONSE_SCHEMA):
    errors = schema_errors(document, name)
    assert not errors, f"not a valid JSON:API document: {errors}\n{json.dumps(document)[:2000]}"
