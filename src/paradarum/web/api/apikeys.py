from __future__ import annotations

from datetime import timedelta

from paradarum.services.apikeys import ListFilter, key_settings
from paradarum.services.context import Permission
from paradarum.services.usage import HISTORY_DAYS
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, page_reply
from paradarum.web.routing import Routes
from paradarum_client.models import ApiKey, KeyListQuery, KeyUsage, NewKey, NewKeyIn, RollIn

routes = Routes(tag="api keys")
NO_STORE = {"Cache-Control": "no-store"}


@routes.get(
    "/api/account/apikeys",
    summary="List keys, newest first (revoked and expired included by default)",
)
async def list_keys(request: Request, query: KeyListQuery) -> Reply[list[ApiKey]]:
    runtime = request.runtime
    page = await runtime.apikeys.list(
        principal=request.principal,
        limit=query.limit,
        cursor=query.cursor,
        status=ListFilter(query.status),
    )
    now = runtime.clock()
    return page_reply(request.path, query, page, lambda info: shapes.api_key(info, now), "API keys")


@routes.post(
    "/api/account/apikeys",
    status=201,
    summary="Create a key (the raw key is in this response only)",
)
async def create_key(request: Request, body: NewKeyIn) -> Reply[NewKey]:
    runtime = request.runtime
    settings = key_settings(
        now=runtime.clock(),
        expires_at=body.expires_at,
        permission=Permission(body.permissions),
        allowed_cidrs=body.allowed_cidrs,
        zone_ids=body.zone_ids,
    )
    created = await runtime.apikeys.create(
        principal=request.principal, name=body.name, client=request.client, settings=settings
    )
    return Reply(shapes.new_key(created, runtime.clock()), "API key created", headers=NO_STORE)


@routes.delete(
    "/api/account/apikeys/{id}",
    errors=(404,),
    summary="Revoke a key, permanently",
)
async def revoke_key(request: Request, id: int) -> Reply[ApiKey]:
    runtime = request.runtime
    info = await runtime.apikeys.revoke(
        principal=request.principal, key_id=id, client=request.client
    )
    return Reply(shapes.api_key(info, runtime.clock()), "API key revoked")


@routes.post(
    "/api/account/apikeys/{id}/roll",
    status=201,
    errors=(404,),
    summary="Replace a key with a new one; the old one works for the grace period",
)
async def roll_key(request: Request, id: int, body: RollIn) -> Reply[NewKey]:
    runtime = request.runtime
    created = await runtime.apikeys.roll(
        principal=request.principal,
        key_id=id,
        grace=timedelta(minutes=body.grace_period_minutes),
        client=request.client,
    )
    return Reply(shapes.new_key(created, runtime.clock()), "API key rolled", headers=NO_STORE)


@routes.get(
    "/api/account/apikeys/{id}/usage",
    errors=(404,),
    summary=f"A key's requests and refusals per UTC day, the last {HISTORY_DAYS} days",
)
async def key_usage(request: Request, id: int) -> Reply[KeyUsage]:
    days = await request.runtime.usage.history(
        principal=request.principal, key_id=id, days=HISTORY_DAYS
    )
    return Reply(shapes.usage(id, days), "Key usage")
