"""``/openapi.json`` that says what the service really does.

FastAPI documents what a route declares. Much of what a caller can get back is
decided elsewhere, by rules that apply to whole groups of routes, so it is added
here from the same facts the code acts on:

* every route that depends on ``get_principal`` can answer 401 (with
  ``WWW-Authenticate``) and 429 (failed authentications from the address, with
  ``Retry-After``), and takes either security scheme;
* every ``POST``/``PUT``/``PATCH`` under ``/api`` passes the body guard of
  ``EdgeMiddleware``: 400 (bad ``Content-Length``), 413 (over 64 KiB), 415 (not
  JSON) — whether or not the route reads a body;
* every route with parameters or a body can answer 400 (FastAPI's 422 is not
  used: validation errors are 400 envelopes);
* every route that uses the runtime (the database) can answer 503 with
  ``Retry-After`` when the database does not answer.

A few OpenAPI links describe which response feeds which request (a created
key's id → revoke it), which also lets stateful fuzzing chain calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from paradarum.web.deps import get_principal, get_runtime
from paradarum.web.schemas import ERROR_TEXT, ErrorEnvelope

BODY_METHODS = frozenset({"post", "put", "patch"})
ERROR_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}
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
SECONDS = {"type": "string", "pattern": "^[1-9][0-9]*$"}
HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": 'Always `Bearer realm="paradarum"`.',
            "required": True,
            "schema": {"type": "string"},
        }
    },
    "429": {
        "Retry-After": {
            "description": "Seconds until the limit lifts (at least 1).",
            "required": True,
            "schema": SECONDS,
        }
    },
    "503": {
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


def _depends_on(dependant: Dependant, target: object) -> bool:
    return any(dep.call is target or _depends_on(dep, target) for dep in dependant.dependencies)


def _has_input(dependant: Dependant) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.body_params
        or any(_has_input(dep) for dep in dependant.dependencies if dep.call is not get_runtime)
    )


def _api_routes(app: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """Each API route's full path, methods and dependency tree (FastAPI 0.16x
    keeps included routers nested; older versions flatten them)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path_format, set(route.methods or ()), route.dependant
        return
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path_format and context.methods:
            yield context.path_format, set(context.methods), route.dependant


def _add_error(responses: dict[str, Any], code: int) -> None:
    entry = responses.setdefault(
        str(code),
        {
            "description": ERROR_TEXT[code],
            "content": {"application/json": {"schema": ERROR_REF}},
        },
    )
    headers = HEADERS.get(str(code))
    if headers:
        entry.setdefault("headers", {}).update(headers)


def _operation_ids(schema: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (path, method): operation["operationId"]
        for path, item in schema.get("paths", {}).items()
        for method, operation in item.items()
        if "operationId" in operation
    }


def _add_links(schema: dict[str, Any]) -> None:
    ids = _operation_ids(schema)
    paths = schema.get("paths", {})
    revoke = ids.get(("/api/account/apikeys/{key_id}", "delete"))
    created = paths.get("/api/account/apikeys", {}).get("post", {}).get("responses", {})
    if revoke and "201" in created:
        created["201"].setdefault("links", {})["RevokeKey"] = {
            "operationId": revoke,
            "parameters": {"key_id": "$response.body#/data/id"},
            "description": "The created key's `id` revokes it.",
        }
    login = ids.get(("/api/auth/login", "post"))
    signed_up = paths.get("/api/auth/signup", {}).get("post", {}).get("responses", {})
    if login and "201" in signed_up:
        signed_up["201"].setdefault("links", {})["SignIn"] = {
            "operationId": login,
            "requestBody": {
                "email": "$request.body#/email",
                "password": "$request.body#/password",
            },
            "description": "Sign in with the email and password just signed up with.",
        }


def build(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorEnvelope"] = ErrorEnvelope.model_json_schema()
    components["securitySchemes"] = SECURITY_SCHEMES

    routes = {
        (path, method.lower()): dependant
        for path, methods, dependant in _api_routes(app)
        for method in methods
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            dependant = routes.get((path, method))
            if dependant is None:
                continue
            if method in BODY_METHODS and path.startswith("/api"):
                for guarded in (400, 413, 415):
                    _add_error(responses, guarded)
            if _has_input(dependant):
                _add_error(responses, 400)
            if _depends_on(dependant, get_principal):
                _add_error(responses, 401)
                _add_error(responses, 429)
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
            if _depends_on(dependant, get_runtime):
                _add_error(responses, 503)
            for status in ("401", "429", "503"):
                if status in responses:
                    responses[status].setdefault("headers", {}).update(HEADERS[status])
            for status, response in responses.items():
                if status.startswith("2") and isinstance(response.get("content"), dict):
                    schema_ref = response["content"].get("application/json", {}).get("schema", {})
                    if "list_" in str(schema_ref.get("$ref", "")):
                        response.setdefault("headers", {}).update(LINK_HEADER)
            operation["responses"] = dict(sorted(responses.items()))
    _add_links(schema)
    return schema
