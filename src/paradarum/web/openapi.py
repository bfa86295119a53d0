"""``/openapi.json``, built from the route declarations and the shapes.

Nothing here is written twice: each route's declaration (``web/routing.py``: the
decorator and the handler's typed signature) says what it takes (body, query, path
parameters), what it answers (a shape from ``paradarum_client.models``) and which
credential it needs. The shapes' JSON schemas are msgspec's own
(``msgspec.json.schema_components``), the very definitions requests are validated
against and answers encoded from. The rules that apply to whole groups of routes add
the rest, from the same facts the code acts on:

* a route that needs a credential can answer 400 (two credentials), 401 (with
  ``WWW-Authenticate``), 403 (a key used where its restrictions do not allow)
  and 429 (failed authentications from the address, with ``Retry-After``);
* every ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` under ``/api`` passes the body guard: 400 (bad
  ``Content-Length``), 413 (too large), 415 (not JSON);
* a route with input can answer 400 (invalid fields);
* every route but liveness can answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from paradarum.web.edge import BODY_METHODS
from paradarum.web.routing import Route
from paradarum_client.models import ErrorEnvelope, Id

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{name}"
ERROR_REF = {"$ref": REF.format(name="ErrorEnvelope")}
ERROR_TEXT = {
    400: "Invalid fields, malformed JSON, two credentials, or a rule such as the key limit",
    401: "Missing, malformed, unknown, revoked or expired credentials",
    403: "Not allowed: a key's restrictions, or the server's configuration",
    404: "No such thing for this account",
    409: "Conflict with what exists",
    413: "Body too large",
    415: "Body that is not JSON",
    429: "Rate limited; see Retry-After (seconds)",
    503: "Temporarily unavailable (the database, a full queue); see Retry-After",
}
SECONDS = {"type": "string", "pattern": "^[1-9][0-9]*$"}
HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'Always `Bearer realm="paradarum"`.',
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the limit lifts (at least 1).",
            "required": True,
            "schema": SECONDS,
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds after which to try again.",
            "required": True,
            "schema": SECONDS,
        }
    },
}
LINK_HEADER = {
    "Link": {
        "description": 'RFC 8288 `<...>; rel="next"`: the next page, present when there is one.',
        "required": False,
        "schema": {"type": "string"},
    }
}
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A panel session token (JWT) or an API key (pdm_...).",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (pdm_...).",
    },
}


def _members(annotation: Any) -> list[Any]:
    """A union of several shapes (one answer or another, told apart by their
    fields), as its members: msgspec describes each on its own. Anything else as is."""
    if isinstance(annotation, types.UnionType):
        members = list(typing.get_args(annotation))
        if sum(isinstance(m, type) and issubclass(m, msgspec.Struct) for m in members) > 1:
            return members
    return [annotation]


class Schemas:
    """The JSON schemas of the shapes a document uses, from msgspec's own JSON Schema
    support: each shape once, as a component, referenced by name."""

    def __init__(self, routes: Sequence[Route]) -> None:
        shapes: list[Any] = [ErrorEnvelope, Id]
        for route in routes:
            shapes += [route.body, route.query, *_members(route.response)]
        wanted = [item for item in shapes if item is not None]
        found, self.components = msgspec.json.schema_components(wanted, ref_template=REF)
        self._of = {repr(item): schema for item, schema in zip(wanted, found, strict=True)}

    def of(self, annotation: Any) -> dict[str, Any]:
        """The schema of ``annotation`` (a reference, for a shape)."""
        members = _members(annotation)
        if len(members) > 1:
            return {"anyOf": [self._of[repr(member)] for member in members]}
        return self._of[repr(annotation)]

    def fields(self, shape: type[msgspec.Struct]) -> tuple[dict[str, Any], set[str]]:
        """A shape's properties (by wire name) and which of them are required."""
        component = self.components[shape.__name__]
        return component.get("properties", {}), set(component.get("required", []))


def _envelope(schemas: Schemas, response: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["succeeded", "message", "data"],
        "properties": {
            "succeeded": {"const": True},
            "message": {"type": "string"},
            "data": {"type": "null"} if response is None else schemas.of(response),
        },
    }


def _error(responses: dict[str, Any], code: int) -> None:
    entry = responses.setdefault(
        str(code),
        {"description": ERROR_TEXT[code], "content": {"application/json": {"schema": ERROR_REF}}},
    )
    if code in HEADERS:
        entry.setdefault("headers", {}).update(HEADERS[code])


def operation_id(route: Route) -> str:
    words = [part for part in route.path.strip("/").split("/") if part and part != "api"]
    cleaned = [word.strip("{}").replace("-", "_") for word in words]
    return "_".join([route.method.lower(), *cleaned])


def _operation(route: Route, schemas: Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": operation_id(route),
        "tags": [route.tag] if route.tag else [],
    }
    if route.description:
        operation["description"] = route.description
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": schemas.of(Id)}
        for name in route.path_params
    ]
    if route.query is not None:
        properties, required = schemas.fields(route.query)
        for name, schema in properties.items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": schema}
            )
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.of(route.body)}},
        }
    elif route.raw_body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.raw_body}},
        }
    answer = route.answer if route.answer is not None else _envelope(schemas, route.response)
    success: dict[str, Any] = {
        "description": route.summary,
        "content": {route.media_type: {"schema": answer}},
    }
    if route.paged:
        success["headers"] = LINK_HEADER
    responses: dict[str, Any] = {str(route.status): success}
    if route.permission is not None:
        for code in (400, 401, 403, 429):
            _error(responses, code)
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    if route.method in BODY_METHODS and route.path.startswith("/api"):
        for code in (400, 413, 415):
            _error(responses, code)
    if route.takes_arguments:
        _error(responses, 400)
    if route.path != "/api/health":
        _error(responses, 503)
    for code in route.errors:
        _error(responses, code)
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _links(paths: dict[str, Any]) -> None:
    """Which answer feeds which request (also lets stateful fuzzing chain calls)."""
    created = paths.get("/api/account/apikeys", {}).get("post", {}).get("responses", {})
    if "201" in created and "/api/account/apikeys/{id}" in paths:
        created["201"]["links"] = {
            "RevokeKey": {
                "operationId": "delete_account_apikeys_id",
                "parameters": {"id": "$response.body#/data/id"},
                "description": "The created key's `id` revokes it.",
            }
        }
    signed_up = paths.get("/api/auth/signup", {}).get("post", {}).get("responses", {})
    if "201" in signed_up and "/api/auth/login" in paths:
        signed_up["201"]["links"] = {
            "SignIn": {
                "operationId": "post_auth_login",
                "requestBody": {
                    "email": "$request.body#/email",
                    "password": "$request.body#/password",
                },
                "description": "Sign in with the email and password just signed up with.",
            }
        }


def build(routes: Sequence[Route], *, title: str, version: str, description: str) -> dict[str, Any]:
    public = [route for route in routes if route.public]
    schemas = Schemas(public)
    paths: dict[str, Any] = {}
    for route in public:
        if route.public:
            paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    _links(paths)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": schemas.components, "securitySchemes": SECURITY_SCHEMES},
    }
