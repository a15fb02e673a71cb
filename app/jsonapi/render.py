"""Documents out: resource objects, relationships, compound documents, links."""

from urllib.parse import quote

from app.jsonapi import attributes
from app.jsonapi.media import JSONAPI_OBJECT
from app.jsonapi.registry import HIDDEN
from app.resources.listing import Listing, PageRequest

# A to-many relationship's meta.count is exact up to this many members; beyond it, it says
# this many and ``count_is_lower_bound``, so no resource object costs a count of every row.
RELATIONSHIP_COUNT_MAX = 1000


class Renderer:
    """Renders one response for one caller (``principal``, None when anonymous).

    To-many linkage is bounded: a resource object carries the first ``linkage_size``
    members, ``meta.count`` (itself bounded: ``RELATIONSHIP_COUNT_MAX``) and a related link
    for the rest.
    """

    def __init__(self, registry, principal, query, api_url, self_url, linkage_size):
        self.registry = registry
        self.principal = principal
        self.query = query
        self.api_url = api_url
        self.self_url = self_url
        self.linkage_size = linkage_size
        self._pages = {}

    # -- links -----------------------------------------------------------------
    def resource_url(self, type_name, resource_id):
        return f"{self.api_url}/{type_name}/{quote(resource_id, safe='')}"

    def relationship_links(self, type_name, resource_id, name):
        return _relationship_links(self.resource_url(type_name, resource_id), name)

    # -- resource objects ------------------------------------------------------
    def identifier(self, type_name, obj):
        resource_id = self.registry[type_name].id_of(obj, self.principal)
        return None if resource_id is None else {"type": type_name, "id": resource_id}

    def resource(self, type_name, obj):
        resource_type = self.registry[type_name]
        resource_id = resource_type.id_of(obj, self.principal)
        wanted = self.query.fields.get(type_name)
        resource = {"type": type_name, "id": resource_id,
                    "attributes": self.attributes(resource_type, obj, wanted)}
        url = self.resource_url(type_name, resource_id)
        relationships = {
            name: self._relationship(url, relationship, obj)
            for name, relationship in resource_type.relationships.items()
            if wanted is None or name in wanted
        }
        if relationships:
            resource["relationships"] = relationships
        resource["links"] = {"self": url}
        return resource

    def attributes(self, resource_type, obj, wanted=None):
        only = None
        if wanted is not None:
            only = ("id", *sorted(set(wanted) & resource_type.attribute_names))
        shown = attributes.dump(resource_type.schema, obj, only)
        for name, visible in resource_type.private_attributes.items():
            if name in shown and not visible(obj, self.principal):
                del shown[name]
        return shown

    def _relationship(self, resource_url, relationship, obj):
        result = {"links": _relationship_links(resource_url, relationship.name)}
        if relationship.links_only and not any(
                relationship.name in path for path in self.query.include):
            return result
        linkage = self.linkage(relationship, obj)
        if linkage is not HIDDEN:
            result["data"] = linkage
            if relationship.many:
                result["meta"] = _count_meta(self.members(relationship, obj).total)
        return result

    def linkage(self, relationship, obj):
        """Resource identifier(s) for a relationship, or HIDDEN when not shown."""
        if relationship.many:
            if not self.may_list(relationship, obj):
                return HIDDEN
            identifiers = (self.identifier(relationship.type, item)
                           for item in self.members(relationship, obj).items)
            return [identifier for identifier in identifiers if identifier is not None]
        related_id = relationship.to_one_id(obj, self.principal)
        if related_id is HIDDEN or related_id is None:
            return related_id
        return {"type": relationship.type, "id": related_id}

    def may_list(self, relationship, obj):
        return relationship.visible is None or relationship.visible(obj, self.principal)

    def members(self, relationship, obj):
        """The first page of a to-many relationship's members, fetched once a document."""
        key = (relationship.name, id(obj))
        if key not in self._pages:
            first_page = Listing(page=PageRequest(size=self.linkage_size, want_total=True,
                                                  count_limit=RELATIONSHIP_COUNT_MAX + 1))
            self._pages[key] = relationship.page(self.principal, obj, first_page)
        return self._pages[key]

    def related(self, relationship, obj):
        if not relationship.many:
            return relationship.related(obj)
        return self.members(relationship, obj).items if self.may_list(relationship, obj) else []

    # -- documents -------------------------------------------------------------
    def document(self, type_name, primary, *, links=None, meta=None):
        objects = primary if isinstance(primary, list) else [] if primary is None else [primary]
        tree = include_tree(self.query.include)
        included = self._collect_included(type_name, objects, tree)
        rendered = [self.resource(type_name, obj) for obj in objects]
        document: dict[str, object] = {"jsonapi": JSONAPI_OBJECT}
        if isinstance(primary, list):
            document["data"] = rendered
        else:
            document["data"] = rendered[0] if rendered else None
        if self.query.include_requested:
            document["included"] = [self.resource(included_type, obj)
                                    for included_type, obj in included.values()]
        document["links"] = {"self": self.self_url, **(links or {})}
        if meta:
            document["meta"] = meta
        return document

    def _collect_included(self, type_name, objects, tree):
        seen = {(type_name, self.registry[type_name].id_of(obj, self.principal))
                for obj in objects}
        included: dict[tuple[str, str], tuple[str, object]] = {}
        self._walk(type_name, objects, tree, seen, included)
        return included

    def _walk(self, type_name, objects, tree, seen, included):
        resource_type = self.registry[type_name]
        for name, subtree in tree.items():
            relationship = resource_type.relationships[name]
            target = self.registry[relationship.type]
            reached = []
            for obj in objects:
                if not relationship.many and self.linkage(relationship, obj) is HIDDEN:
                    continue
                for related in self.related(relationship, obj):
                    related_id = target.id_of(related, self.principal)
                    if related_id is None:
                        continue
                    reached.append(related)
                    key = (relationship.type, related_id)
                    if key not in seen:
                        seen.add(key)
                        included[key] = (relationship.type, related)
            self._walk(relationship.type, reached, subtree, seen, included)


def _relationship_links(resource_url, name):
    return {"self": f"{resource_url}/relationships/{name}", "related": f"{resource_url}/{name}"}


def _count_meta(counted):
    if counted > RELATIONSHIP_COUNT_MAX:
        return {"count": RELATIONSHIP_COUNT_MAX, "count_is_lower_bound": True}
    return {"count": counted}


def include_tree(paths):
    tree: dict[str, dict] = {}
    for path in paths:
        node = tree
        for step in path:
            node = node.setdefault(step, {})
    return tree
