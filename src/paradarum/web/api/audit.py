from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from paradarum.services.pagination import DEFAULT_LIMIT, MAX_LIMIT
from paradarum.web.deps import PrincipalDep, RuntimeDep
from paradarum.web.responses import next_page_link, ok
from paradarum.web.schemas import AuditEventOut, Envelope, audit_event_out, error_responses

router = APIRouter(prefix="/account/audit", tags=["account"])


@router.get(
    "",
    response_model=Envelope[list[AuditEventOut]],
    responses=error_responses(400, 401, 429),
    summary="Security log: the account's sign-ins, sign-outs and key events, newest first",
)
async def list_events(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    page = await run_in_threadpool(
        lambda: runtime.audit.list(account_id=principal.account_id, limit=limit, cursor=cursor)
    )
    return ok(
        [audit_event_out(event) for event in page.items],
        "Security log",
        headers=next_page_link(request, page.next_cursor),
    )
