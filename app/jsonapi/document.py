"""Documents in: the request body parsed, its type and id checked, its members sorted into
what the client may change and what it merely sends back."""

from dataclasses import dataclass, field

from app.errors import Conflict, ErrorList, Forbidden
from app.jsonapi import attributes as attribute_schema
from app.jsonapi.errors import InvalidDocument, InvalidJson, at, type_mismatch
from app.jsonapi.registry import HIDDEN
from app.web.untrusted import MAX_DEPTH, child, loads, too_deep, unsafe_text

MISSING = object()


@dataclass
class ResourceInput:
    id: str | None
    attributes: dict  # validated values the client may change
    read_only: dict = field(default_factory=dict)  # read-only attributes, as sent
    linkage: dict = field(default_factory=dict)  # relationship name → linkage, as sent

    @property
    def echoes_members(self):
        """Does the client send back read-only members (as a fetched resource has)?"""
        return bool(self.read_only or self.linkage)


def load_body(raw):
    if not raw:
        raise InvalidDocument("The request needs a JSON:API document with a 'data' member.",
                              pointer="")
    try:
        text = raw.decode("utf-8-sig")  # JSON:API is UTF-8 (a byte order mark is ignored)
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"The request body is not UTF-8: {exc}.") from exc
    if too_deep(text):
        raise InvalidJson(f"The request body nests arrays and objects more than {MAX_DEPTH} "
                          "deep.")
    try:
        body = loads(text)
    except ValueError as exc:
        raise InvalidJson(f"The request body is not valid JSON: {exc}.") from exc
    problem = unsafe_text(body)
    if problem:
        pointer, what = problem
        raise InvalidDocument(f"Text in the document is not accepted: {what}.", pointer=pointer)
    if not isinstance(body, dict):
        raise InvalidDocument("The document must be a JSON object.", pointer="")
    if "data" not in body:
        raise InvalidDocument("The document must have a 'data' member.", pointer="")
    return body


def parse_resource(raw, resource_type, *, url_id=None, normalise_id=None, id_required=False):
    """Check a single-resource document against ``resource_type`` and load its attributes.

    ``url_id`` is the id from the URL; a body id that differs from it is a 409 conflict.
    ``normalise_id(raw)`` maps the body id to canonical form first (a token written two
    ways is one token) and raises for a malformed id.
    """
    data = load_body(raw)["data"]
    if not isinstance(data, dict):
        raise InvalidDocument("'data' must be a resource object.", pointer="/data")
    _check_type(data, resource_type.type)
    resource_id = _check_id(data, url_id, normalise_id, id_required)
    sent = data.get("attributes", {})
    if not isinstance(sent, dict):
        raise InvalidDocument("'attributes' must be an object.", pointer="/data/attributes")
    writable, read_only = attribute_schema.split(resource_type.schema, sent)
    return ResourceInput(
        id=resource_id,
        attributes=attribute_schema.load(resource_type.schema, resource_type.type, writable),
        read_only=read_only,
        linkage=_sent_linkage(data.get("relationships", {})),
    )


def parse_new_resource(raw, resource_type):
    """A document that creates a resource: nothing exists yet that it could echo, so any
    read-only member or linkage it sends is refused."""
    parsed = parse_resource(raw, resource_type)
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, None, resource_type, None)
    return parsed


def _sent_linkage(relationships):
    """Linkage the client sent; a relationship object without ``data`` (links or meta
    only) asks for nothing."""
    if not isinstance(relationships, dict):
        raise InvalidDocument("'relationships' must be an object.",
                              pointer="/data/relationships")
    for name, relationship in relationships.items():
        if not isinstance(relationship, dict):
            raise InvalidDocument(f"The relationship '{name}' must be an object.",
                                  pointer=child("/data/relationships", name))
    return {name: relationship["data"] for name, relationship in relationships.items()
            if "data" in relationship}


def _check_type(data, type_name):
    if "type" not in data:
        raise InvalidDocument("The resource object must have a 'type'.", pointer="/data")
    if data["type"] != type_name:
        raise type_mismatch(f"This endpoint takes '{type_name}', not '{data['type']}'.",
                            "/data/type")


def _check_id(data, url_id, normalise_id, id_required):
    if "id" not in data:
        if id_required:
            raise InvalidDocument("The resource object must have an 'id'.", pointer="/data")
        return None
    body_id = data["id"]
    if not isinstance(body_id, str):
        raise InvalidDocument("'id' must be a string.", pointer="/data/id")
    if normalise_id is not None:
        body_id = normalise_id(body_id)
    if url_id is not None and body_id != url_id:
        raise at("/data/id", Conflict("The id in the document does not match the id in "
                                      "the URL.", code="ID_MISMATCH"))
    return body_id


def refuse_changes_to_read_only(parsed, render, resource_type, current):
    """Read-only members sent back as the client fetched them ask for no change and pass;
    anything else is an unsupported update (403), pointing at the member.

    ``current`` is the resource before the request, None when there is none.
    """
    errors = [at(f"/data/attributes/{name}",
                 Forbidden(f"'{name}' is read-only: the server sets it.",
                           code="READ_ONLY_ATTRIBUTE"))
              for name, value in parsed.read_only.items()
              if current is None or _shown(render, resource_type, current, name) != value]
    errors += [at(f"/data/relationships/{name}",
                  Forbidden(f"The relationship '{name}' is set by the service, not by clients.",
                            code="RELATIONSHIP_READ_ONLY"))
               for name, linkage in parsed.linkage.items()
               if not _same_linkage(render, resource_type, current, name, linkage)]
    if errors:
        raise ErrorList(errors)


def _shown(render, resource_type, current, name):
    return render.attributes(resource_type, current).get(name, MISSING)


def _same_linkage(render, resource_type, current, name, sent):
    relationship = resource_type.relationships.get(name)
    if current is None or relationship is None:
        return False
    linkage = render.linkage(relationship, current)
    if linkage is HIDDEN:
        return False
    if relationship.many:
        return isinstance(sent, list) and _identifiers(sent) == _identifiers(linkage)
    if linkage is None or sent is None:
        return linkage is None and sent is None
    return _identifiers([sent]) == _identifiers([linkage])


def _identifiers(linkage):
    if not all(isinstance(item, dict) for item in linkage):
        return None
    return sorted((str(item.get("type")), str(item.get("id"))) for item in linkage)
