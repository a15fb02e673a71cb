"""Attributes in and out through marshmallow-jsonapi: the one module that uses the library.

The schemas in ``app/api/schemas/`` declare each type's attributes — JSON types, validation, which
are read-only — and the library loads and dumps them. Ids, relationships, links and
compound documents are drawn by ``render.py`` instead, because what they show depends on
the caller: a session's id only to its holder, a user's devices only to the user, to-many
linkage a page at a time. The library's Relationship field has no notion of a caller, and
it collects ``included`` on the schema instance across dumps. Since the schemas declare no
relationships, their instances carry no request state and are shared by every request
(building one deep-copies every field: a tenth of a token PATCH's CPU).
"""

from functools import lru_cache

from marshmallow import ValidationError, missing
from marshmallow.utils import get_value

from app.errors import ErrorList, InvalidAttribute


@lru_cache(maxsize=512)
def _schema(schema_class, only=None):
    return schema_class(only=only)


@lru_cache(maxsize=512)
def _attribute_fields(schema_class, only=None):
    """(name, field) of what ``dump`` shows: the dump fields but the id."""
    return tuple((name, field) for name, field in _schema(schema_class, only).dump_fields.items()
                 if name != "id")


def dump(schema_class, obj, only=None):
    """The attributes of ``obj`` as JSON values; ``only`` names a sparse fieldset.

    Each field serialises itself as the schema's ``dump`` would have it; the library's
    post-dump step, which wraps them into a resource object we take apart again (the
    schemas declare no relationships or meta fields), is skipped: it cost as much as
    the fields themselves on every resource drawn."""
    accessor = _attribute_of if not hasattr(type(obj), "__getitem__") else get_value
    shown = {}
    for name, field in _attribute_fields(schema_class, only):
        value = field.serialize(name, obj, accessor=accessor)
        if value is not missing:
            shown[field.data_key or name] = value
    return shown


def _attribute_of(obj, name, default):
    """marshmallow's ``get_value`` for an object that is no mapping (a model): a plain
    attribute, or a dotted path of them."""
    if "." not in name:
        return getattr(obj, name, default)
    return get_value(obj, name, default)


def read_only_names(schema_class):
    schema = _schema(schema_class)
    return frozenset(schema.dump_fields) - frozenset(schema.load_fields) - {"id"}


def load(schema_class, type_name, attributes):
    """Validated attributes, by name; every problem reported at once, each naming its
    attribute. Only names the schema can load may be given (see ``split``)."""
    try:
        return _schema(schema_class).load(
            {"data": {"type": type_name, "attributes": attributes}}, partial=True)
    except ValidationError as exc:
        raise ErrorList([InvalidAttribute(detail, field=name)
                         for name, detail in _field_errors(exc)]) from exc


def _field_errors(exc):
    for error in exc.messages.get("errors", []):
        name = error["source"]["pointer"].rpartition("/")[2]
        yield name, error["detail"]


def split(schema_class, attributes):
    """``attributes`` as (writable, read-only) dicts; an unknown name is an error."""
    schema = _schema(schema_class)
    read_only = read_only_names(schema_class)
    unknown = [name for name in attributes
               if name not in schema.load_fields and name not in read_only]
    if unknown:
        raise ErrorList([InvalidAttribute(f"'{name}' is not an attribute of this resource.",
                                          field=name) for name in unknown])
    writable = {name: value for name, value in attributes.items() if name not in read_only}
    return writable, {name: attributes[name] for name in attributes if name in read_only}
