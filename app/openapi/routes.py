"""Every operation the service answers. The JSON:API routes are drawn from the contracts
their views declare (``app/api/contract.py``) and the relationship URLs from the type
registry; the service's own paths and the seed formats are one entry each here
(``tests/test_openapi.py`` fails, naming the route, until a route is described)."""

from flask import current_app

from app.api import contract
from app.api.types import DEVICES, TOPICS
from app.compat.schemas import auth_tokens_v1, devices_v1, notifications_device_token_v1
from app.jsonapi.registry import registry
from app.openapi import schemas as s
from app.openapi.operations import (
    JSONAPI,
    PLAIN,
    PUBLIC,
    SEED_001,
    SEED_002,
    SEED_003,
    SERVICE,
    USER,
    Operation,
    Parameter,
)

# The security schemes that present each kind of caller a route accepts.
SCHEMES = {contract.ANYONE: PUBLIC, contract.PEOPLE: USER, contract.SENDERS: SERVICE,
           contract.CHANNEL_MANAGERS: SERVICE, contract.PEOPLE_OR_SENDERS: (*USER, *SERVICE)}


def _names(names, sign=""):
    """A comma-separated list of ``names`` (each optionally with ``sign``)."""
    one_name = f"{sign}(?:{'|'.join(sorted(names))})"
    return {"type": "string", "pattern": f"^{one_name}(?:,{one_name})*$"}


def include(resource_type):
    return Parameter("include", "query", "Related resources to include, by relationship "
                     "(comma-separated; dotted paths reach further).",
                     _names(resource_type.relationships) if resource_type.relationships
                     else {"type": "string", "maxLength": 0})


def fields_of(resource_type):
    return Parameter(f"fields[{resource_type.type}]", "query", "A sparse fieldset: the "
                     f"{resource_type.type} members to show (comma-separated).",
                     _names(resource_type.field_names))


def single(resource_type):
    """The query parameters of a one-resource document."""
    return (include(resource_type), fields_of(resource_type))


def listing(resource_type):
    """The query parameters of a collection: paging, sorting, filtering."""
    capabilities = resource_type.collection
    largest = current_app.config["PAGE_SIZE_MAX"]
    sortable = (Parameter("sort", "query", "Sort keys, '-' before one for descending.",
                          _names(capabilities.sortable, "-?")),) if capabilities.sortable else ()
    return (
        *single(resource_type),
        *sortable,
        Parameter("page[size]", "query", "Resources per page.",
                  {"type": "integer", "minimum": 1, "maximum": largest}),
        Parameter("page[after]", "query", "The cursor of the page's `next` link."),
        Parameter("page[before]", "query", "The cursor of the page's `prev` link."),
        Parameter("page[total]", "query", "true: count every match in meta.total.",
                  {"type": "string", "enum": ["true", "false"]}),
        *filters(resource_type),
    )


def filtered(resource_type):
    """The query parameters of one resource computed from filters (no paging, no sort)."""
    return (*single(resource_type), *filters(resource_type))


def filters(resource_type):
    return tuple(Parameter(f"filter[{name}]", "query", f"Only resources whose {name} is this.")
                 for name in resource_type.collection.filterable)


def one(type_name):
    return s.ref(f"{type_name}.resource.document")


def many(type_name):
    return s.ref(f"{type_name}.collection.document")


def revealed(type_name):
    """A new credential's document: its secret ``value`` is shown this once."""
    return {"allOf": [one(type_name), s.obj({"data": s.obj({"attributes": s.obj(
        {"value": s.STRING}, ("value",))})})]}


def jsonapi(method, path, summary, responses, *, credentials=USER, body=None,
            parameters=(), errors=None, description=None):
    return Operation(method, path, summary, JSONAPI, responses, credentials, body,
                     tuple(parameters), errors or {}, description)


def declared():
    """The JSON:API routes, each drawn from the contract its view declares
    (``app/api/contract.py``)."""
    return [_declared(each) for each in contract.routes()]


