"""What names a request in logs, metrics and error bodies: its id and its route template.

A request keeps the ``X-Request-ID`` it came with when that is well formed (1 to 128
letters, digits, ``.``, ``_`` or ``-``: anything longer or stranger could carry a secret or
forge a log field) and otherwise gets a new one. The id goes back in the ``X-Request-ID``
response header and in the request's error bodies, so a user's error report leads to its
log lines. The route template (``/api/sessions/<session_id>``) stands for the path, which
may hold a secret. Both are kept in the WSGI environ, where gunicorn's access log finds them.
"""

import re
import uuid

from flask import has_request_context, request

HEADER = "X-Request-ID"
WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,128}")
REQUEST_ID = "pushreg.request_id"
ROUTE = "pushreg.route"
UNMATCHED = "unmatched"  # the route of a path no rule matched


def request_id(environ=None):
    """The current request's id (of ``environ``'s request, if given), made on first use."""
    environ = request.environ if environ is None else environ
    found = environ.get(REQUEST_ID)
    if found is None:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        found = environ[REQUEST_ID] = given if WELL_FORMED.fullmatch(given) else uuid.uuid4().hex
    return found


def current_request_id():
    """The request's id inside a request, else None (a command, a job)."""
    return request_id() if has_request_context() else None


def route_template():
    rule = request.url_rule
    return UNMATCHED if rule is None else rule.rule


def tag_response(response):
    response.headers[HEADER] = request_id()
    request.environ[ROUTE] = route_template()
    return response


def register_request_ids(app):
    app.after_request(tag_response)
