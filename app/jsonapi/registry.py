"""Resource types: how a model is shown as a JSON:API resource object."""

import builtins
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema

from app.jsonapi.query import Capabilities

HIDDEN = object()  # linkage exists but the caller may not see it


@dataclass(frozen=True)
class Relationship:
    """A relationship the service exposes.

    To-one: ``key`` names the column holding the related id, so linkage needs no query;
    ``linkage(obj, principal)`` overrides how that id is shown (or HIDDEN).
    To-many: ``visible(obj, principal)`` says whether its members may be listed to the
    caller; ``page(principal, parent, listing)`` pages them (the related endpoint, and the
    bounded linkage of a resource object); ``remove(principal, parent, ids)`` takes members
    out. ``links_only``: a resource object shows its links and no linkage unless the
    relationship is included (its members are not worth a query per resource on a page).
    """

    name: str
    type: str
    many: bool = False
    key: str | None = None
    linkage: Callable[..., Any] | None = None
    visible: Callable[..., bool] | None = None
    page: Callable[..., Any] | None = None
    remove: Callable[..., Any] | None = None
    links_only: bool = False

    def related(self, obj):
        value = getattr(obj, self.name)
        return [] if value is None else [value]

    def to_one_id(self, obj, principal):
        if self.linkage is not None:
            return self.linkage(obj, principal)
        assert self.key is not None  # a to-one relationship names its column or its linkage
        value = getattr(obj, self.key)
        return None if value is None else str(value)


def string_id(obj, _principal):
    return str(obj.id)


@dataclass
class ResourceType:
    """``load(principal, id, include)`` finds one resource and checks the caller may see
    it: the relationship endpoints use it, so their authorization is the resource's own."""

    type: str
    schema: builtins.type[Schema]  # (``type`` is the field above, here)
    id_of: Callable[[Any, Any], str] = string_id
    load: Callable[..., Any] | None = None
    collection: Capabilities = field(default_factory=lambda: Capabilities(collection=True))
    relationships: dict[str, Relationship] = field(default_factory=dict)
    private_attributes: dict[str, object] = field(default_factory=dict)

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
