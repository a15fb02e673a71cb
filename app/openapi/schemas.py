"""JSON Schemas for the OpenAPI document, drawn from the marshmallow schemas the views load
and dump with (apispec's marshmallow converter), and each surface's error shape.

Request bodies take a schema's loadable fields, responses its dumped fields. A dumped
attribute may be null (the columns behind most of them are nullable, and sparse fieldsets
or privacy leave any of them out), so response attributes are never ``required``.
"""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from app.api.schemas.fields import Timestamp
from app.api.schemas.notifications import (
    AUDIENCE_JSON_SCHEMA,
    THROTTLE_JSON_SCHEMA,
    Audience,
    PushTime,
    TextOrObject,
    Throttle,
)
from app.jsonapi.media import JSONAPI_OBJECT

OPENAPI_VERSION = "3.1.0"
TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
NULL = "null"


def _custom_fields(_converter, field, **_):
    """The service's own field types, as the JSON they are on the wire."""
    if isinstance(field, Timestamp):
        return dict(TIMESTAMP)
    if isinstance(field, PushTime):
        return {"type": ["string", "integer", NULL]}
    if isinstance(field, TextOrObject):
        return {"type": ["string", "object", NULL]}
    if isinstance(field, Audience):
        return dict(AUDIENCE_JSON_SCHEMA)
    if isinstance(field, Throttle):
        return dict(THROTTLE_JSON_SCHEMA)
    return {}


def _converter():
    plugin = MarshmallowPlugin()
    APISpec("pushreg", "1", OPENAPI_VERSION, plugins=[plugin])  # sets the plugin up
    assert plugin.converter is not None  # APISpec has set the plugin up
    plugin.converter.add_attribute_function(_custom_fields)
    return plugin.converter


CONVERTER = _converter()


def _fields_schema(fields, partial):
    schema = CONVERTER.fields2jsonschema(fields, partial=partial)
    for prop in schema["properties"].values():
        prop.pop("readOnly", None)
        prop.pop("writeOnly", None)
    return schema


def loadable(schema_class, partial=False):
    """The object a schema loads: its writable fields, by their names on the wire."""
    fields = {name: field for name, field in schema_class().fields.items()
              if not field.dump_only and name != "id"}
    return _fields_schema(fields, partial)


def dumped(schema_class, *, extra=None):
    """The object a schema dumps (every member may be null), plus ``extra`` members."""
    fields = {name: field for name, field in schema_class().fields.items()
              if not field.load_only}
    schema = _fields_schema(fields, partial=True)
    for prop in schema["properties"].values():
        _allow_null(prop)
    schema["properties"].update(extra or {})
    return schema


def _allow_null(prop):
    kind = prop.get("type")
    if isinstance(kind, str):
        prop["type"] = [kind, NULL]
    elif isinstance(kind, list) and NULL not in kind:
        kind.append(NULL)
    if "enum" in prop and None not in prop["enum"]:
        prop["enum"] = [*prop["enum"], None]


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema):
    return {"oneOf": [schema, {"type": NULL}]}


def array(items):
    return {"type": "array", "items": items}


def obj(properties, required=(), **more):
    schema = {"type": "object", "properties": properties, **more}
    if required:
        schema["required"] = list(required)
    return schema


STRING = {"type": "string"}

# -- JSON:API -------------------------------------------------------------------------
LINK = {"type": ["string", "null"]}
LINKS = {"type": "object", "additionalProperties": LINK}
JSONAPI_MEMBER = obj({"version": {"const": JSONAPI_OBJECT["version"]}})
IDENTIFIER = obj({"type": STRING, "id": STRING}, ("type", "id"))
LINKAGE = {"oneOf": [{"type": NULL}, IDENTIFIER, array(IDENTIFIER)]}
RELATIONSHIP = obj({"data": LINKAGE, "links": LINKS, "meta": {"type": "object"}})
ANY_RESOURCE = obj({"type": STRING, "id": STRING, "attributes": {"type": "object"},
                    "relationships": {"type": "object"}, "links": LINKS}, ("type", "id"))

JSONAPI_ERROR = obj({
    "id": STRING, "status": STRING, "code": STRING, "title": STRING, "detail": STRING,
    "source": obj({"pointer": STRING, "parameter": STRING, "header": STRING}),
    "meta": {"type": "object"},
}, ("status", "code", "title"))
JSONAPI_ERRORS = obj({"jsonapi": JSONAPI_MEMBER, "errors": array(JSONAPI_ERROR)},
                     ("errors",))


def resource_object(resource_type):
    """A resource object of ``resource_type`` as responses show it."""
    relationships = {name: RELATIONSHIP for name in resource_type.relationships}
    return obj({
        "type": {"const": resource_type.type},
        "id": STRING,
        "attributes": dumped(resource_type.schema),
        "relationships": obj(relationships),
        "links": LINKS,
    }, ("type", "id"))


def resource_document(type_name):
    return _document(nullable(ref(f"{type_name}.resource")))


def collection_document(type_name):
    return _document(array(ref(f"{type_name}.resource")))


def _document(data):
    return obj({"jsonapi": JSONAPI_MEMBER, "data": data, "included": array(ANY_RESOURCE),
                "links": LINKS, "meta": {"type": "object"}}, ("data",))


def linkage_document():
    return obj({"jsonapi": JSONAPI_MEMBER, "data": LINKAGE, "links": LINKS,
                "meta": {"type": "object"}}, ("data",))


def request_document(resource_type, *, id_required=False, relationships=None):
    """What a POST or PATCH of ``resource_type`` takes."""
    data = obj({
        "type": {"const": resource_type.type},
        "id": STRING,
        "attributes": loadable(resource_type.schema, partial=True),
        "relationships": obj(relationships or {}),
    }, ("type", "id") if id_required else ("type",))
    return obj({"data": data}, ("data",))


def identifier_document(type_name):
    return obj({"data": obj({"type": {"const": type_name}, "id": STRING}, ("type", "id"))},
               ("data",))


def identifiers_document(type_name):
    return obj({"data": array(obj({"type": {"const": type_name}, "id": STRING},
                                  ("type", "id")))}, ("data",))


# -- the seed formats' error shapes (app/compat) ---------------------------------------
SEED_001_ERROR = obj({"error": STRING, "message": STRING, "field": STRING, "id": STRING},
                     ("error", "message"))
SEED_002_ENVELOPE = obj({
    "isSuccess": {"type": "boolean"},
    "statusCode": {"type": "integer"},
    "data": {},
    "errors": array(STRING),
    "timestamp": {"type": "string", "format": "date-time"},
}, ("isSuccess", "statusCode", "data", "errors", "timestamp"))
_SEED_003_DETAIL = obj({"code": STRING, "message": STRING, "field": STRING},
                       ("code", "message"))
SEED_003_ERROR = obj({"error": obj({**_SEED_003_DETAIL["properties"],
                                    "details": array(_SEED_003_DETAIL), "id": STRING},
                                   ("code", "message"))}, ("error",))
