"""How a route is declared, and how a request reaches it.

Every endpoint is one typed function; its signature says what it takes, its return
type what it answers, and the decorator the rest::

    routes = Routes(tag="api keys")

    @routes.post("/api/account/apikeys", status=201, summary="Create a key")
    async def create_key(request: Request, body: NewKeyIn) -> Reply[NewKey]:
        ...

* ``body: SomeIn`` (a :class:`paradarum_client.models.Body`): the JSON body, validated;
  ``body: bytes``: the raw bytes (a signature covers them), documented by ``raw_body=``;
* ``query: SomeQuery``: the query string, validated (a ``PageQuery`` makes a paged
  list: the ``Link`` header is documented);
* a parameter named as a path segment (``{id}`` → ``id: int``): a positive id;
* ``-> Reply[Shape]``: the envelope's ``data`` (``Reply[None]`` for none).

From that one declaration come: the credential check (``permission``: which key
permission the route needs; ``None`` for routes without a credential), the parsed
and validated arguments, the envelope, and the route's entry in ``/openapi.json``
(``web/openapi.py``). A handler only calls a service and says what to answer;
domain errors become HTTP in ``web/errors.py``.

The router is a dict lookup for fixed paths and a short list of patterns for
paths with parameters: routing costs well under a microsecond, which matters
because it runs on every request (see docs/performance.md).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send

from paradarum import errors
from paradarum.services.context import Permission
from paradarum.web import errors as web_errors
from paradarum.web.request import BODY, Network, Request
from paradarum.web.responses import Reply, Response, Stream, envelope, envelope_error
from paradarum_client.models import MAX_ID, Body, PageQuery

if TYPE_CHECKING:
    from paradarum.runtime import Runtime

Handler = Callable[..., Awaitable[Reply[Any] | Response | Stream]]
_PARAM = re.compile(r"\{([a-z_]+)\}")
# What a handler's signature says, never the decorator.
_FROM_THE_SIGNATURE = {"body", "query", "response", "paged", "path_params", "raw_body_bytes"}


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    # The key permission this route needs; None: no credential at all.
    permission: Permission | None
    # What the handler's signature takes (see the module's docstring).
    body: type[Body] | None = None
    raw_body_bytes: bool = False
    query: type[Body] | None = None
    path_params: tuple[str, ...] = ()
    # The envelope's ``data`` (from ``-> Reply[...]``); None for no data.
    response: Any = None
    status: int = 200
    # Statuses the route can answer beyond those that follow from the above.
    errors: tuple[int, ...] = ()
    # Documented in /openapi.json; the panel's pages are not.
    public: bool = True
    # A partner protocol's own format: the answer is this JSON schema, not an envelope.
    answer: dict[str, Any] | None = None
    # The JSON schema that documents a ``body: bytes`` (read by the handler itself).
    raw_body: dict[str, Any] | None = None
    description: str | None = None
    # Open to a member who must still enrol a second factor their account requires
    # (enrolment itself, sign-out, their accounts); every other route refuses them.
    enrolment: bool = False
    # A key's check reads what GET /api/account shows in the same statement.
    with_account: bool = False
    # What a success is (with ``answer``, its schema): JSON unless said otherwise.
    media_type: str = "application/json"

    @property
    def paged(self) -> bool:
        return self.query is not None and issubclass(self.query, PageQuery)

    @property
    def takes_arguments(self) -> bool:
        return bool(self.body or self.raw_body_bytes or self.query or self.path_params)


def signature(handler: Handler, path: str) -> dict[str, Any]:
    """What a handler takes and answers, from its annotations: ``body``, ``query``,
    the path's parameters, and ``-> Reply[...]``. A parameter the router cannot
    fill is an error when the route is declared, not when it is called."""
    hints = typing.get_type_hints(handler)
    names = list(inspect.signature(handler).parameters)[1:]  # after the request
    found: dict[str, Any] = {"path_params": tuple(_PARAM.findall(path))}
    for name in names:
        hint = hints.get(name)
        if name == "body" and hint is bytes:
            found["raw_body_bytes"] = True
        elif name in ("body", "query") and isinstance(hint, type) and issubclass(hint, Body):
            found[name] = hint
        elif name in found["path_params"] and hint is int:
            continue
        else:
            raise TypeError(f"{handler.__qualname__}: the router cannot fill {name}: {hint}")
    missing = set(found["path_params"]) - set(names)
    if missing:
        raise TypeError(f"{handler.__qualname__} does not take {', '.join(sorted(missing))}")
    answer = hints.get("return")
    if typing.get_origin(answer) is Reply:
        (data,) = typing.get_args(answer)
        found["response"] = None if data is type(None) else data
    return found


class Routes:
    """The routes of one module, declared with the decorators below."""

    def __init__(self, *, tag: str = "", public: bool = True) -> None:
        self.tag = tag
        self.public = public
        self.routes: list[Route] = []

    def _add(self, method: str, path: str, **options: Any) -> Callable[[Handler], Handler]:
        said = sorted(set(options) & _FROM_THE_SIGNATURE)
        if said:
            raise TypeError(
                f"{method} {path}: {', '.join(said)} come from the handler's signature "
                "(body: SomeIn, query: SomeQuery, id: int, -> Reply[Shape]); see "
                '"How to add an endpoint" in docs/architecture.md'
            )

        def register(handler: Handler) -> Handler:
            options.setdefault("tag", self.tag)
            options.setdefault("public", self.public)
            options.setdefault("summary", (handler.__doc__ or handler.__name__).strip())
            options.setdefault("permission", Permission.FULL)
            self.routes.append(
                Route(
                    method=method, path=path, handler=handler, **signature(handler, path), **options
                )
            )
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("POST", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path, **options)


# -- input ---------------------------------------------------------------------------

_AT = re.compile(r"^(?P<text>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def validation_failed(exc: msgspec.ValidationError, *, where: str) -> errors.ValidationFailed:
    """msgspec's sentence (``Expected `int` >= 1 - at `$.zoneIds[0]` ``) as the
    envelope's ``errors``: ``{"zoneIds.0": ["Expected `int` >= 1"]}``."""
    found = _AT.match(str(exc))
    text = found["text"] if found else str(exc)
    parts = [a or b for a, b in _PART.findall(found["path"] or "")] if found else []
    missing = _MISSING.match(text)
    if missing:
        parts.append(missing["name"])
        text = "This field is required."
    elif text.startswith("Expected `object`") and not parts:
        text = "Must be a JSON object."
    field = ".".join(parts) or where
    return errors.ValidationFailed({field: [text]}, web_errors.INVALID_FIELDS)


