"""The edge: what every request passes through before the router, one concern each.

Outermost first::

    access log → in-flight limit → security headers → client share → last resort
      → header-line limit → credential in the query → body guard → router

so that the access log sees the final status of every request, security headers
go on every response (errors included), and nothing inside can leak a traceback.
:class:`Edge` runs them all in one coroutine with one wrapper of ``send``: each
runs on every request, and a layer of its own (a call, a closure) would cost about
a microsecond each (docs/performance.md). The limits' state and the checks that
stand alone are the small classes below.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paradarum import keys
from paradarum.logs import AccessLogWriter
from paradarum.web import errors as web_errors
from paradarum.web.request import BODY, Network, client_address
from paradarum.web.responses import Response, envelope_error

MAX_BODY = 64 * 1024
# DELETE may carry a body too (removing a member says what happens to their keys).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_HEADER_LINE = 16 * 1024
MAX_HEADERS = 64 * 1024
logger = logging.getLogger("paradarum.web")


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


# -- credentials in the URL --------------------------------------------------------------

_KEY_IN_QUERY = re.compile(r"(?:^|[^A-Za-z0-9])" + re.escape(keys.PREFIX))
_JWT_IN_QUERY = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
_CREDENTIAL_PARAMS = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "access_token", "jwt", "x-api-key"}
)


def credential_in_query(query_string: bytes) -> bool:
    """Whether a query string carries a key or a session token.

    Looks for a ``pdm_`` that starts a value (not one inside, say, an opaque
    cursor), for a JWT, and for parameter names that only a credential would use.
    """
    if not query_string:
        return False
    text = unquote_plus(query_string.decode("latin-1"))
    if _KEY_IN_QUERY.search(text) or _JWT_IN_QUERY.search(text):
        return True
    names = {part.split("=", 1)[0].strip().lower() for part in text.split("&")}
    return not names.isdisjoint(_CREDENTIAL_PARAMS)


# -- bodies -----------------------------------------------------------------------------


class BodyGuard:
    """For ``POST``/``PUT``/``PATCH``/``DELETE`` under ``/api``: 413 past the size limit (declared
    or streamed), 415 for a body that is not JSON, 400 for a bad ``Content-Length``;
    otherwise the body is read once and handed on."""

    def __init__(
        self, app: ASGIApp, *, limit: int = MAX_BODY, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not scope["path"].startswith("/api")
        ):
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.limit)
        too_large = envelope_error(413, web_errors.BODY_TOO_LARGE.format(limit=_size(limit)))
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await envelope_error(400, web_errors.BAD_LENGTH)(send)
                    return
                if int(value) > limit:
                    await too_large(send)
                    return
            elif name == b"content-type":
                content_type = value
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            media_type = content_type.split(b";")[0].strip().lower()
            if media_type != b"application/json" and not media_type.endswith(b"+json"):
                await envelope_error(415, web_errors.NOT_JSON)(send)
                return
        # Read once, here: the router takes it from the scope.
        scope[BODY] = body
        await self.app(scope, receive, send)


# -- limits -----------------------------------------------------------------------------


class HeaderLimit:
    """431 for a header line over 16 KiB, or over 64 KiB of headers in all.

    The server bounds what it buffers before any of this runs (its read buffer, and
    100 lines at most), so a huge header never reaches Python; this makes the limits
    exact and says so in the envelope."""

    def __init__(
        self, app: ASGIApp, *, line: int = MAX_HEADER_LINE, total: int = MAX_HEADERS
    ) -> None:
        self.app = app
        self.line = line
        self.total = total

    def refusal(self, scope: Scope) -> Response | None:
        """The 431 for these headers, or None when they are within the limits."""
        size = 0
        for name, value in scope["headers"]:
            length = len(name) + len(value)
            size += length + 4  # ": " and CRLF, as on the wire
            if length > self.line or size > self.total:
                limit = self.line if length > self.line else self.total
                what = "A request header line is" if limit == self.line else "The headers are"
                return envelope_error(431, f"{what} longer than {_size(limit)}.")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await refusal(send)
                return
        await self.app(scope, receive, send)


class InFlightLimit:
    """At most ``limit`` requests in flight in this worker; beyond that a 503 with
    ``Retry-After`` at once (a queue that long answers too late anyway), and a log
    line at most every ``log_every`` seconds while it lasts."""

    def __init__(self, app: ASGIApp, *, limit: int, log_every: float = 10.0) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._log_every = log_every
        self._logged = float("-inf")  # the first refusal is logged, however early
        self._refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self.refuse(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def refuse(self, send: Send) -> None:
        """The 503, and a log line at most every ``log_every`` seconds."""
        self._refused += 1
        now = time.monotonic()
        if now - self._logged >= self._log_every:
            logger.warning(
                "request limit reached: %d requests in flight; refused %d with 503",
                self.in_flight,
                self._refused,
                extra={"limit": self.limit},
            )
            self._logged, self._refused = now, 0
        await envelope_error(503, web_errors.OVERLOADED, headers={"Retry-After": "1"})(send)


class ClientShare:
    """At most ``limit`` requests in flight per client address in this worker, so
    that one client holding many slow requests cannot take every slot of
    :class:`InFlightLimit` and starve the others. Beyond its share a client gets a
    ``429`` with ``Retry-After: 1`` at once; everyone else is served as before.

    The address is the client as the trusted-proxy rules see it (behind a proxy
    without ``PARADARUM_TRUSTED_PROXIES`` every request comes from the proxy, and the
    proxy as a whole gets one share). Connections that have not finished sending
    their headers never reach the app: sharing those is the proxy's job
    (``deploy/haproxy/paradarum.cfg``).
    """

    def __init__(self, app: ASGIApp, *, limit: int, trusted: Sequence[Network] = ()) -> None:
        self.app = app
        self.limit = limit
        self.trusted = trusted
        self.in_flight: dict[str | None, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = client_address(scope, self.trusted)
        if not self.take(address):
            await self.refuse(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.give_back(address)

    def take(self, address: str | None) -> bool:
        """Count a request of ``address`` in, unless it already holds its share."""
        held = self.in_flight.get(address, 0)
        if held >= self.limit:
            return False
        self.in_flight[address] = held + 1
        return True

    def give_back(self, address: str | None) -> None:
        """Count a request of ``address`` out (it had been taken)."""
        left = self.in_flight[address] - 1
        if left:
            self.in_flight[address] = left
        else:
            del self.in_flight[address]

    async def refuse(self, send: Send) -> None:
        await envelope_error(429, web_errors.CLIENT_BUSY, headers={"Retry-After": "1"})(send)


# -- headers ------------------------------------------------------------------------------

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
_PAGE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
_API_HEADERS = [
    *_COMMON,
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
_PAGE_HEADERS = [*_COMMON, (b"content-security-policy", _PAGE_CSP)]
_NO_STORE = (b"cache-control", b"no-store")
_API_NO_STORE = [*_API_HEADERS, _NO_STORE]


# -- all of it, in one ----------------------------------------------------------------------


class Edge:
    """Every concern above, in the same order and with the same answers, in one
    coroutine and one wrapper of ``send``, as the app runs them: per request, one
    call and one closure instead of eight nested calls and their wrappers (each
    layer costs about a microsecond, and runs on every request;
    docs/performance.md). The client's address is worked out once, for the share
    and the log line alike.

    Outermost first: access log → in-flight limit → security headers → client share
    → last resort → header-line limit → credential in the query → body guard → the
    router."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted: Sequence[Network] = (),
        max_in_flight: int,
        max_per_client: int,
        writer: AccessLogWriter | None = None,
        larger_bodies: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.trusted = trusted
        self.writer = writer
        self.in_flight = InFlightLimit(app, limit=max_in_flight)
        self.share = ClientShare(app, limit=max_per_client, trusted=trusted)
        self.body = BodyGuard(app, larger=larger_bodies)
        self.headers = HeaderLimit(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        writer = self.writer
        started = time.perf_counter() if writer is not None else 0.0
        status = 0  # what was sent; 0 until the response has started
        is_api = scope["path"].startswith("/api")

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message["headers"]
                if is_api:
                    extra = _API_NO_STORE
                    for name, _ in headers:
                        if name == b"cache-control":
                            extra = _API_HEADERS
                            break
                else:
                    extra = _PAGE_HEADERS
                message["headers"] = [*headers, *extra]
            await send(message)

        address = client_address(scope, self.trusted)
        limit = self.in_flight
        share = self.share
        try:
            if limit.in_flight >= limit.limit:
                await limit.refuse(edge_send)
                return
            if not share.take(address):
                await share.refuse(edge_send)
                return
            limit.in_flight += 1
            try:
                refusal = self.headers.refusal(scope)
                query = scope["query_string"]
                if refusal is None and is_api and query and credential_in_query(query):
                    refusal = web_errors.unauthorized()
                if refusal is not None:
                    await refusal(edge_send)
                elif is_api and scope["method"] in BODY_METHODS:
                    await self.body(scope, receive, edge_send)
                else:
                    await self.app(scope, receive, edge_send)
            except Exception as exc:
                if status:  # too late for an answer of our own
                    raise
                await web_errors.server_error(exc)(edge_send)
            finally:
                limit.in_flight -= 1
                share.give_back(address)
        finally:
            if writer is not None:
                writer.write(
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration=time.perf_counter() - started,
                    client=address or "-",
                )
