"""The three other published device-token APIs (seeds 001-003), as views over the same
services: each parses its own documents and renders results and errors in its own shape."""

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError

from app.errors import BadRequest, ErrorList, InvalidAttribute, ServiceError, Where
from app.web import surfaces, untrusted


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "The request body's media type is not supported."


def compat_blueprint(name, import_name, url_prefix, render_error):
    """A blueprint whose every error — the domain's and the framework's, on any path
    under ``url_prefix`` — is rendered by ``render_error``."""
    blueprint = Blueprint(name, import_name, url_prefix=url_prefix)
    blueprint.register_error_handler(ServiceError, render_error)
    surfaces.register(url_prefix, render_error)
    return blueprint


def json_response(body, status=200, headers=None):
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def occurrence_id(error):
    """The id a 5xx was logged with (``app.web.surfaces``), or None."""
    return getattr(error, "occurrence_id", None)


def json_object(schema):
    """The request's JSON object body, loaded by a marshmallow ``schema`` (every problem
    named by its field)."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as application/json.",
                                   field="Content-Type", where=Where.HEADER)
    try:
        text = (request.get_data() or b"null").decode("utf-8")
        if untrusted.too_deep(text):
            raise ValueError("nested too deep")
        body = untrusted.loads(text)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadRequest("The body is not valid JSON.", where=Where.BODY,
                         code="INVALID_JSON") from exc
    problem = untrusted.unsafe_text(body)
    if problem:
        where, what = problem
        raise BadRequest(f"{what} (at '{untrusted.encodable(where)}').", where=Where.BODY,
                         code="INVALID_TEXT")
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", where=Where.BODY,
                         code="INVALID_JSON")
    try:
        return schema.load(body)
    except ValidationError as exc:
        assert isinstance(exc.messages, dict)  # Schema.load reports field by field
        raise ErrorList([InvalidAttribute(_first(messages), field=name)
                         for name, messages in exc.messages.items()]) from exc


def _first(messages):
    return messages[0] if isinstance(messages, list) and messages else str(messages)
