"""Which wire format answers a request. Each surface (JSON:API under ``/api``, the seed
APIs in ``app/compat``) renders every error on its paths in its own shape — the domain's
errors and the framework's own (unknown path, wrong method, body too large, a lost
database, a crash) alike. JSON:API is the default for every other path.
"""

import logging
import uuid
from collections.abc import Callable

from flask import current_app, request
from werkzeug.exceptions import HTTPException

from app import errors
from app.observability.logs import loggable_path

log = logging.getLogger(__name__)

HTTP_ERRORS: dict[int | None, type[errors.ServiceError]] = {
    400: errors.BadRequest,
    401: errors.NotAuthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}
_renderers: dict[str, Callable] = {}  # path prefix → render(error) → response
_default: list[Callable] = []


def register(prefix, render_error):
    """Errors on paths under ``prefix`` are rendered by ``render_error``."""
    _renderers[prefix] = render_error


def register_default(render_error):
    _default[:] = [render_error]


def render(error):
    """``error`` in the shape of the surface the request's path belongs to; a 5xx is
    logged with an id that the client sees too, where its shape has room for one."""
    if error.status >= 500:
        error.occurrence_id = uuid.uuid4().hex  # not UUID-shaped: logs redact those
        log.error("error %s on %s %s: %s", error.occurrence_id, request.method,
                  loggable_path(request.path), error.detail)
    return _renderer()(error)


def _renderer():
    matches = [prefix for prefix in _renderers if request.path.startswith(prefix)]
    return _renderers[max(matches, key=len)] if matches else _default[0]


def handle_http_exception(exc: HTTPException):
    error_class = HTTP_ERRORS.get(exc.code)
    if error_class is None:
        error = errors.ServiceError(exc.description, status=exc.code,
                                    code=exc.name.upper().replace(" ", "_"), title=exc.name)
    else:
        error = error_class(_http_detail(exc))
    valid_methods = getattr(exc, "valid_methods", None)
    if exc.code == 405 and valid_methods:
        error.headers["Allow"] = ", ".join(valid_methods)
    return render(error)


def _http_detail(exc):
    if exc.code == 404:
        return f"There is nothing at {request.path}."
    if exc.code == 405:
        return f"{request.method} is not allowed on {request.path}."
    if exc.code == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return f"The request body is larger than {limit} bytes."
    return None


def handle_database_unavailable(exc):
    """A lost connection or a lock not granted in time: the request may be retried. The
    pool has already dropped a dead connection, so the retry gets a fresh one."""
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    return render(errors.ServiceUnavailable("The database did not answer; try again."))


def handle_unexpected(exc):
    error = errors.InternalError()
    error.occurrence_id = uuid.uuid4().hex  # not UUID-shaped: logs redact those
    log.exception("error %s on %s %s", error.occurrence_id, request.method,
                  loggable_path(request.path))
    return _renderer()(error)
