from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from paradarum.services.pagination import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT
from paradarum.web.deps import ClientDep, PrincipalDep, RuntimeDep
from paradarum.web.responses import NO_STORE, next_page_link, ok
from paradarum.web.schemas import (
    CreatedKeyOut,
    Envelope,
    KeyOut,
    NewKeyIn,
    created_key_out,
    error_responses,
    key_out,
)

router = APIRouter(prefix="/account/apikeys", tags=["api keys"])


@router.get(
    "",
    response_model=Envelope[list[KeyOut]],
    responses=error_responses(400, 401, 429),
    summary="List keys, newest first (revoked included by default)",
)
async def list_keys(
    request: Request,
    principal: PrincipalDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[Literal["all", "active", "revoked"], Query()] = "all",
) -> JSONResponse:
    page = await run_in_threadpool(
        lambda: runtime.apikeys.list(
            account_id=principal.account_id, limit=limit, cursor=cursor, status=status
        )
    )
    return ok(
        [key_out(info) for info in page.items],
        "API keys",
        headers=next_page_link(request, page.next_cursor),
    )


@router.post(
    "",
    status_code=201,
    response_model=Envelope[CreatedKeyOut],
    responses=error_responses(400, 401, 413, 415, 429),
    summary="Create a key (the raw key is in this response only)",
)
async def create_key(
    body: NewKeyIn, principal: PrincipalDep, runtime: RuntimeDep, client: ClientDep
) -> JSONResponse:
    created = await run_in_threadpool(
        lambda: runtime.apikeys.create(principal=principal, name=body.name, client=client)
    )
    return ok(created_key_out(created), "API key created", status=201, headers=NO_STORE)


@router.delete(
    "/{key_id}",
    response_model=Envelope[KeyOut],
    responses=error_responses(400, 401, 404, 429),
    summary="Revoke a key, permanently",
)
async def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The key's ID")],
    principal: PrincipalDep,
    runtime: RuntimeDep,
    client: ClientDep,
) -> JSONResponse:
    info = await run_in_threadpool(
        lambda: runtime.apikeys.revoke(principal=principal, key_id=key_id, client=client)
    )
    return ok(key_out(info), "API key revoked")
