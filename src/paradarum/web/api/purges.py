from __future__ import annotations

from paradarum.services.context import Permission
from paradarum.services.pagination import Page
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, page_reply
from paradarum.web.routing import Routes
from paradarum_client.models import PageQuery, Purge, PurgeIn, PurgeScope, PurgeScopeQuery

routes = Routes(tag="cache purge")
NO_NODES = (
    "No cache node is configured on this server (PARADARUM_CACHE_NODES): "
    "nothing was sent to any cache."
)


@routes.post(
    "/api/account/purge",
    permission=Permission.PURGE,
    status=202,
    errors=(429,),
    summary="Purge URLs, tags or everything of your zones from every cache node",
)
async def request_purge(request: Request, body: PurgeIn) -> Reply[Purge]:
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
    summary="What this credential may purge, and whether that covers a hostname",
)
async def purge_scope(request: Request, query: PurgeScopeQuery) -> Reply[PurgeScope]:
    scope = await request.runtime.purges.scope(principal=request.principal, hostname=query.hostname)
    return Reply(shapes.purge_scope(scope), "Purge scope")


@routes.get(
    "/api/account/purges",
    permission=Permission.PURGE,
    summary="List purges, newest first, with each cache node's result",
)
async def list_purges(request: Request, query: PageQuery) -> Reply[list[Purge]]:
    page = await request.runtime.purges.list(
        principal=request.principal, limit=query.limit, cursor=query.cursor
    )
    details = Page(list(await request.runtime.purges.with_nodes(page.items)), page.next_cursor)
    return page_reply(request.path, query, details, shapes.purge_detail, "Purges")


@routes.get(
    "/api/account/purges/{id}",
    permission=Permission.PURGE,
    errors=(404,),
    summary="One purge, with each cache node's result",
)
async def get_purge(request: Request, id: int) -> Reply[Purge]:
    detail = await request.runtime.purges.get(principal=request.principal, purge_id=id)
    message = "Purge" if detail.nodes or request.runtime.purges.nodes else NO_NODES
    return Reply(shapes.purge_detail(detail), message)
