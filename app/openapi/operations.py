"""One documented operation (a method on a path) and what it is made of: the surface whose
media types and error shape it uses, the credentials it accepts, its parameters, body and
responses. ``app/openapi/routes.py`` lists them; ``app/openapi/document.py`` draws them."""

import re
from dataclasses import dataclass, field

from app.jsonapi.media import JSONAPI_MEDIA_TYPE
from app.openapi import schemas

JSON = "application/json"
PATH_PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Surface:
    """A wire format: its tag, the media type of its bodies, and its error shape (every
    status not listed by an operation is an error in this shape)."""

    tag: str
    media_type: str
    error_schema: str
    error_media_type: str | None = None

    @property
    def error_media(self):
        return self.error_media_type or self.media_type


JSONAPI = Surface("JSON:API", JSONAPI_MEDIA_TYPE, "jsonapi.errors")
SEED_001 = Surface("Seed 001: auth tokens", JSON, "seed001.error")
SEED_002 = Surface("Seed 002: device token", JSON, "seed002.envelope")
SEED_003 = Surface("Seed 003: devices", JSON, "seed003.error")
# Paths outside /api and the seeds' prefixes: plain JSON, errors as JSON:API (app.web.surfaces)
PLAIN = Surface("Service", JSON, "jsonapi.errors", JSONAPI_MEDIA_TYPE)

# Credential kinds, as the security schemes that present them (app/web/auth.py).
PUBLIC = ()
USER = ("session", "authToken", "authTokenHeader", "accessToken", "accessTokenCookie")
SERVICE = ("apiKey",)


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # query or header
    description: str
    schema: dict = field(default_factory=lambda: dict(schemas.STRING))

    def shown(self):
        return {"name": self.name, "in": self.where, "required": False,
                "description": self.description, "schema": self.schema}


@dataclass(frozen=True)
class Operation:
    """``responses`` maps each success status to its body schema (None: no body); any
    other status is the surface's error shape, and ``errors`` names the ones worth
    describing."""

    method: str
    path: str
    summary: str
    surface: Surface
    responses: dict
    credentials: tuple = USER
    body: dict | None = None
    parameters: tuple = ()
    errors: dict = field(default_factory=dict)
    description: str | None = None
    tag: str | None = None
    media_types: tuple = ()  # success bodies in other media types than the surface's

    @property
    def operation_id(self):
        words = re.sub(r"[^A-Za-z0-9]+", "_", self.path).strip("_")
        return f"{self.method.lower()}_{words}"

    def shown(self):
        operation = {"operationId": self.operation_id, "summary": self.summary,
                     "tags": [self.tag or self.surface.tag],
                     "parameters": self._path_parameters() + [p.shown() for p in
                                                              self.parameters],
                     "responses": self._responses()}
        if self.description:
            operation["description"] = self.description
        if self.credentials:
            operation["security"] = [{scheme: []} for scheme in self.credentials]
        else:
            operation["security"] = []
        if self.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {self.surface.media_type: {"schema": self.body}}}
        return operation

    def _path_parameters(self):
        return [{"name": name, "in": "path", "required": True, "schema": schemas.STRING}
                for name in PATH_PARAMETER.findall(self.path)]

    def _responses(self):
        shown = {}
        for status, body in self.responses.items():
            response = {"description": _reason(status)}
            if body is not None:
                media = self.media_types or (self.surface.media_type,)
                response["content"] = {media_type: {"schema": body} for media_type in media}
            shown[str(status)] = response
        for status, why in self.errors.items():
            shown[str(status)] = self._error(why)
        shown["default"] = self._error("An error, in this surface's error shape.")
        return shown

    def _error(self, description):
        return {"description": description, "content": {
            self.surface.error_media: {"schema": schemas.ref(self.surface.error_schema)}}}


def _reason(status):
    return {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}.get(
        status, str(status))
