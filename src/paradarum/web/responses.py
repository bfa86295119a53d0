"""The one response envelope, ``{"succeeded", "message", "data"[, "errors"]}``, and
the few bytes it takes to send a response over ASGI.

``data`` is a shape from :mod:`paradarum_client.models` (or a list of them):
msgspec turns it into JSON values by the shape's own definition (camelCase names),
so responses, ``/openapi.json`` and the client's parsing all come from the same
definition.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlencode

import msgspec
import orjson
from starlette.types import Send

from paradarum_client.models import builtins, rfc3339

if TYPE_CHECKING:
    from paradarum.services.pagination import Page

logger = logging.getLogger("paradarum")

JSON = b"application/json"
NDJSON = b"application/x-ndjson"
T = TypeVar("T")
S = TypeVar("S")


def _timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _encode(document: Any) -> bytes:
    # orjson: compact UTF-8 in one call, several times cheaper than the standard
    # library's encoder for these small documents (it runs on every response). It
    # hands timestamps back to us: the wire has milliseconds and a Z (``rfc3339``).
    return orjson.dumps(document, default=_timestamp, option=orjson.OPT_PASSTHROUGH_DATETIME)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str] | None = None
    content_type: bytes = JSON

    async def __call__(self, send: Send, *, head: bool = False) -> None:
        raw = [
            (b"content-type", self.content_type),
            (b"content-length", b"%d" % len(self.body)),
        ]
        if self.headers:
            raw.extend(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in self.headers.items()
            )
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


@dataclass(slots=True)
class Stream:
    """A response written as it is produced (an export): no ``Content-Length``, each
    chunk sent as it comes. A failure after the first byte cannot become an error
    response any more: it is logged and the connection is broken off, so the client
    sees an incomplete answer rather than a short one that looks whole."""

    chunks: AsyncIterator[bytes]
    content_type: bytes
    status: int = 200
    headers: Mapping[str, str] | None = None

    async def __call__(self, send: Send, *, head: bool = False) -> None:
        raw = [(b"content-type", self.content_type)]
        if self.headers:
            raw.extend(
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in self.headers.items()
            )
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        try:
            if not head:
                async for chunk in self.chunks:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception:
            logger.exception("streamed response broken off")
            raise
        finally:
            closing = getattr(self.chunks, "aclose", None)
            if closing is not None:
                await closing()
        await send({"type": "http.response.body", "body": b""})


def json_line(shape: Any) -> bytes:
    """A shape as one line of NDJSON (the wire's timestamps, a newline at the end)."""
    return _encode(builtins(shape)) + b"\n"


@dataclass(slots=True)
class Reply(Generic[T]):
    """What a route answers: the data (a shape, declared as ``-> Reply[Shape]``), a
    sentence, and optionally its own status (else the route's) and headers."""

    data: T
    message: str
    status: int | None = None
    headers: Mapping[str, str] | None = None


def envelope(
    data: Any, message: str, *, status: int, headers: Mapping[str, str] | None
) -> Response:
    body = _encode({"succeeded": True, "message": message, "data": builtins(data)})
    return Response(status, body, headers)


def envelope_error(
    status: int,
    message: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    data: Any = None,
) -> Response:
    payload: dict[str, Any] = {"succeeded": False, "message": message, "data": data}
    if errors is not None:
        payload["errors"] = errors
    return Response(status, _encode(payload), headers)


def raw_json(data: Any, *, status: int = 200) -> Response:
    """JSON that is not an envelope (a partner protocol's own format)."""
    return Response(status, _encode(data))


def next_page_link(path: str, query: msgspec.Struct, cursor: str | None) -> dict[str, str] | None:
    """An RFC 8288 ``Link: <...>; rel="next"`` header: this request's path and query
    (every field, by its wire name) with ``cursor`` replaced. A path-absolute
    reference, so that it stays right behind proxies that rewrite the host."""
    if not cursor:
        return None
    params = {
        field.encode_name: value
        for field in msgspec.structs.fields(query)
        if (value := getattr(query, field.name)) is not None
    }
    params["cursor"] = cursor
    return {"Link": f'<{path}?{urlencode(params)}>; rel="next"'}


def page_reply(
    path: str, query: msgspec.Struct, page: Page[S], shape: Callable[[S], T], message: str
) -> Reply[list[T]]:
    """What every list route answers: a page of a service's list (see
    :func:`paradarum.services.pagination.newest_first`), each item as its shape, with
    the ``Link`` to the next page."""
    return Reply(
        [shape(item) for item in page.items],
        message,
        headers=next_page_link(path, query, page.next_cursor),
    )
