from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from paradarum.web.deps import RuntimeDep
from paradarum.web.responses import ok
from paradarum.web.schemas import Envelope, HealthOut, error_responses

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Envelope[HealthOut], summary="Liveness (no I/O)")
async def health() -> JSONResponse:
    return ok({"status": "ok"}, "Paradarum is running")


@router.get(
    "/health/ready",
    response_model=Envelope[HealthOut],
    responses=error_responses(503),
    summary="Readiness: the database answers",
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    def ping() -> None:
        with runtime.db.read() as conn:
            conn.execute(text("SELECT 1"))

    await run_in_threadpool(ping)
    return ok({"status": "ok"}, "Paradarum is ready")
