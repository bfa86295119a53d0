"""Pure ASGI middleware at the edge: body guard, security headers, access log,
and the last-resort 500 envelope. Pure ASGI (not BaseHTTPMiddleware) because it
runs on every request and must cost microseconds."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paradarum import keys
from paradarum.web.errors import unauthorized, unexpected_response

MAX_BODY = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"

access_logger = logging.getLogger("paradarum.access")

_KEY_IN_QUERY = re.compile(r"(?:^|[^A-Za-z0-9])" + re.escape(keys.PREFIX))
_CREDENTIAL_PARAMS = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "access_token", "jwt", "x-api-key"}
)


def credential_in_query(query_string: bytes) -> bool:
    """Keys are never accepted in a URL: a query that carries one is refused.

    Looks for a ``pdm_`` that starts a value (not one inside, say, an opaque cursor)
    and for parameter names that only a credential would use.
    """
    if not query_string:
        return False
    text = unquote_plus(query_string.decode("latin-1"))
    if _KEY_IN_QUERY.search(text):
        return True
    names = {part.split("=", 1)[0].strip().lower() for part in text.split("&")}
    return not names.isdisjoint(_CREDENTIAL_PARAMS)


def _error(message: str) -> bytes:
    return json.dumps(
        {"succeeded": False, "message": message, "data": None}, separators=(",", ":")
    ).encode()


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        is_api = path.startswith("/api")
        state: dict[str, Any] = {"status": 0}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.extend(_COMMON_HEADERS)
                names = {name for name, _ in headers}
                if is_api:
                    headers.append((b"content-security-policy", _API_CSP))
                    if b"cache-control" not in names:
                        headers.append((b"cache-control", b"no-store"))
                else:
                    headers.append((b"content-security-policy", _CSP))
                message["headers"] = headers
            await send(message)

        try:
            if is_api and credential_in_query(scope["query_string"]):
                # Refused on every /api path, open ones included: a key that has been
                # in a URL is in somebody's logs, and must not be seen to work.
                await unauthorized()(scope, receive, send_with_headers)
                return
            if is_api and scope["method"] in _BODY_METHODS:
                guarded = await self._guard_body(scope, receive, send_with_headers)
                if guarded is None:
                    return
                receive = guarded
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # the last resort: no traceback ever reaches a client
            if state["status"]:
                access_logger.error("error after response started", exc_info=exc)
            else:
                response = unexpected_response(exc)
                await response(scope, receive, send_with_headers)
        finally:
            if self.access_log:
                access_logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": path,  # never the query string: it may hold a credential
                        "status": state["status"],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": (scope.get("client") or ("-",))[0],
                    },
                )

    async def _guard_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """413 for bodies over 64 KiB, 415 for bodies that are not JSON; else replay."""
        headers = dict(scope["headers"])
        length_header = headers.get(b"content-length")
        if length_header is not None:
            try:
                declared = int(length_header)
            except ValueError:
                await self._reply(send, 400, "Invalid Content-Length header.")
                return None
            if declared > MAX_BODY:
                await self._reply(send, 413, "The request body is larger than 64 KiB.")
                return None
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await self._reply(send, 413, "The request body is larger than 64 KiB.")
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if media_type != b"application/json" and not media_type.endswith(b"+json"):
                await self._reply(
                    send, 415, "The request body must be JSON (Content-Type: application/json)."
                )
                return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    async def _reply(send: Send, status: int, message: str) -> None:
        body = _error(message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
