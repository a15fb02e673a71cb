"""Domain errors: what went wrong and which part of the request caused it.

They know no wire format. A service raises one naming the offending *field* and *where*
the client put it; each wire format (``app/jsonapi``, ``app/compat``) renders it in its own
shape — a JSON:API error object with ``source.pointer``, an envelope with a message, …
"""

import enum


class Where(enum.StrEnum):
    """Where the field an error names was sent."""

    ATTRIBUTE = "attribute"  # a named value of the resource sent in the body
    ID = "id"  # the resource's id sent in the body
    ITEM = "item"  # the id of the field-th item of a list sent in the body
    BODY = "body"  # the body as a whole
    URL = "url"  # a value in the path (a resource id in the URL)
    FILTER = "filter"  # a filter on a collection, by name
    PAGE = "page"  # a paging value: size, after, before, total
    QUERY = "query"  # any other query parameter, by its full name
    HEADER = "header"  # a request header, by name
    # recipients or other related resources sent in the body: "users" names the list,
    # "users/3" its fourth member
    RELATIONSHIP = "relationship"


class ServiceError(Exception):
    """An error a client can act on. Subclasses fix the status, code and title."""

    status = 400
    code = "BAD_REQUEST"
    title = "The request is not valid."
    headers_for_status: dict[str, str] = {}
    occurrence_id: str | None = None  # a 5xx's, once logged (``app.web.surfaces``)

    def __init__(self, detail=None, *, field=None, where=None, code=None, title=None,
                 status=None, retry_after=None, headers=None):
        self.title = title or self.title
        self.detail = detail or self.title
        super().__init__(self.detail)
        self.field = field
        self.where = where or (Where.ATTRIBUTE if field is not None else None)
        self.code = code or self.code
        self.status = status or self.status
        self.headers = {**self.headers_for_status, **(headers or {})}
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)
        self.errors = [self]


class BadRequest(ServiceError):
    pass


class InvalidAttribute(ServiceError):
    code = "INVALID_ATTRIBUTE"
    title = "An attribute is not valid."


class InvalidQueryParameter(ServiceError):
    code = "INVALID_QUERY_PARAMETER"
    title = "A query parameter is not supported."

    def __init__(self, detail=None, *, field=None, where=Where.QUERY, **kwargs):
        super().__init__(detail, field=field, where=where, **kwargs)


class NotAuthorized(ServiceError):
    status = 401
    code = "NOT_AUTHORIZED"
    title = "You are not authorized."
    headers_for_status = {"WWW-Authenticate": "Bearer"}  # RFC 9110 §11.6.1


class InvalidIdToken(NotAuthorized):
    """An identity provider's ID token that does not prove who the caller is. The detail
    says what was wrong with it, never what it holds."""

    code = "NOT_AUTHENTICATED"
    title = "The ID token is not valid."


class Forbidden(ServiceError):
    status = 403
    code = "FORBIDDEN"
    title = "You may not do this."


class NotFound(ServiceError):
    status = 404
    code = "NOT_FOUND"
    title = "The resource was not found."


class MethodNotAllowed(ServiceError):
    status = 405
    code = "METHOD_NOT_ALLOWED"
    title = "The method is not allowed for this resource."


class Conflict(ServiceError):
    status = 409
    code = "CONFLICT"
    title = "The request conflicts with the resource."


class PayloadTooLarge(ServiceError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "The request body is too large."


class Unprocessable(ServiceError):
    status = 422
    code = "UNPROCESSABLE"
    title = "The request cannot be carried out."


class TooManyRequests(ServiceError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    title = "Too many requests; try again later."


class InternalError(ServiceError):
    status = 500
    code = "INTERNAL_ERROR"
    title = "Something went wrong on our side."


class BadGateway(ServiceError):
    status = 502
    code = "UPSTREAM_FAILED"
    title = "A service this request depends on failed."


class ServiceUnavailable(ServiceError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    title = "The service is briefly unavailable; try again."
    headers_for_status = {"Retry-After": "1"}


class IdentityProviderUnavailable(ServiceUnavailable):
    """An identity provider's keys could not be fetched: the token may well be valid."""

    title = "The identity provider cannot be reached; try again."


class ErrorList(ServiceError):
    """Several errors answered together (every invalid attribute at once)."""

    def __init__(self, errors):
        first = errors[0]
        super().__init__(first.detail, status=_common_status(errors), code=first.code)
        self.errors = errors


def _common_status(errors):
    statuses = {error.status for error in errors}
    if len(statuses) == 1:
        return statuses.pop()
    return 400 if all(400 <= status < 500 for status in statuses) else 500
