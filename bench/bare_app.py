"""The baseline for ``make bench``: bare Flask, no database, no marshmallow.

It speaks just enough of the token endpoints to cost what the framework costs: it
checks the same headers, parses the same JSON:API request document and answers with a
document of the same shape and about the same size as the service's. Whatever the
service spends beyond this is the price of its database, schemas and rules.

Run under gunicorn with the service's settings: ``gunicorn --config gunicorn.conf.py
--chdir bench bare_app:app``.
"""

import json
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, request

JSONAPI = "application/vnd.api+json"
TYPE = "apple_device_tokens"
ATTRIBUTES = ("is_invalidated", "bundle_version", "build_number", "is_production",
              "bundle_id", "is_voip")
SESSION_ID = str(uuid.uuid4())
USER_ID = str(uuid.uuid4())

app = Flask(__name__)


def _timestamp():
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _respond(document, status=200):
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status=status, mimetype=JSONAPI)


def _error(status, code, detail):
    return _respond({"errors": [{"status": str(status), "code": code, "detail": detail}]},
                    status)


def _negotiation_problem():
    if JSONAPI not in request.headers.get("Accept", "") and \
            "application/json" not in request.headers.get("Accept", ""):
        return _error(406, "NOT_ACCEPTABLE", "Accept the JSON:API media type.")
    if request.method in ("PATCH", "POST") and \
            request.headers.get("Content-Type", "").split(";")[0].strip() != JSONAPI:
        return _error(415, "UNSUPPORTED_MEDIA_TYPE", "Send the JSON:API media type.")
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        return _error(401, "NOT_AUTHORIZED", "You are not authorized.")
    return None


def _resource(api_url, token, attributes, created_at, updated_at, session_id, user_id):
    url = f"{api_url}/{TYPE}/{token}"
    session = {"type": "sessions", "id": session_id} if session_id else None
    user = {"type": "users", "id": user_id} if user_id else None
    return {
        "type": TYPE, "id": token,
        "attributes": {**attributes, "created_at": created_at, "updated_at": updated_at},
        "relationships": {
            "session": {"links": {"self": f"{url}/relationships/session",
                                  "related": f"{url}/session"}, "data": session},
            "user": {"links": {"self": f"{url}/relationships/user",
                               "related": f"{url}/user"}, "data": user},
        },
        "links": {"self": url},
    }


@app.patch("/api/apple_device_tokens/<token>")
def register_token(token):
    problem = _negotiation_problem()
    if problem:
        return problem
    try:
        data = json.loads(request.get_data())["data"]
        attributes = data["attributes"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "INVALID_DOCUMENT", "Send a JSON:API document.")
    if data.get("type") != TYPE or data.get("id", "").lower() != token.lower():
        return _error(409, "CONFLICT", "The document names another resource.")
    given = {name: attributes[name] for name in ATTRIBUTES if name in attributes}
    now = _timestamp()
    api_url = request.host_url.rstrip("/") + "/api"
    return _respond({"jsonapi": {"version": "1.1"},
                     "data": _resource(api_url, token.lower(), given, now, now,
                                       request.headers["Authorization"][7:], None)})


@app.post("/api/devices")
def register_device():
    """``POST /api/devices``: the document parsed, the write-only members dropped, a
    device of the service's shape answered with 201."""
    problem = _negotiation_problem()
    if problem:
        return problem
    try:
        attributes = dict(json.loads(request.get_data())["data"]["attributes"])
    except (ValueError, KeyError, TypeError):
        return _error(400, "INVALID_DOCUMENT", "Send a JSON:API document.")
    for write_only in ("token", "live_activity_push_to_start_token"):
        attributes.pop(write_only, None)
    now = _timestamp()
    device_id = str(uuid.uuid4())
    url = f"{request.host_url.rstrip('/')}/api/devices/{device_id}"
    attributes |= {"is_invalidated": False, "invalidated_reason": None,
                   "invalidated_at": None, "last_seen_at": now, "created_at": now,
                   "updated_at": now}
    return _respond({"jsonapi": {"version": "1.1"}, "data": {
        "type": "devices", "id": device_id, "attributes": attributes,
        "relationships": {"user": {"links": {"self": f"{url}/relationships/user",
                                             "related": f"{url}/user"},
                                   "data": {"type": "users", "id": USER_ID}}},
        "links": {"self": url}}, "links": {"self": url}}, 201)


@app.get("/api/apple_device_tokens")
def list_tokens():
    """A page of ``page[size]`` made-up tokens and, with ``include=user``, their user."""
    problem = _negotiation_problem()
    if problem:
        return problem
    size = min(int(request.args.get("page[size]", "20")), 100)
    include_user = "user" in request.args.get("include", "").split(",")
    api_url = request.host_url.rstrip("/") + "/api"
    now = _timestamp()
    attributes = {"is_invalidated": False, "bundle_version": "3.1.23", "build_number": "839",
                  "is_production": True, "bundle_id": "TTYL.Inc.Poparazzi", "is_voip": False}
    data = [_resource(api_url, f"{index:064x}", attributes, now, now, None, USER_ID)
            for index in range(size)]
    document = {"jsonapi": {"version": "1.1"}, "data": data}
    if include_user:
        user_url = f"{api_url}/users/{USER_ID}"
        document["included"] = [{
            "type": "users", "id": USER_ID,
            "attributes": {"username": None, "first_name": None, "last_name": None,
                           "profile_photo_url": None, "badges": [], "is_private": False,
                           "is_banned": None, "time_zone": None,
                           "phone_number": "+15550000000", "created_at": now,
                           "updated_at": now},
            "relationships": {"devices": {"links": {
                "self": f"{user_url}/relationships/devices",
                "related": f"{user_url}/devices"}}},
            "links": {"self": user_url},
        }]
    document["links"] = {"self": request.url, "first": request.url, "prev": None,
                         "next": f"{request.url}&page%5Bafter%5D=eyJhIjoiYiJ9"}
    return _respond(document)
