from flask import g, request

from app.api import jsonapi_blueprint
from app.auth import Principal, require_principal
from app.jsonapi.document import parse_resource
from app.jsonapi.errors import Forbidden
from app.jsonapi.flask import jsonapi_response, no_content, query_for, renderer, request_body
from app.jsonapi.query import Capabilities
from app.resources import sessions
from app.resources.types import SESSIONS

blueprint = jsonapi_blueprint("sessions", __name__)
DEFAULT_INCLUDE = (("user",),)


def _query():
    """Sessions come with their user unless the client asks for other includes."""
    query = query_for("sessions", Capabilities())
    if not query.include_requested:
        query.include, query.include_requested = DEFAULT_INCLUDE, True
    return query


def _document(query, session, status=200):
    render = renderer(query)
    headers = {}
    if status == 201:
        headers["Location"] = render.resource_url("sessions", session.public_id)
        render.self_url = headers["Location"]  # GET /api/sessions (the POST URL) is no list
    return jsonapi_response(render.document("sessions", session), status, headers)


@blueprint.post("/sessions")
def create_session():
    query = _query()
    parsed = parse_resource(request_body(), "sessions", SESSIONS.schema_instance())
    if parsed.id is not None:
        raise Forbidden("Session ids are chosen by the server.", pointer="/data/id",
                        code="CLIENT_ID_NOT_ALLOWED")
    session = sessions.create_session(parsed.attributes)
    g.principal = Principal(session)
    return _document(query, session, 201)


@blueprint.get("/sessions/<session_id>")
def get_session(session_id):
    query = _query()
    return _document(query, sessions.held_session(require_principal(), session_id))


@blueprint.patch("/sessions/<session_id>")
def update_session(session_id):
    principal = require_principal()
    query = _query()
    parsed = parse_resource(request_body(), "sessions", SESSIONS.schema_instance(),
                            url_id=session_id, id_required=True)
    session = sessions.update_session(principal, session_id, parsed.attributes,
                                      request.remote_addr)
    return _document(query, session)


@blueprint.delete("/sessions/<session_id>")
def delete_session(session_id):
    sessions.delete_session(require_principal(), session_id)
    return no_content()
