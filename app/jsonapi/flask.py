"""Flask glue: negotiation before a request, documents and errors after it."""

import json
import logging
from urllib.parse import urlencode

import orjson
from flask import Response, current_app, request

from app import errors
from app.jsonapi.errors import NotAcceptable, UnsupportedMediaType, error_document
from app.jsonapi.media import (
    JSONAPI_MEDIA_TYPE,
    accept_problem,
    content_type_problem,
    parse_media_range,
)
from app.jsonapi.query import parse_query
from app.jsonapi.registry import registry
from app.jsonapi.render import Renderer
from app.web.untrusted import encodable

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})


def negotiate():
    """``before_request`` for JSON:API blueprints."""
    refuse_nul_in_url()
    problem = accept_problem(request.headers.get("Accept"))
    if problem:
        raise NotAcceptable(problem, field="Accept", where=errors.Where.HEADER)
    content_type = request.headers.get("Content-Type")
    # A body (DELETE on a relationship has one), or any request declaring JSON:API: the
    # media type's parameters are checked whatever the method.
    if (request.method in BODY_METHODS or request.content_length
            or request.headers.get("Transfer-Encoding")  # a chunked body has no length
            or (content_type and parse_media_range(content_type)[0] == JSONAPI_MEDIA_TYPE)):
        problem = content_type_problem(content_type)
        if problem:
            raise UnsupportedMediaType(problem, field="Content-Type",
                                       where=errors.Where.HEADER)


def refuse_nul_in_url():
    """NUL in a path value or query parameter: PostgreSQL cannot compare with it (SQLite
    could store it), so no URL holding one goes further. (werkzeug decodes URLs with
    replacement, so they hold no lone surrogates.)"""
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise errors.InvalidQueryParameter("A query parameter holds a NUL character.",
                                               field=name)
    if any("\x00" in str(value) for value in (request.view_args or {}).values()):
        raise errors.BadRequest("The URL path holds a NUL character.", where=errors.Where.URL)


def conditional_get(response):
    """``after_request``: an ETag on every successful GET, and 304 for a matching
    If-None-Match."""
    if request.method in ("GET", "HEAD") and response.status_code == 200:
        response.add_etag()
        response.make_conditional(request)
    return response


def private_by_default(response):
    """``after_request``: no cache keeps a response that did not say it may be kept. Most
    carry a bearer secret (a session id in a body or Location) or one caller's data."""
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"  # as cache_control would write it
    return response


API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


def security_headers(response):
    """``after_request``: no response may be framed, sniffed into another type, or (a JSON
    body opened in a browser) load anything; a page that needs more (``/docs``) sets its
    own policy."""
    response.headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def public_revalidated(response):
    """The same for everyone and cheap to check: any cache may keep it, asking each time
    (its ETag makes the answer a 304 while nothing changed)."""
    response.cache_control.public = True
    response.cache_control.no_cache = True
    return response


def jsonapi_response(document, status=200, headers=None):
    response = Response(encoded(document), status=status, headers=headers,
                        mimetype=JSONAPI_MEDIA_TYPE)
    response.vary.add("Accept")
    return response


def encoded(document):
    """``document`` as compact UTF-8 JSON. orjson writes what ``json.dumps`` would, faster
    (a page of resources is large), but refuses a lone surrogate, which client text echoed
    in an error may hold, and an integer beyond 64 bits: ``json`` writes those, the
    surrogate replaced (never fail to answer)."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return encodable(json.dumps(document, separators=(",", ":"), ensure_ascii=False)).encode()


def no_content():
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type (not text/html)
    response.vary.add("Accept")
    return response


def request_body():
    return request.get_data(cache=True)


def query_for(type_name, capabilities):
    return parse_query(request.args, capabilities, registry, type_name, current_app.config)


def public_url(path):
    """``path`` as an absolute URL: under ``PUBLIC_URL`` when set, else the request's own
    scheme and Host (development; a client chooses its Host header)."""
    base = current_app.config["PUBLIC_URL"] or request.host_url.rstrip("/")
    return base + path


def renderer(query, principal):
    api_url = public_url("/api")
    # not request.url: werkzeug shows '[' ']' of filter[...] raw, which is no valid URI
    return Renderer(registry, principal, query, api_url, _url_with(request.args),
                    current_app.config["PAGE_SIZE_DEFAULT"])


def resource_response(type_name, query, obj, principal, status=200, *, revealed=None,
                      located=True):
    """A document whose primary data is one resource (or null); a 201 says where the new
    resource lives (unless it cannot be fetched again: ``located=False``). ``revealed``
    holds attributes shown this once, to the caller who made the resource (a secret)."""
    render = renderer(query, principal)
    headers = {}
    if status == 201 and located:
        headers["Location"] = render.self_url = render.resource_url(
            type_name, registry[type_name].id_of(obj, principal))
    document = render.document(type_name, obj)
    if revealed:
        document["data"]["attributes"].update(revealed)
    return jsonapi_response(document, status, headers)


def collection_response(type_name, query, page, principal):
    meta = {"total": page.total} if page.total is not None else None
    document = renderer(query, principal).document(type_name, page.items,
                                                   links=page_links(page), meta=meta)
    return jsonapi_response(document)


def page_links(page):
    """first / prev / next links for a keyset page, keeping every other parameter."""
    base = {key: value for key, value in request.args.items()
            if key not in ("page[after]", "page[before]")}
    links = {"first": _url_with(base)}
    links["prev"] = _url_with({**base, "page[before]": page.prev_cursor}) \
        if page.prev_cursor else None
    links["next"] = _url_with({**base, "page[after]": page.next_cursor}) \
        if page.next_cursor else None
    return links


def _url_with(args):
    query = urlencode(args)
    return public_url(request.path) + (f"?{query}" if query else "")


def error_response(error):
    """An error as a JSON:API error document (the service's default error shape)."""
    _ids, document = error_document(error)
    return jsonapi_response(document, error.status, error.headers)
