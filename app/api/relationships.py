"""Relationship and related-resource endpoints for every relationship of every type.

``/api/<type>/<id>/relationships/<name>`` shows linkage; ``/api/<type>/<id>/<name>`` shows
the related resource(s). The parent is found with the type's own ``load``, so both carry
the same authorization as the resource itself.
"""

from flask import request

from app.api import jsonapi_blueprint, types  # noqa: F401  (types fill the registry)
from app.errors import Forbidden, InvalidQueryParameter, MethodNotAllowed, NotFound
from app.extensions import db
from app.jsonapi.document import load_body
from app.jsonapi.errors import InvalidDocument, relationship_read_only, type_mismatch
from app.jsonapi.flask import (
    collection_response,
    jsonapi_response,
    no_content,
    query_for,
    renderer,
    request_body,
    resource_response,
)
from app.jsonapi.media import JSONAPI_OBJECT
from app.jsonapi.query import Capabilities
from app.jsonapi.registry import HIDDEN, registry
from app.web.auth import USER, require

blueprint = jsonapi_blueprint("relationships", __name__)
# Only the registered types' names: other paths under /api (the seed APIs' /api/v1/…) are
# not relationship URLs.
TYPE = f"<any({', '.join(sorted(registry))}):type_name>"


def _relationship(type_name, name):
    resource_type = registry.get(type_name)
    if resource_type is None:
        raise NotFound(f"There is no resource type '{type_name}'.")
    relationship = resource_type.relationships.get(name)
    if relationship is None:
        raise NotFound(f"{type_name} has no relationship '{name}'.")
    return resource_type, relationship


def _parent(type_name, resource_id, name, include=()):
    resource_type, relationship = _relationship(type_name, name)
    if resource_type.load is None:  # its own blueprint serves reads; nothing else is
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}.",
                               headers={"Allow": "GET, HEAD, OPTIONS"})
    principal = require(USER)
    parent = resource_type.load(principal, resource_id, include)
    return principal, parent, relationship


def _visible_linkage(render, relationship, parent):
    linkage = render.linkage(relationship, parent)
    if linkage is HIDDEN:
        raise Forbidden(f"You may not see this resource's {relationship.name}.")
    return linkage


@blueprint.get(f"/{TYPE}/<resource_id>/relationships/<name>")
def get_relationship(type_name, resource_id, name):
    principal, parent, relationship = _parent(type_name, resource_id, name)
    query = query_for(relationship.type, Capabilities())
    if query.include_requested:  # linkage only: a compound document is not offered here
        raise InvalidQueryParameter(
            "include is not supported on relationship endpoints; fetch the related "
            f"resources at …/{name} instead.", field="include")
    render = renderer(query, principal)
    links = render.relationship_links(type_name, resource_id, name)
    document = {"jsonapi": JSONAPI_OBJECT, "links": links,
                "data": _visible_linkage(render, relationship, parent)}
    return jsonapi_response(document)


@blueprint.get(f"/{TYPE}/<resource_id>/<name>")
def get_related(type_name, resource_id, name):
    _, relationship = _relationship(type_name, name)
    if relationship.many:
        query = query_for(relationship.type, registry[relationship.type].collection)
        principal, parent, _ = _parent(type_name, resource_id, name)
        page = relationship.page(principal, parent, query.listing)
        return collection_response(relationship.type, query, page, principal)
    query = query_for(relationship.type, Capabilities())
    # the related resource's own includes are loaded with the parent
    principal, parent, _ = _parent(type_name, resource_id, name,
                                   tuple((name, *path) for path in query.include))
    _visible_linkage(renderer(query, principal), relationship, parent)
    related = relationship.related(parent)
    return resource_response(relationship.type, query, related[0] if related else None,
                             principal)


@blueprint.route(f"/{TYPE}/<resource_id>/<name>", methods=["POST", "PUT", "PATCH", "DELETE"])
def write_related(type_name, resource_id, name):
    """Related resources are read here and changed at their own URLs."""
    _relationship(type_name, name)
    raise MethodNotAllowed(f"Related resources are read-only here; change them at their "
                           f"own URL or through …/relationships/{name}.",
                           headers={"Allow": "GET, HEAD, OPTIONS"})


@blueprint.delete(f"/{TYPE}/<resource_id>/relationships/<name>")
def remove_from_relationship(type_name, resource_id, name):
    principal, parent, relationship = _parent(type_name, resource_id, name)
    if relationship.remove is None:
        raise _read_only(type_name, name)
    relationship.remove(principal, parent, identifier_ids(relationship))
    db.session.commit()
    return no_content()


@blueprint.route(f"/{TYPE}/<resource_id>/relationships/<name>", methods=["PATCH", "POST"])
def change_relationship(type_name, resource_id, name):
    _parent(type_name, resource_id, name)
    raise _read_only(type_name, name)


def _read_only(type_name, name):
    return relationship_read_only(f"The {name} of {type_name} is set by the service, not "
                                  "through this endpoint.")


def identifier_ids(relationship):
    data = load_body(request_body())["data"]
    if not isinstance(data, list):
        raise InvalidDocument("'data' must be an array of resource identifiers.",
                              pointer="/data")
    ids = []
    for index, identifier in enumerate(data):
        if not isinstance(identifier, dict) or not isinstance(identifier.get("id"), str):
            raise InvalidDocument("Each member needs a 'type' and a string 'id'.",
                                  pointer=f"/data/{index}")
        if identifier.get("type") != relationship.type:
            raise type_mismatch(f"Members of this relationship are '{relationship.type}'.",
                                f"/data/{index}/type")
        ids.append(identifier["id"])
    return ids
