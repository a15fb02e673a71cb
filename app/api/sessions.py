from flask import request

from app.api import jsonapi_blueprint
from app.api.types import SESSIONS
from app.errors import Forbidden, Where
from app.extensions import db
from app.jsonapi.document import (
    parse_new_resource,
    parse_resource,
    refuse_changes_to_read_only,
)
from app.jsonapi.flask import (
    no_content,
    query_for,
    renderer,
    request_body,
    resource_response,
)
from app.jsonapi.query import Capabilities
from app.resources import sessions
from app.web.auth import USER, principal_of, require

blueprint = jsonapi_blueprint("sessions", __name__)
TYPE = SESSIONS.type
DEFAULT_INCLUDE = (("user",),)


def _query():
    """Sessions come with their user unless the client asks for other includes."""
    query = query_for(TYPE, Capabilities())
    if not query.include_requested:
        query.include, query.include_requested = DEFAULT_INCLUDE, True
    return query


@blueprint.post("/sessions")
def create_session():
    query = _query()
    parsed = parse_new_resource(request_body(), SESSIONS)
    if parsed.id is not None:
        raise Forbidden("Session ids are chosen by the server.", field="id", where=Where.ID,
                        code="CLIENT_ID_NOT_ALLOWED")
    session, secret = sessions.create_session(**parsed.attributes,
                                              client_address=request.remote_addr)
    db.session.commit()
    holder = principal_of(session.id, session.kind, session.user_id, secret)
    return resource_response(TYPE, query, session, holder, 201)


@blueprint.get("/sessions/<session_id>")
def get_session(session_id):
    principal = require(USER)
    return resource_response(TYPE, _query(), sessions.held_session(principal, session_id),
                             principal)


@blueprint.patch("/sessions/<session_id>")
def update_session(session_id):
    principal = require(USER)
    query = _query()
    parsed = parse_resource(request_body(), SESSIONS, url_id=session_id, id_required=True)
    if parsed.echoes_members:
        refuse_changes_to_read_only(parsed, renderer(query, principal), SESSIONS,
                                    sessions.held_session(principal, session_id))
    session = sessions.update_session(principal, session_id, client_address=request.remote_addr,
                                      **parsed.attributes)
    db.session.commit()
    return resource_response(TYPE, query, session, principal)


@blueprint.delete("/sessions/<session_id>")
def delete_session(session_id):
    sessions.delete_session(require(USER), session_id)
    db.session.commit()
    return no_content()
