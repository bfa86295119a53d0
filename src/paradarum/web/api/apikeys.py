from __future__ import annotations

from datetime import timedelta

from paradarum.services.apikeys import ListFilter, key_settings
from paradarum.services.context import Permission
from paradarum.services.usage import HISTORY_DAYS
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, next_page_link
from paradarum.web.routing import Routes
from paradarum.web.schemas import KeyListQuery, NewKeyIn, RollIn
from paradarum_client.models import ApiKey, KeyUsage, NewKey

routes = Routes(tag="api keys")
NO_STORE = {"Cache-Control": "no-store"}


@routes.get(
    "/api/account/apikeys",
    query=KeyListQuery,
    response=list[ApiKey],
    paged=True,
    summary="List keys, newest first (revoked and expired included by default)",
)
async def list_keys(request: Request) -> Reply:
    query: KeyListQuery = request.query
    runtime = request.runtime
    page = await runtime.apikeys.list(
        principal=request.principal,
        limit=query.limit,
        cursor=query.cursor,
        status=ListFilter(query.status),
    )
    now = runtime.clock()
    return Reply(
        [shapes.api_key(info, now) for info in page.items],
        "API keys",
        headers=next_page_link(request.path, query.model_dump(), page.next_cursor),
    )


@routes.post(
    "/api/account/apikeys",
    body=NewKeyIn,
    response=NewKey,
    status=201,
    summary="Create a key (the raw key is in this response only)",
)
async def create_key(request: Request) -> Reply:
    body: NewKeyIn = request.body
    runtime = request.runtime
    settings = key_settings(
        now=runtime.clock(),
        expires_at=body.expiresAt,
        permission=Permission(body.permissions),
        allowed_cidrs=body.allowedCidrs,
        zone_ids=body.zoneIds,
    )
    created = await runtime.apikeys.create(
        principal=request.principal, name=body.name, client=request.client, settings=settings
    )
    return Reply(shapes.new_key(created, runtime.clock()), "API key created", headers=NO_STORE)


@routes.delete(
    "/api/account/apikeys/{id}",
    response=ApiKey,
    errors=(404,),
    summary="Revoke a key, permanently",
)
async def revoke_key(request: Request) -> Reply:
    runtime = request.runtime
    info = await runtime.apikeys.revoke(
        principal=request.principal, key_id=request.params["id"], client=request.client
    )
    return Reply(shapes.api_key(info, runtime.clock()), "API key revoked")


@routes.post(
    "/api/account/apikeys/{id}/roll",
    body=RollIn,
    response=NewKey,
    status=201,
    errors=(404,),
    summary="Replace a key with a new one; the old one works for the grace period",
)
async def roll_key(request: Request) -> Reply:
    body: RollIn = request.body
    runtime = request.runtime
    created = await runtime.apikeys.roll(
        principal=request.principal,
        key_id=request.params["id"],
        grace=timedelta(minutes=body.gracePeriodMinutes),
        client=request.client,
    )
    return Reply(shapes.new_key(created, runtime.clock()), "API key rolled", headers=NO_STORE)


@routes.get(
    "/api/account/apikeys/{id}/usage",
    response=KeyUsage,
    errors=(404,),
    summary=f"A key's requests and refusals per UTC day, the last {HISTORY_DAYS} days",
)
async def key_usage(request: Request) -> Reply:
    key_id = request.params["id"]
    days = await request.runtime.usage.history(
        principal=request.principal, key_id=key_id, days=HISTORY_DAYS
    )
    return Reply(shapes.usage(key_id, days), "Key usage")
