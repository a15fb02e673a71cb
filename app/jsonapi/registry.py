"""Resource types: how a model is shown as a JSON:API resource object."""

import threading
from dataclasses import dataclass, field

from app.jsonapi.query import Capabilities

HIDDEN = object()  # linkage exists but the caller may not see it
_schema_instances = threading.local()


@dataclass(frozen=True)
class Relationship:
    """A relationship the service exposes.

    ``key`` names the column holding a to-one's id, so linkage needs no query;
    ``linkage`` overrides how that id is shown (or hidden) to a principal;
    ``visible`` says whether a to-many's members may be listed to a principal;
    ``related_page(principal, parent, query)`` pages a to-many's members for its related
    endpoint; ``remove(principal, parent, ids)`` takes members out of a to-many (the only
    relationship write the service allows; every other is refused with 403).
    """

    name: str
    type: str
    many: bool = False
    key: str | None = None
    linkage: object = None
    visible: object = None
    related_page: object = None
    remove: object = None

    def related(self, obj):
        value = getattr(obj, self.name)
        if self.many:
            return list(value)
        return [] if value is None else [value]

    def to_one_id(self, obj, principal):
        if self.linkage is not None:
            return self.linkage(obj, principal)
        value = getattr(obj, self.key)
        return None if value is None else str(value)


def string_id(obj, _principal):
    return str(obj.id)


@dataclass
class ResourceType:
    """``load(principal, id)`` finds one resource and checks the caller may see it: the
    relationship endpoints use it, so their authorization is the resource's own."""

    type: str
    schema: type
    id_of: object = string_id
    load: object = None
    collection: Capabilities = field(default_factory=lambda: Capabilities(collection=True))
    relationships: dict[str, Relationship] = field(default_factory=dict)
    private_attributes: dict[str, object] = field(default_factory=dict)

    def schema_instance(self, only=None):
        """This thread's instance of the full schema, made once and reused by later requests;
        a new instance for a sparse fieldset (``only``), whose variety a client chooses.

        Building a marshmallow schema deep-copies every field (about 50 µs, a tenth of the
        CPU of a token PATCH). marshmallow-jsonapi keeps ``included_data`` and
        ``document_meta`` on the instance between calls, so both are emptied here, before
        each request uses it; one instance per thread, so no two requests share one.
        """
        if only is not None:
            return self.schema(only=only)
        cache = _schema_instances.__dict__.setdefault("schemas", {})
        schema = cache.get(self.type)
        if schema is None:
            schema = cache[self.type] = self.schema()
        schema.included_data = {}
        schema.document_meta = {}
        return schema

    @property
    def attribute_names(self):
        return frozenset(name for name in self.schema._declared_fields if name != "id")

    @property
    def field_names(self):
        return self.attribute_names | frozenset(self.relationships)


class Registry(dict):
    def add(self, resource_type):
        self[resource_type.type] = resource_type
        return resource_type


registry = Registry()
