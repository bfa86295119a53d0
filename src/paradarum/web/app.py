"""The application factory: ``create_app(settings)``.

Everything the app needs (database, secrets, services) is built here, per app,
so tests can build as many apps as they like with their own settings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from paradarum import __version__
from paradarum.config import Settings
from paradarum.runtime import Runtime, build_runtime
from paradarum.web import errors
from paradarum.web.api import account, apikeys, audit, auth, health, purges
from paradarum.web.middleware import EdgeMiddleware
from paradarum.web.openapi import build as document
from paradarum.web.panel import routes as panel

logger = logging.getLogger("paradarum")

DESCRIPTION = """
The Paradarum API: accounts, panel sessions, API keys.

Every response is an envelope `{"succeeded", "message", "data"}`; validation
errors add `errors: {field: [problems]}`. Authenticate with
`Authorization: Bearer <session JWT or pdm_ key>` or `X-API-Key: pdm_...`.
"""


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. Pass ``runtime`` to share one (tests with a fake clock)."""
    owned = runtime is None
    if runtime is None:
        runtime = build_runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("paradarum started", extra={"database": runtime.db.dialect})
        await runtime.db.open_async()
        if runtime.settings.purge_delivery_enabled:
            runtime.purge_delivery.start()
        try:
            yield
        finally:
            # Joins the delivery thread (it finishes the deliveries in hand): off the loop.
            await asyncio.to_thread(runtime.purge_delivery.stop)
            await runtime.db.close_async()
        if owned:
            runtime.close()

    app = FastAPI(
        title="Paradarum API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's Swagger UI pulls its scripts from a CDN; the service serves nothing
        # from elsewhere, so the description is offered as /openapi.json only.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime
    app.state.trusted_networks = [
        ipaddress.ip_network(net, strict=False) for net in runtime.settings.trusted_proxies
    ]
    errors.install(app)
    for module in (health, auth, account, apikeys, audit, purges):
        app.include_router(module.router, prefix="/api")
    app.include_router(panel.router)
    app.add_middleware(EdgeMiddleware, access_log=runtime.settings.access_log)
    _document_errors(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` worker processes: settings from the environment."""
    from paradarum import logs

    settings = Settings()
    logs.configure(settings.log_level)
    return create_app(settings)


def _document_errors(app: FastAPI) -> None:
    """Make /openapi.json say what the service really does (see ``web.openapi``)."""

    def openapi() -> dict[str, object]:
        if not app.openapi_schema:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
