"""The application factory: ``create_app(settings)``.

Everything the app needs (database, secrets, services) is built here, per app,
so tests can build as many apps as they like with their own settings.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from paradarum import __version__
from paradarum.config import Settings
from paradarum.runtime import Runtime, build_runtime
from paradarum.web import errors
from paradarum.web.api import account, apikeys, auth, health
from paradarum.web.middleware import EdgeMiddleware
from paradarum.web.schemas import ErrorEnvelope

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
        try:
            yield
        finally:
            await runtime.db.close_async()
        if owned:
            runtime.close()

    app = FastAPI(
        title="Paradarum API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime
    app.state.trusted_networks = [
        ipaddress.ip_network(net, strict=False) for net in runtime.settings.trusted_proxies
    ]
    errors.install(app)
    for module in (health, auth, account, apikeys):
        app.include_router(module.router, prefix="/api")
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
    """Make /openapi.json say what the service really does: 400 envelopes (not 422)."""

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["ErrorEnvelope"] = ErrorEnvelope.model_json_schema()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                responses.pop("422", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
