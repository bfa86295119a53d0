from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, next_page_link
from paradarum.web.routing import Routes
from paradarum.web.schemas import PurgeIn, PurgeListQuery, PurgeScopeQuery
from paradarum_client.models import Purge, PurgeScope

routes = Routes(tag="cache purge")
NO_NODES = (
    "No cache node is configured on this server (PARADARUM_CACHE_NODES): "
    "nothing was sent to any cache."
)


@routes.post(
    "/api/account/purge",
    permission=Permission.PURGE,
    body=PurgeIn,
    response=Purge,
    status=202,
    errors=(429,),
    summary="Purge URLs, tags or everything of your zones from every cache node",
)
async def request_purge(request: Request) -> Reply:
    body: PurgeIn = request.body
    info = await request.runtime.purges.request(
        principal=request.principal,
        client=request.client,
        urls=body.urls,
        tags=body.tags,
        everything=body.everything,
    )
    [detail] = await request.runtime.purges.with_nodes([info])
    nodes = request.runtime.purges.nodes
    return Reply(shapes.purge_detail(detail), "Purge queued" if nodes else NO_NODES)


@routes.get(
    "/api/account/purge/scope",
    permission=Permission.PURGE,
    query=PurgeScopeQuery,
    response=PurgeScope,
    summary="What this credential may purge, and whether that covers a hostname",
)
async def purge_scope(request: Request) -> Reply:
    query: PurgeScopeQuery = request.query
    scope = await request.runtime.purges.scope(principal=request.principal, hostname=query.hostname)
    return Reply(shapes.purge_scope(scope), "Purge scope")


@routes.get(
    "/api/account/purges",
    permission=Permission.PURGE,
    query=PurgeListQuery,
    response=list[Purge],
    paged=True,
    summary="List purges, newest first, with each cache node's result",
)
async def list_purges(request: Request) -> Reply:
    query: PurgeListQuery = request.query
    page = await request.runtime.purges.list(
        account_id=request.principal.account_id, limit=query.limit, cursor=query.cursor
    )
    details = await request.runtime.purges.with_nodes(page.items)
    return Reply(
        [shapes.purge_detail(detail) for detail in details],
        "Purges",
        headers=next_page_link(request.path, query.model_dump(), page.next_cursor),
    )


@routes.get(
    "/api/account/purges/{id}",
    permission=Permission.PURGE,
    response=Purge,
    errors=(404,),
    summary="One purge, with each cache node's result",
)
async def get_purge(request: Request) -> Reply:
    detail = await request.runtime.purges.get(
        account_id=request.principal.account_id, purge_id=request.params["id"]
    )
    message = "Purge" if detail.nodes or request.runtime.purges.nodes else NO_NODES
    return Reply(shapes.purge_detail(detail), message)
