from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from paradarum.services.pagination import MAX_ID
from paradarum.web.deps import ClientDep, PrincipalDep, RuntimeDep
from paradarum.web.responses import next_page_link, ok
from paradarum.web.schemas import (
    Envelope,
    PurgeDetailOut,
    PurgeIn,
    PurgeOut,
    error_responses,
    purge_detail_out,
    purge_out,
)

router = APIRouter(prefix="/account", tags=["cache purge"])


@router.post(
    "/purge",
    status_code=202,
    response_model=Envelope[PurgeOut],
    responses=error_responses(400, 401, 413, 415, 429),
    summary="Purge URLs, tags or everything from every cache node (delivered in the background)",
)
async def request_purge(
    body: PurgeIn, principal: PrincipalDep, runtime: RuntimeDep, client: ClientDep
) -> JSONResponse:
    info = await run_in_threadpool(
        lambda: runtime.purges.request(
            principal=principal,
            client=client,
            urls=body.urls,
            tags=body.tags,
            everything=body.everything,
        )
    )
    return ok(purge_out(info, with_completed=False), "Purge queued", status=202)


@router.get(
    "/purges",
    response_model=Envelope[list[PurgeOut]],
    responses=error_responses(400, 401, 429),
    summary="List purges, newest first",
)
async def list_purges(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    page = await run_in_threadpool(
        lambda: runtime.purges.list(account_id=principal.account_id, limit=limit, cursor=cursor)
    )
    return ok(
        [purge_out(info) for info in page.items],
        "Purges",
        headers=next_page_link(request, page.next_cursor),
    )


@router.get(
    "/purges/{purge_id}",
    response_model=Envelope[PurgeDetailOut],
    responses=error_responses(400, 401, 404, 429),
    summary="One purge, with each cache node's result",
)
async def get_purge(
    purge_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The purge's ID")],
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> JSONResponse:
    detail = await run_in_threadpool(
        lambda: runtime.purges.get(account_id=principal.account_id, purge_id=purge_id)
    )
    return ok(purge_detail_out(detail), "Purge")
