"""Errors as JSON:API error objects: domain errors placed in the document by field, and the
protocol's own errors (media types, document structure), which point into the document."""

import functools
import uuid

from app.errors import Conflict, Forbidden, ServiceError, Where
from app.jsonapi.media import JSONAPI_OBJECT
from app.observability.request_ids import current_request_id
from app.web.untrusted import child


def at(pointer, error):
    """``error`` about the member at a JSON pointer of the request document."""
    error.pointer = pointer
    return error


class InvalidJson(ServiceError):
    code = "INVALID_JSON"
    title = "The request body is not valid JSON."


class InvalidDocument(ServiceError):
    code = "INVALID_DOCUMENT"
    title = "The request document is not a valid JSON:API document."

    def __init__(self, detail, *, pointer):
        super().__init__(detail)
        self.pointer = pointer


class NotAcceptable(ServiceError):
    status = 406
    code = "NOT_ACCEPTABLE"
    title = "None of the accepted media types can be served."


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "The request body's media type is not supported."


def type_mismatch(detail, pointer):
    return at(pointer, Conflict(detail, code="TYPE_MISMATCH"))


def relationship_read_only(detail, pointer=None):
    error = Forbidden(detail, code="RELATIONSHIP_READ_ONLY")
    return error if pointer is None else at(pointer, error)


def _source(error):
    pointer = getattr(error, "pointer", None)
    if pointer is not None:
        return {"pointer": pointer}
    field, where = error.field, error.where
    if where == Where.ATTRIBUTE:
        # a tuple names a member inside an attribute's value, outermost first
        segments = field if isinstance(field, tuple) else (field,)
        return {"pointer": functools.reduce(child, map(str, segments), "/data/attributes")}
    if where == Where.ID:
        return {"pointer": "/data/id"}
    if where == Where.ITEM:
        return {"pointer": f"/data/{field}/id"}
    if where == Where.RELATIONSHIP:
        name, _, index = field.partition("/")
        member = f"/data/{index}" if index else ""
        return {"pointer": f"/data/relationships/{name}{member}"}
    if where == Where.BODY:
        return {"pointer": ""}
    if where == Where.FILTER:
        return {"parameter": f"filter[{field}]"}
    if where == Where.PAGE:
        return {"parameter": f"page[{field}]"}
    if where == Where.QUERY:
        return {"parameter": field}
    if where == Where.HEADER:
        return {"header": field}
    return None  # a value in the URL, or nothing in particular


def error_object(error):
    error_id = getattr(error, "occurrence_id", None) or str(uuid.uuid4())
    document = {"id": error_id, "status": str(error.status), "code": error.code,
                "title": error.title, "detail": error.detail}
    source = _source(error)
    if source:
        document["source"] = source
    if request_id := current_request_id():
        document["meta"] = {"request_id": request_id}
    return document


def error_document(error):
    """The document, and the ids of its error objects (one per occurrence) for the log."""
    objects = [error_object(item) for item in error.errors]
    return [item["id"] for item in objects], {"jsonapi": JSONAPI_OBJECT, "errors": objects}
