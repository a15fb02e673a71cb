"""Documents in: the request body parsed, its type and id checked, its attributes loaded."""

import json
from dataclasses import dataclass

from marshmallow import ValidationError

from app.jsonapi.errors import (
    Conflict,
    ErrorList,
    Forbidden,
    InvalidAttribute,
    InvalidDocument,
    InvalidJson,
)


@dataclass
class ResourceInput:
    id: str | None
    attributes: dict


def load_body(raw):
    if not raw:
        raise InvalidDocument("The request needs a JSON:API document with a 'data' member.",
                              pointer="")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise InvalidDocument("The document must be a JSON object.", pointer="")
    if "data" not in body:
        raise InvalidDocument("The document must have a 'data' member.", pointer="")
    return body


def parse_resource(raw, type_name, schema, *, url_id=None, normalise_id=None,
                   id_required=False):
    """Validate a single-resource document against ``type_name`` and its schema.

    ``url_id`` is the id from the URL; a body id that differs from it is a 409 conflict.
    ``normalise_id`` maps both to canonical form first (a token written two ways is one
    token) and raises InvalidAttribute for a malformed id.
    """
    data = load_body(raw)["data"]
    if not isinstance(data, dict):
        raise InvalidDocument("'data' must be a resource object.", pointer="/data")
    _check_type(data, type_name)
    resource_id = _check_id(data, url_id, normalise_id, id_required)
    attributes = data.get("attributes", {})
    if not isinstance(attributes, dict):
        raise InvalidDocument("'attributes' must be an object.", pointer="/data/attributes")
    _refuse_relationships(data.get("relationships", {}))
    return ResourceInput(resource_id, load_attributes(schema, type_name, attributes))


def _refuse_relationships(relationships):
    """No resource lets a client set its relationships: the service derives them.

    A relationship object without ``data`` (links or meta only, as a client echoes what
    it fetched) asks for no change and passes.
    """
    if not isinstance(relationships, dict):
        raise InvalidDocument("'relationships' must be an object.",
                              pointer="/data/relationships")
    for name, relationship in relationships.items():
        if isinstance(relationship, dict) and "data" not in relationship:
            continue
        raise Forbidden(f"The relationship '{name}' is set by the service, not by clients.",
                        pointer=f"/data/relationships/{name}", code="RELATIONSHIP_READ_ONLY")


def _check_type(data, type_name):
    if "type" not in data:
        raise InvalidDocument("The resource object must have a 'type'.", pointer="/data")
    if data["type"] != type_name:
        raise Conflict(f"This endpoint takes '{type_name}', not '{data['type']}'.",
                       pointer="/data/type", code="TYPE_MISMATCH")


def _check_id(data, url_id, normalise_id, id_required):
    if "id" not in data:
        if id_required:
            raise InvalidDocument("The resource object must have an 'id'.", pointer="/data")
        return None
    body_id = data["id"]
    if not isinstance(body_id, str):
        raise InvalidDocument("'id' must be a string.", pointer="/data/id")
    if normalise_id is not None:
        body_id = normalise_id(body_id, "/data/id")
    if url_id is not None and body_id != url_id:
        raise Conflict("The id in the document does not match the id in the URL.",
                       pointer="/data/id", code="ID_MISMATCH")
    return body_id


def load_attributes(schema, type_name, attributes):
    """Deserialise attributes with the type's schema; every problem reported with a pointer."""
    try:
        return schema.load({"data": {"type": type_name, "attributes": attributes}},
                           partial=True)
    except ValidationError as exc:
        raise ErrorList([
            InvalidAttribute(_detail(schema, error), pointer=error["source"]["pointer"])
            for error in _errors_of(exc)
        ]) from exc


def _detail(schema, error):
    """marshmallow calls a dump-only field "Unknown field." on load: say it is read-only."""
    prefix, _, name = error["source"]["pointer"].rpartition("/")
    if (prefix == "/data/attributes" and name != "id" and name in schema.dump_fields
            and name not in schema.load_fields):
        return f"'{name}' is read-only: the server sets it."
    return error.get("detail")


def _errors_of(exc):
    messages = exc.messages
    errors = messages.get("errors") if isinstance(messages, dict) else None
    if errors:
        return errors
    return [{"detail": str(messages), "source": {"pointer": "/data/attributes"}}]