def _declared(route):
    responses = {status: _body_shown(kind, route.resource_type.type)
                 for status, kind in route.responses.items()}
    return jsonapi(route.method, route.path, route.summary, responses,
                   credentials=SCHEMES[route.credentials], body=_request_body(route),
                   parameters=_parameters(route), errors=route.errors,
                   description=route.description)


def _body_shown(kind, type_name):
    if kind is None:
        return None
    if kind == contract.LINKAGE_DOCUMENT:
        return s.ref("linkage.document")
    return {contract.ONE: one, contract.MANY: many, contract.REVEALED: revealed}[kind](
        type_name)


def _request_body(route):
    if route.body is None:
        return None
    linkage = {name: s.identifier_document(members.type_name)
               if isinstance(members, contract.ToOne) else s.identifiers_document(members)
               for name, members in route.body_linkage.items()}
    return s.request_document(route.body, id_required=route.id_required,
                              relationships=linkage or None)


def _parameters(route):
    query = route.query
    if query is None or not query.documented:
        shown = ()
    else:
        shown = (listing if query.collection else filtered if query.filtered else single)(
            route.resource_type)
    return (*shown, *(Parameter(name, "header", description)
                      for name, description in route.headers.items()))


def topics():
    """A device's topics (its owner writes them), a topic's devices (a service does)."""
    device = "/api/devices/{device_id}/relationships/topics"
    topic = "/api/topics/{name}"
    by_service = "Needs an API key with the topics:manage scope."
    return [
        *_relationship_operations(DEVICES, "topics", DEVICES.relationships["topics"],
                                  writable=True),
        jsonapi("POST", device, "Subscribe a device to topics (idempotent)", {204: None},
                body=s.identifiers_document("topics"),
                errors={422: "The device would have more than 2,000 topics."}),
        jsonapi("PATCH", device, "Replace a device's topics", {204: None},
                body=s.identifiers_document("topics"),
                errors={422: "More than 2,000 topics."}),
        jsonapi("GET", topic, "A topic and its subscriber count (meta.subscribers)",
                {200: one("topics")}, credentials=SERVICE, parameters=single(TOPICS),
                description=by_service),
        jsonapi("POST", f"{topic}/relationships/devices", "Subscribe devices (anyone's, by "
                "id) to a topic", {204: None}, credentials=SERVICE,
                body=s.identifiers_document("devices"), description=by_service,
                errors={404: "An unknown device id (pointed at)."}),
        jsonapi("DELETE", f"{topic}/relationships/devices", "Unsubscribe devices from a "
                "topic (idempotent)", {204: None}, credentials=SERVICE,
                body=s.identifiers_document("devices"), description=by_service),
    ]


def relationships():
    """The relationship and related-resource URLs of every relationship of every type
    (``app/api/relationships.py``), but those ``notifications()`` and ``topics()`` list
    themselves."""
    listed = {("notifications", "deliveries"), ("devices", "topics")}
    operations = []
    for resource_type in registry.values():
        for name, relationship in resource_type.relationships.items():
            if (resource_type.type, name) in listed:
                continue
            operations += _relationship_operations(resource_type, name, relationship)
    return operations


def _relationship_operations(resource_type, name, relationship, *, writable=False):
    """Its URLs; ``writable``: POST and PATCH of its linkage are listed by the caller."""
    base = f"/api/{resource_type.type}/{{{resource_type.type[:-1]}_id}}"
    related = registry[relationship.type]
    refused = "Always: the service sets it."
    read_only = {405: "Always: related resources are changed at their own URLs."}
    shown = (many(related.type) if relationship.many else one(related.type))
    return [
        jsonapi("GET", f"{base}/relationships/{name}", f"The {name} of a "
                f"{resource_type.type[:-1]}, as linkage", {200: s.ref("linkage.document")}),
        jsonapi("DELETE", f"{base}/relationships/{name}", f"Take {name} out of a "
                f"{resource_type.type[:-1]}", {204: None},
                body=s.identifiers_document(related.type),
                errors={} if relationship.remove else {403: refused}),
        *(() if writable else (
            jsonapi(method, f"{base}/relationships/{name}", "Refused: read-only relationship",
                    {}, errors={403: refused}) for method in ("PATCH", "POST"))),
        jsonapi("GET", f"{base}/{name}", f"The {name} of a {resource_type.type[:-1]}",
                {200: shown}, parameters=listing(related) if relationship.many
                else single(related)),
        *(jsonapi(method, f"{base}/{name}", "Refused: related resources are read-only here",
                  {}, errors=read_only) for method in ("POST", "PUT", "PATCH", "DELETE")),
    ]


