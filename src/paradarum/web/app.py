"""The application factory: ``create_app(settings)``.

Everything the app needs (database, secrets, services) is built here, per app,
so tests can build as many apps as they like with their own settings.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from starlette.types import Receive, Scope, Send

from paradarum.config import Settings
from paradarum.logs import AccessLogWriter
from paradarum.runtime import Runtime, build_runtime
from paradarum.web import openapi
from paradarum.web.api import (
    account,
    apikeys,
    audit,
    auth,
    health,
    leaks,
    members,
    purges,
    trust,
    twofactor,
    webhooks,
    zones,
)
from paradarum.web.edge import Edge
from paradarum.web.panel.routes import Assets, not_found_page, page_routes
from paradarum.web.request import Request
from paradarum.web.responses import Response, raw_json
from paradarum.web.routing import Route, Router, Routes
from paradarum_client import __version__

logger = logging.getLogger("paradarum")

DESCRIPTION = """
The Paradarum API: accounts, panel sessions, API keys, zones and cache purge.

Every response is an envelope `{"succeeded", "message", "data"}`; validation
errors add `errors: {field: [problems]}`. Authenticate with
`Authorization: Bearer <session JWT or pdm_ key>` or `X-API-Key: pdm_...`.
"""
API_MODULES = (
    health,
    auth,
    twofactor,
    account,
    members,
    apikeys,
    zones,
    audit,
    purges,
    leaks,
    trust,
    webhooks,
)
# Bodies larger than the 64 KiB every other route accepts: a report of 1,000 leaks
# with their URLs is several hundred KiB.
LARGER_BODIES: dict[str, int] = {leaks.GITHUB: 1024 * 1024}


class App:
    """The Paradarum ASGI application: the edge middlewares around the router, and
    the lifespan that starts and stops the runtime with the server's event loop."""

    def __init__(self, runtime: Runtime, *, owned: bool) -> None:
        self.runtime = runtime
        self._owned = owned
        self._openapi: Response | None = None
        trusted = [
            ipaddress.ip_network(net, strict=False) for net in runtime.settings.trusted_proxies
        ]
        extra = Routes(tag="meta", public=False)
        extra.get("/openapi.json", permission=None, summary="This document")(self._document)
        routes: list[Route] = [route for module in API_MODULES for route in module.routes.routes]
        routes += page_routes(runtime.settings).routes + extra.routes
        self.routes = routes
        self.router = Router(
            routes,
            runtime=runtime,
            trusted=trusted,
            mounts={"/static/": Assets()},
            not_found_page=not_found_page,
        )
        # The edge middlewares (web/edge.py), all in one: access log, in-flight limit,
        # security headers, client share, last resort, header limit, credential in
        # the query, body guard.
        self._stack = Edge(
            self.router,
            trusted=trusted,
            max_in_flight=runtime.settings.max_requests_in_flight,
            max_per_client=runtime.settings.max_requests_per_client,
            writer=AccessLogWriter() if runtime.settings.access_log else None,
            larger_bodies=LARGER_BODIES,
        )

    def openapi(self) -> dict[str, Any]:
        return openapi.build(
            self.routes, title="Paradarum API", version=__version__, description=DESCRIPTION
        )

    async def _document(self, _request: Request) -> Response:
        if self._openapi is None:
            self._openapi = raw_json(self.openapi())
        return self._openapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._stack(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as exc:
                    logger.exception("paradarum could not start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                logger.info("paradarum started", extra={"database": self.runtime.db.dialect})
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.runtime.stop()
                    if self._owned:
                        self.runtime.close()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> App:
    """Build the app. Pass ``runtime`` to share one (tests with a fake clock)."""
    owned = runtime is None
    if runtime is None:
        runtime = build_runtime(settings or Settings())
    return App(runtime, owned=owned)


def create_app_from_env() -> App:
    """Factory for the server's worker processes: settings from the environment."""
    from paradarum import logs
    from paradarum.server import die_with_parent

    die_with_parent()
    settings = Settings()
    logs.configure(settings.log_level)
    return create_app(settings)
