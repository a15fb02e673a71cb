"""Relationship and related-resource endpoints for every relationship of every type.

``/api/<type>/<id>/relationships/<name>`` shows linkage; ``/api/<type>/<id>/<name>`` shows
the related resource(s). The parent is found with the type's own ``load``, so both carry
the same authorization as the resource itself.
"""

from app.api import jsonapi_blueprint
from app.auth import current_principal
from app.jsonapi.document import load_body
from app.jsonapi.errors import (
    Conflict,
    Forbidden,
    InvalidDocument,
    InvalidQueryParameter,
    MethodNotAllowed,
    NotFound,
)
from app.jsonapi.flask import (
    collection_response,
    jsonapi_response,
    no_content,
    query_for,
    renderer,
    request_body,
    resource_response,
)
from app.jsonapi.loading import include_options, related_model
from app.jsonapi.media import JSONAPI_OBJECT
from app.jsonapi.query import Capabilities
from app.jsonapi.registry import HIDDEN, registry

blueprint = jsonapi_blueprint("relationships", __name__)


def _relationship(type_name, name):
    resource_type = registry.get(type_name)
    if resource_type is None:
        raise NotFound(f"There is no resource type '{type_name}'.")
    relationship = resource_type.relationships.get(name)
    if relationship is None:
        raise NotFound(f"{type_name} has no relationship '{name}'.")
    return resource_type, relationship


def _parent(type_name, resource_id, name):
    resource_type, relationship = _relationship(type_name, name)
    return resource_type.load(current_principal(), resource_id), relationship


def _visible_linkage(render, relationship, parent):
    linkage = render.linkage(relationship, parent)
    if linkage is HIDDEN:
        raise Forbidden(f"You may not see this resource's {relationship.name}.")
    return linkage


@blueprint.get("/<type_name>/<resource_id>/relationships/<name>")
def get_relationship(type_name, resource_id, name):
    parent, relationship = _parent(type_name, resource_id, name)
    query = query_for(relationship.type, Capabilities())
    if query.include_requested:  # linkage only: a compound document is not offered here
        raise InvalidQueryParameter(
            "include is not supported on relationship endpoints; fetch the related "
            f"resources at …/{name} instead.", parameter="include")
    render = renderer(query)
    links = render.relationship_links(type_name, resource_id, name)
    document = {"jsonapi": JSONAPI_OBJECT, "links": links,
                "data": _visible_linkage(render, relationship, parent)}
    return jsonapi_response(document)


@blueprint.get("/<type_name>/<resource_id>/<name>")
def get_related(type_name, resource_id, name):
    parent, relationship = _parent(type_name, resource_id, name)
    if relationship.many:
        query = query_for(relationship.type, registry[relationship.type].collection)
        options = include_options(related_model(parent, name), query.include)
        page = relationship.related_page(current_principal(), parent, query, options)
        return collection_response(relationship.type, query, page)
    query = query_for(relationship.type, Capabilities())
    _visible_linkage(renderer(query), relationship, parent)
    related = relationship.related(parent)
    return resource_response(relationship.type, query, related[0] if related else None)


@blueprint.route("/<type_name>/<resource_id>/<name>", methods=["POST", "PUT", "PATCH", "DELETE"])
def write_related(type_name, resource_id, name):
    """Related resources are read here and changed at their own URLs."""
    _relationship(type_name, name)
    raise MethodNotAllowed(f"Related resources are read-only here; change them at their "
                           f"own URL or through …/relationships/{name}.",
                           headers={"Allow": "GET, HEAD, OPTIONS"})


@blueprint.delete("/<type_name>/<resource_id>/relationships/<name>")
def remove_from_relationship(type_name, resource_id, name):
    parent, relationship = _parent(type_name, resource_id, name)
    if relationship.remove is None:
        raise _read_only(type_name, name)
    relationship.remove(current_principal(), parent, _identifier_ids(relationship))
    return no_content()


@blueprint.route("/<type_name>/<resource_id>/relationships/<name>", methods=["PATCH", "POST"])
def change_relationship(type_name, resource_id, name):
    _parent(type_name, resource_id, name)
    raise _read_only(type_name, name)


def _read_only(type_name, name):
    return Forbidden(f"The {name} of {type_name} is set by the service, not through this "
                     "endpoint.", code="RELATIONSHIP_READ_ONLY")


def _identifier_ids(relationship):
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
            raise Conflict(f"Members of this relationship are '{relationship.type}'.",
                           pointer=f"/data/{index}/type", code="TYPE_MISMATCH")
        ids.append(identifier["id"])
    return ids