HEALTH = s.obj({
    "status": {"enum": ["ok", "failing"]},
    "checks": {"type": "object", "additionalProperties": s.obj(
        {"status": {"enum": ["ok", "failing", "not checked"]}, "detail": s.STRING},
        ("status",))},
}, ("status", "checks"))


def service():
    return [
        Operation("GET", "/healthz", "Liveness: the process answers (no database)", PLAIN,
                  {200: HEALTH}, credentials=PUBLIC),
        Operation("GET", "/readyz", "Readiness: database, migrations, push workers", PLAIN,
                  {200: HEALTH, 503: HEALTH}, credentials=PUBLIC),
        Operation("GET", "/.well-known/jwks.json", "The public keys that verify access "
                  "tokens", PLAIN, {200: s.obj({"keys": s.array({"type": "object"})},
                                                ("keys",))}, credentials=PUBLIC,
                  errors={404: "Access tokens are signed with a shared secret."}),
        *metrics(),
        Operation("GET", "/openapi.json", "This document", PLAIN,
                  {200: {"type": "object"}}, credentials=PUBLIC),
        Operation("GET", "/docs", "This document for people (Swagger UI)", PLAIN,
                  {200: s.STRING}, credentials=PUBLIC, media_types=("text/html",)),
        Operation("GET", "/docs/{asset}", "The docs page's scripts, styles and icons", PLAIN,
                  {200: {}}, credentials=PUBLIC,
                  media_types=("text/javascript", "text/css", "image/png")),
    ]


def seed_001():
    path = "/api/v1/auth_tokens"
    token = s.dumped(auth_tokens_v1.AuthToken)
    return [
        Operation("POST", path, "Trade an ID token for an auth token", SEED_001,
                  {201: s.dumped(auth_tokens_v1.AuthToken, extra={"value": s.STRING})},
                  credentials=PUBLIC, body=s.loadable(auth_tokens_v1.CreateAuthToken)),
        Operation("GET", path, "The caller's auth tokens", SEED_001,
                  {200: s.obj({"tokens": s.array(token)}, ("tokens",))}),
        Operation("GET", f"{path}/{{token_id}}", "One of the caller's auth tokens", SEED_001,
                  {200: s.obj({"token": token}, ("token",))}),
        Operation("DELETE", f"{path}/{{token_id}}", "Revoke an auth token", SEED_001,
                  {200: s.obj({})}),
    ]


def seed_002():
    return [Operation("POST", "/api/v1/notifications/device-token",
                      "Register a device token (or change its time zone)", SEED_002,
                      {200: s.ref("seed002.envelope")},
                      body=s.loadable(notifications_device_token_v1.DeviceToken))]


def seed_003():
    device = s.dumped(devices_v1.Device)
    return [
        Operation("POST", "/v1/devices", "Register a device", SEED_003,
                  {201: s.obj({"device": device}, ("device",))},
                  body=s.loadable(devices_v1.Registration)),
        Operation("GET", "/v1/devices", "The caller's devices", SEED_003,
                  {200: s.obj({"devices": s.array(device)}, ("devices",))}),
        Operation("DELETE", "/v1/devices/{device_id}", "Forget a device", SEED_003,
                  {200: s.obj({"id": s.STRING}, ("id",))}),
    ]


def metrics():
    """``/metrics`` exists only where ``METRICS_ENABLED`` turns it on."""
    if not current_app.config["METRICS_ENABLED"]:
        return []
    return [Operation("GET", "/metrics", "Prometheus metrics (METRICS_TOKEN or METRICS_ALLOW)",
                      PLAIN, {200: s.STRING}, credentials=("metricsToken",),
                      media_types=("text/plain",))]


def operations():
    return [*declared(), *topics(), *relationships(), *service(),
            *seed_001(), *seed_002(), *seed_003()]
