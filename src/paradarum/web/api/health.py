from __future__ import annotations

from paradarum.db import queries
from paradarum.errors import Unavailable
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply
from paradarum.web.routing import Routes
from paradarum_client.models import Health, Readiness

routes = Routes(tag="health")
OK = Health(status="ok")


@routes.get("/api/health", permission=None, summary="Liveness (no I/O)")
async def health(_request: Request) -> Reply[Health]:
    return Reply(OK, "Paradarum is running")


@routes.get(
    "/api/health/ready",
    permission=None,
    summary="Readiness: the database answers and writes are not failing; job counts",
)
async def ready(request: Request) -> Reply[Readiness]:
    db = request.runtime.db
    # The same route a key check takes: not the password hasher's threads, not
    # the general database threads, so a burst of sign-ins cannot make it fail.
    # A real table (the schema's version): a database file that cannot be read, or
    # holds no schema, is not ready.
    if await db.hot_read(queries.MIGRATED) is None:
        raise Unavailable(reason="the database has no schema version")
    if db.write_health.failing_since is not None:
        raise Unavailable(reason=f"writes are failing: {db.write_health.reason}")
    return Reply(shapes.readiness(await request.runtime.jobs.snapshot()), "Paradarum is ready")