async def read_body(receive: Receive) -> bytes:
    """The whole body (``edge.BodyGuard`` has already bounded its size)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.ValidationFailed({"body": ["The connection closed early."]})
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_body(shape: type[Body], body: bytes) -> Body:
    if not body.strip():
        raise errors.ValidationFailed(
            {"body": [web_errors.BODY_REQUIRED]}, web_errors.BODY_REQUIRED
        )
    try:
        return msgspec.json.decode(body, type=shape)
    except msgspec.ValidationError as exc:
        raise validation_failed(exc, where="body") from None
    except msgspec.DecodeError:  # not JSON at all (ValidationError is a DecodeError too)
        raise errors.ValidationFailed(
            {"body": [web_errors.MALFORMED_JSON]}, web_errors.MALFORMED_JSON
        ) from None
    except RecursionError:  # a free-form value (``dict[str, Any]``) nested past the decoder
        raise errors.ValidationFailed(
            {"body": [web_errors.NESTED_TOO_DEEPLY]}, web_errors.NESTED_TOO_DEEPLY
        ) from None


def parse_query(shape: type[Body], query_string: bytes) -> Body:
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        raise errors.ValidationFailed({"query": ["The query string cannot be read."]}) from None
    try:
        # Query values arrive as text: "20" is a fine limit (strict=False).
        return msgspec.convert(dict(pairs), shape, strict=False)
    except msgspec.ValidationError as exc:
        raise validation_failed(exc, where="query") from None


def parse_id(name: str, raw: str) -> int:
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        return int(raw)
    raise errors.ValidationFailed(
        {name: [f"Must be a whole number from 1 to {MAX_ID}."]}, web_errors.INVALID_FIELDS
    )


# -- dispatch -------------------------------------------------------------------------


def _wants_a_page(scope: Scope) -> bool:
    """A browser opening an address (GET, HTML accepted) outside the API."""
    if scope["method"] not in ("GET", "HEAD") or scope["path"].startswith("/api/"):
        return False
    accept = next((value for name, value in scope["headers"] if name == b"accept"), b"")
    return b"text/html" in accept


def _compile(path: str) -> re.Pattern[str]:
    """``/api/account/apikeys/{id}`` → a pattern with one named group per parameter."""
    parts = [
        f"(?P<{found.group(1)}>[^/]+)"
        if (found := _PARAM.fullmatch(segment))
        else re.escape(segment)
        for segment in path.split("/")
    ]
    return re.compile("^" + "/".join(parts) + "$")


# A fixed path's parameters: none (shared, never changed).
_NO_PARAMS: dict[str, str] = {}


@dataclass(slots=True)
class _Methods:
    by_method: dict[str, Route]
    allow: str


class Router:
    """The ASGI app behind the edge middlewares: find the route, run it."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        runtime: Runtime,
        trusted: Sequence[Network],
        mounts: dict[str, ASGIApp] | None = None,
        not_found_page: Callable[[], Response] | None = None,
    ) -> None:
        self.routes = list(routes)
        # What a browser gets for an unknown page outside /api/ (the API's 404 stays JSON).
        self._not_found_page = not_found_page
        self._runtime = runtime
        self._trusted = list(trusted)
        # Path prefixes handed to another ASGI app when no route matches (assets).
        self._mounts = dict(mounts or {})
        grouped: dict[str, dict[str, Route]] = {}
        for route in routes:
            methods = grouped.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"{route.method} {route.path} is declared twice")
            methods[route.method] = route
        self._fixed: dict[str, _Methods] = {}
        self._patterns: list[tuple[re.Pattern[str], tuple[str, ...], _Methods]] = []
        for path, methods in grouped.items():
            if "GET" in methods:
                methods.setdefault("HEAD", methods["GET"])
            entry = _Methods(methods, ", ".join(sorted(methods)))
            names = tuple(_PARAM.findall(path))
            if not names:
                self._fixed[path] = entry
            else:
                self._patterns.append((_compile(path), names, entry))

    def match(self, path: str) -> tuple[_Methods, dict[str, str]] | None:
        entry = self._fixed.get(path)
        if entry is not None:
            return entry, _NO_PARAMS
        for pattern, _names, methods in self._patterns:
            found = pattern.match(path)
            if found is not None:
                return methods, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        found = self.match(path)
        head = scope["method"] == "HEAD"
        if found is None:
            for prefix, app in self._mounts.items():
                if path.startswith(prefix):
                    await app(scope, receive, send)
                    return
            if self._not_found_page is not None and _wants_a_page(scope):
                await self._not_found_page()(send, head=head)
            else:
                await self._not_found(path)(send, head=head)
            return
        methods, raw_params = found
        route = methods.by_method.get(scope["method"])
        response: Response | Stream
        if route is None:
            response = envelope_error(
                405, web_errors.METHOD_NOT_ALLOWED, headers={"Allow": methods.allow}
            )
            await response(send, head=head)
            return
        try:
            response = await self._run(route, scope, receive, raw_params)
        except errors.DomainError as exc:
            response = web_errors.error_response(exc)
        await response(send, head=head)

    def _not_found(self, path: str) -> Response:
        message = web_errors.NOT_FOUND
        trimmed = path.rstrip("/")
        if trimmed != path and trimmed and self.match(trimmed) is not None:
            message = f"{message} Did you mean {trimmed} (without the trailing slash)?"
        return envelope_error(404, message)

    async def _run(
        self, route: Route, scope: Scope, receive: Receive, raw_params: dict[str, str]
    ) -> Response | Stream:
        request = Request(scope, receive, self._runtime, self._trusted)
        if route.permission is not None:
            request.principal = await self._runtime.authenticator.authenticate(
                request.credential(),
                request.client,
                required=route.permission,
                enrolling=route.enrolment,
                with_account=route.with_account,
            )
        if route.path_params or route.query or route.body or route.raw_body_bytes:
            arguments: dict[str, Any] = {
                name: parse_id(name, value) for name, value in raw_params.items()
            }
            if route.query is not None:
                arguments["query"] = parse_query(route.query, scope["query_string"])
            if route.body is not None or route.raw_body_bytes:
                body = scope.get(BODY)
                if body is None:  # no BodyGuard in front (a GET, or an app without it)
                    body = await read_body(receive)
                arguments["body"] = body if route.body is None else parse_body(route.body, body)
            reply = await route.handler(request, **arguments)
        else:
            reply = await route.handler(request)
        if isinstance(reply, Response | Stream):
            return reply
        return envelope(
            reply.data, reply.message, status=reply.status or route.status, headers=reply.headers
        )
