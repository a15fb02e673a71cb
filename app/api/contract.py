"""A JSON:API route's contract, stated once, where its view is declared.

``@route(blueprint, method, rule, summary, resource_type, …)`` says who may call the route,
which query parameters and body it takes, what it answers and whether its URL carries a
secret. Three readers draw on the one statement: the decorator itself, which resolves the
caller and parses the query before the view runs (the view gets a ``Call``); the OpenAPI
document (``app/openapi/routes.py``); and the log redaction (``app/observability/logs.py``), for the
paths that carry a secret.
"""

import functools
import re
from dataclasses import dataclass, field

from app.jsonapi.document import (
    parse_new_resource,
    parse_resource,
    refuse_changes_to_read_only,
)
from app.jsonapi.flask import (
    collection_response,
    query_for,
    renderer,
    request_body,
    resource_response,
)
from app.jsonapi.query import Capabilities
from app.jsonapi.registry import ResourceType
from app.observability import logs
from app.web.auth import SERVICES, USER, require

URL_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass(frozen=True)
class Credentials:
    """Who may call: a credential of one of ``kinds`` (holding ``scope``), or anyone."""

    kinds: frozenset | None
    scope: str | None = None  # what an API key must hold (people's credentials have none)

    def resolve(self):
        if self.kinds is None:
            return None
        principal = require(self.kinds)
        if self.scope is not None and principal.kind in SERVICES:
            require(SERVICES, self.scope)
        return principal


ANYONE = Credentials(None)
PEOPLE = Credentials(USER)
SENDERS = Credentials(SERVICES, "notifications:send")
PEOPLE_OR_SENDERS = Credentials(USER | SERVICES, "notifications:send")
CHANNEL_MANAGERS = Credentials(SERVICES, "live_activities:manage")


@dataclass(frozen=True)
class ToOne:
    """A body's to-one relationship (``body_linkage`` values are type names otherwise:
    to-many)."""

    type_name: str


@dataclass(frozen=True)
class Query:
    """The query parameters a route takes: a collection's (paging, sorting, filtering), a
    single resource's (include, fields), or a single resource's with its type's filters
    (``filtered``: one resource computed from them, like an audience's count). A linkage
    document's are parsed but, as linkage shows no attributes, not documented."""

    collection: bool = False
    documented: bool = True
    filtered: bool = False

    def capabilities(self, resource_type):
        if self.collection:
            return resource_type.collection
        return Capabilities(filterable=resource_type.collection.filterable
                            if self.filtered else ())


SINGLE = Query()
COLLECTION = Query(collection=True)
FILTERED = Query(filtered=True)
LINKAGE = Query(documented=False)

# What a success status's body is, of the route's resource type.
ONE, MANY, REVEALED, LINKAGE_DOCUMENT = "one", "many", "revealed", "linkage"


@dataclass(frozen=True)
class Route:
    """``responses`` maps each success status to ONE, MANY, REVEALED (a new credential with
    its secret ``value``), LINKAGE_DOCUMENT or None (no body); ``errors`` the error statuses
    worth describing. ``secret_path``: the URL's last variable is a credential, which logs
    show only digested."""

    method: str
    rule: str  # the Flask rule, under /api
    summary: str
    resource_type: ResourceType
    credentials: Credentials = PEOPLE
    query: Query | None = None
    responses: dict = field(default_factory=lambda: {200: ONE})
    body: ResourceType | None = None
    id_required: bool = False
    body_linkage: dict = field(default_factory=dict)  # relationship → type of its members
    headers: dict = field(default_factory=dict)  # request header → what it means
    errors: dict = field(default_factory=dict)
    description: str | None = None
    secret_path: bool = False
    default_include: tuple = ()

    @property
    def path(self):
        """The route's URL under /api with its variables as ``{name}`` (OpenAPI's way)."""
        return "/api" + URL_VARIABLE.sub(r"{\1}", self.rule)

    @property
    def secret_path_template(self):
        """The path up to its secret, as ``app/observability/logs.py`` matches it:
        ``{secret}`` for the secret segment, ``*`` for any other variable."""
        head = self.rule[:self.rule.rindex("<")]
        return "/api" + URL_VARIABLE.sub("*", head) + "{secret}"

    def parse_query(self):
        assert self.query is not None  # called only for routes that take one
        query = query_for(self.resource_type.type, self.query.capabilities(self.resource_type))
        if self.default_include and not query.include_requested:
            query.include, query.include_requested = self.default_include, True
        return query


ROUTES: list[Route] = []


def route(blueprint, method, rule, summary, resource_type, *, prepared=True, **contract):
    """Declare a route on ``blueprint``. A prepared view is called as ``view(call,
    **url_values)`` once the caller is resolved and the query parsed (in that order);
    ``prepared=False`` leaves both to the view, which then takes only the URL's values."""
    declared = Route(method, rule, summary, resource_type, **contract)
    ROUTES.append(declared)
    if declared.secret_path:
        logs.declare_secret_path(declared.secret_path_template)

    def register(view):
        blueprint.add_url_rule(rule, view.__name__,
                               _prepared(declared, view) if prepared else view,
                               methods=[method])
        return view

    return register


def _prepared(declared, view):
    @functools.wraps(view)
    def prepared(**url_values):
        principal = declared.credentials.resolve()
        query = None if declared.query is None else declared.parse_query()
        return view(Call(declared, principal, query), **url_values)

    return prepared


def routes():
    """Every JSON:API route declared, its module imported if it was not yet."""
    from app.api import view_modules

    view_modules()
    return tuple(ROUTES)


class Call:
    """One request to a prepared route: the caller, the parsed query, and the route's
    usual steps (read the document it takes, answer with its resource type)."""

    __slots__ = ("principal", "query", "route")

    def __init__(self, declared, principal, query):
        self.route, self.principal, self.query = declared, principal, query

    def new_resource(self):
        """A document that creates a resource: nothing exists that it could echo."""
        return parse_new_resource(request_body(), self.route.body)

    def changes(self, url_id, current):
        """A document that changes the resource ``url_id``; read-only members it echoes
        must be as ``current()`` shows them."""
        parsed = parse_resource(request_body(), self.route.body, url_id=url_id,
                                id_required=self.route.id_required)
        if parsed.echoes_members:
            refuse_changes_to_read_only(parsed, self.renderer(), self.route.resource_type,
                                        current())
        return parsed

    def renderer(self):
        return renderer(self.query, self.principal)

    def respond(self, obj, status=200, *, principal=None, **options):
        """``obj`` as the document's primary data; ``principal`` for a caller who has just
        become one (a new session's holder)."""
        return resource_response(self.route.resource_type.type, self.query, obj,
                                 self.principal if principal is None else principal,
                                 status, **options)

    def respond_page(self, page):
        return collection_response(self.route.resource_type.type, self.query, page,
                                   self.principal)
