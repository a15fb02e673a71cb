"""Documents out: resource objects, relationships, compound documents, links."""

from urllib.parse import quote

from app.jsonapi.media import JSONAPI_OBJECT
from app.jsonapi.registry import HIDDEN


class Renderer:
    """Renders one response. Holds per-request state: schema instances and the principal."""

    def __init__(self, registry, principal, query, api_url, self_url):
        self.registry = registry
        self.principal = principal
        self.query = query
        self.api_url = api_url
        self.self_url = self_url
        self._schemas = {}

    # -- links -----------------------------------------------------------------
    def resource_url(self, type_name, resource_id):
        return f"{self.api_url}/{type_name}/{quote(resource_id, safe='')}"

    def relationship_links(self, type_name, resource_id, name):
        base = self.resource_url(type_name, resource_id)
        return {"self": f"{base}/relationships/{name}", "related": f"{base}/{name}"}

    # -- resource objects ------------------------------------------------------
    def identifier(self, type_name, obj):
        resource_id = self.registry[type_name].id_of(obj, self.principal)
        return None if resource_id is None else {"type": type_name, "id": resource_id}

    def resource(self, type_name, obj, full_linkage=frozenset()):
        resource_type = self.registry[type_name]
        resource_id = resource_type.id_of(obj, self.principal)
        wanted = self.query.fields.get(type_name)
        resource = {"type": type_name, "id": resource_id,
                    "attributes": self._attributes(resource_type, obj, wanted)}
        relationships = {
            name: self._relationship(type_name, resource_id, relationship, obj,
                                     name in full_linkage)
            for name, relationship in resource_type.relationships.items()
            if wanted is None or name in wanted
        }
        if relationships:
            resource["relationships"] = relationships
        resource["links"] = {"self": self.resource_url(type_name, resource_id)}
        return resource

    def _attributes(self, resource_type, obj, wanted):
        schema = self._schema(resource_type, wanted)
        attributes = schema.dump(obj)["data"].get("attributes", {})
        for name, visible in resource_type.private_attributes.items():
            if name in attributes and not visible(obj, self.principal):
                del attributes[name]
        return attributes

    def _schema(self, resource_type, wanted):
        key = (resource_type.type, wanted)
        if key not in self._schemas:
            only = None
            if wanted is not None:
                only = ("id", *(name for name in wanted if name in resource_type.attribute_names))
            self._schemas[key] = resource_type.schema_instance(only)
        return self._schemas[key]

    def _relationship(self, type_name, resource_id, relationship, obj, full_linkage):
        result = {"links": self.relationship_links(type_name, resource_id, relationship.name)}
        linkage = self.linkage(relationship, obj, full_linkage)
        if linkage is not HIDDEN:
            result["data"] = linkage
        return result

    def linkage(self, relationship, obj, full_linkage=True):
        """Resource identifier(s) for a relationship, or HIDDEN when not shown."""
        if relationship.many:
            hidden = relationship.visible and not relationship.visible(obj, self.principal)
            if not full_linkage or hidden:
                return HIDDEN
            identifiers = (self.identifier(relationship.type, item)
                           for item in relationship.related(obj))
            return [identifier for identifier in identifiers if identifier is not None]
        related_id = relationship.to_one_id(obj, self.principal)
        if related_id is HIDDEN or related_id is None:
            return related_id
        return {"type": relationship.type, "id": related_id}

    # -- documents -------------------------------------------------------------
    def document(self, type_name, primary, *, links=None, meta=None):
        objects = primary if isinstance(primary, list) else [] if primary is None else [primary]
        tree = include_tree(self.query.include)
        included = self._collect_included(type_name, objects, tree)
        linkage_by_type = _linkage_names(self.registry, type_name, tree)
        rendered = [self.resource(type_name, obj, linkage_by_type.get(type_name, frozenset()))
                    for obj in objects]
        document = {"jsonapi": JSONAPI_OBJECT}
        if isinstance(primary, list):
            document["data"] = rendered
        else:
            document["data"] = rendered[0] if rendered else None
        if self.query.include_requested:
            document["included"] = [
                self.resource(included_type, obj, linkage_by_type.get(included_type, frozenset()))
                for included_type, obj in included.values()
            ]
        document["links"] = {"self": self.self_url, **(links or {})}
        if meta:
            document["meta"] = meta
        return document

    def _collect_included(self, type_name, objects, tree):
        seen = {(type_name, self.registry[type_name].id_of(obj, self.principal))
                for obj in objects}
        included = {}
        self._walk(type_name, objects, tree, seen, included)
        return included

    def _walk(self, type_name, objects, tree, seen, included):
        resource_type = self.registry[type_name]
        for name, subtree in tree.items():
            relationship = resource_type.relationships[name]
            target = self.registry[relationship.type]
            reached = []
            for obj in objects:
                if self.linkage(relationship, obj) is HIDDEN:
                    continue
                for related in relationship.related(obj):
                    related_id = target.id_of(related, self.principal)
                    if related_id is None:
                        continue
                    reached.append(related)
                    key = (relationship.type, related_id)
                    if key not in seen:
                        seen.add(key)
                        included[key] = (relationship.type, related)
            self._walk(relationship.type, reached, subtree, seen, included)


def include_tree(paths):
    tree = {}
    for path in paths:
        node = tree
        for step in path:
            node = node.setdefault(step, {})
    return tree


def _linkage_names(registry, type_name, tree):
    """Per type, the relationships whose full linkage the document must carry."""
    names = {}

    def visit(current, subtree):
        for name, child in subtree.items():
            names.setdefault(current, set()).add(name)
            visit(registry[current].relationships[name].type, child)

    visit(type_name, tree)
    return {key: frozenset(value) for key, value in names.items()}
