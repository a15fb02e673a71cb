from flask import request

from app.api import jsonapi_blueprint
from app.api.contract import ANYONE, ONE, SINGLE, route
from app.api.types import SESSIONS
from app.errors import Forbidden, Where
from app.extensions import db
from app.jsonapi.flask import no_content
from app.resources import sessions
from app.web.auth import principal_of

blueprint = jsonapi_blueprint("sessions", __name__)
# Sessions come with their user unless the client asks for other includes.
ONE_SESSION = dict(query=SINGLE, default_include=(("user",),))
SESSION = "/sessions/<session_id>"


@route(blueprint, "POST", "/sessions", "Start a session (anonymous until verified)", SESSIONS,
       credentials=ANYONE, body=SESSIONS, responses={201: ONE}, **ONE_SESSION,
       description="The session's id is its bearer secret, shown to its holder.")
def create_session(call):
    parsed = call.new_resource()
    if parsed.id is not None:
        raise Forbidden("Session ids are chosen by the server.", field="id", where=Where.ID,
                        code="CLIENT_ID_NOT_ALLOWED")
    session, secret = sessions.create_session(**parsed.attributes,
                                              client_address=request.remote_addr)
    db.session.commit()
    holder = principal_of(session.id, session.kind, session.user_id, secret)
    return call.respond(session, 201, principal=holder)


@route(blueprint, "GET", SESSION, "The caller's session", SESSIONS, secret_path=True,
       **ONE_SESSION)
def get_session(call, session_id):
    return call.respond(sessions.held_session(call.principal, session_id))


@route(blueprint, "PATCH", SESSION, "Send a phone number, then the texted code, to log in",
       SESSIONS, body=SESSIONS, id_required=True, secret_path=True, **ONE_SESSION)
def update_session(call, session_id):
    parsed = call.changes(session_id,
                          lambda: sessions.held_session(call.principal, session_id))
    session = sessions.update_session(call.principal, session_id,
                                      client_address=request.remote_addr, **parsed.attributes)
    db.session.commit()
    return call.respond(session)


@route(blueprint, "DELETE", SESSION, "Log out", SESSIONS, responses={204: None},
       secret_path=True)
def delete_session(call, session_id):
    sessions.delete_session(call.principal, session_id)
    db.session.commit()
    return no_content()
