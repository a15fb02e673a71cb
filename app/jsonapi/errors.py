"""The one error registry: every failure leaves the service as a JSON:API error document."""

import uuid

from app.jsonapi.media import JSONAPI_OBJECT


class ApiError(Exception):
    """An error a client can act on. Subclasses fix status, code and title."""

    status = 400
    code = "BAD_REQUEST"
    title = "The request is not valid."
    retry_after = None  # seconds; sent as Retry-After when set

    def __init__(self, detail=None, *, pointer=None, parameter=None, header=None,
                 headers=None, code=None, title=None, status=None, retry_after=None):
        super().__init__(detail or self.title)
        self.detail = detail or (title or self.title)
        self.pointer = pointer
        self.parameter = parameter
        self.header = header
        self.headers = dict(headers or {})
        retry_after = retry_after or self.retry_after
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)
        self.code = code or self.code
        self.title = title or self.title
        self.status = status or self.status
        self.errors = [self]

    def to_object(self, error_id):
        error = {
            "id": error_id,
            "status": str(self.status),
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
        }
        source = {}
        if self.pointer is not None:
            source["pointer"] = self.pointer
        if self.parameter is not None:
            source["parameter"] = self.parameter
        if self.header is not None:
            source["header"] = self.header
        if source:
            error["source"] = source
        return error


class BadRequest(ApiError):
    pass


class InvalidJson(ApiError):
    code = "INVALID_JSON"
    title = "The request body is not valid JSON."


class InvalidDocument(ApiError):
    code = "INVALID_DOCUMENT"
    title = "The request document is not a valid JSON:API document."


class InvalidAttribute(ApiError):
    code = "INVALID_ATTRIBUTE"
    title = "An attribute is not valid."


class InvalidQueryParameter(ApiError):
    code = "INVALID_QUERY_PARAMETER"
    title = "A query parameter is not supported."


class NotAuthorized(ApiError):
    status = 401
    code = "NOT_AUTHORIZED"
    title = "You are not authorized."


class Forbidden(ApiError):
    status = 403
    code = "FORBIDDEN"
    title = "You may not do this."


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"
    title = "The resource was not found."


class MethodNotAllowed(ApiError):
    status = 405
    code = "METHOD_NOT_ALLOWED"
    title = "The method is not allowed for this resource."


class NotAcceptable(ApiError):
    status = 406
    code = "NOT_ACCEPTABLE"
    title = "None of the accepted media types can be served."


class Conflict(ApiError):
    status = 409
    code = "CONFLICT"
    title = "The request conflicts with the resource."


class PayloadTooLarge(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "The request body is too large."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "The request body's media type is not supported."


class Unprocessable(ApiError):
    status = 422
    code = "UNPROCESSABLE"
    title = "The request cannot be carried out."


class TooManyRequests(ApiError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    title = "Too many requests; try again later."


class BadGateway(ApiError):
    status = 502
    code = "UPSTREAM_FAILED"
    title = "A service this request depends on failed."


class ServiceUnavailable(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    title = "The service is briefly unavailable; try again."
    retry_after = 1


class InternalError(ApiError):
    status = 500
    code = "INTERNAL_ERROR"
    title = "Something went wrong on our side."


class ErrorList(ApiError):
    """Several errors answered together (e.g. every invalid attribute at once)."""

    def __init__(self, errors):
        first = errors[0]
        super().__init__(first.detail, status=_common_status(errors), code=first.code)
        self.errors = errors


def _common_status(errors):
    statuses = {error.status for error in errors}
    if len(statuses) == 1:
        return statuses.pop()
    return 400 if all(400 <= status < 500 for status in statuses) else 500


def error_document(error):
    """The document, and the ids of its error objects (one per occurrence) for the log."""
    objects = [item.to_object(str(uuid.uuid4())) for item in error.errors]
    return [item["id"] for item in objects], {"jsonapi": JSONAPI_OBJECT, "errors": objects}


