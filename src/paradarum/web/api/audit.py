from __future__ import annotations

from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, page_reply
from paradarum.web.routing import Routes
from paradarum_client.models import AuditEvent, PageQuery

routes = Routes(tag="account")


@routes.get(
    "/api/account/audit",
    summary="Security log: sign-ins, key and zone events, purges, notifications; newest first",
)
async def list_events(request: Request, query: PageQuery) -> Reply[list[AuditEvent]]:
    page = await request.runtime.audit.list(
        principal=request.principal, limit=query.limit, cursor=query.cursor
    )
    return page_reply(request.path, query, page, shapes.audit_event, "Security log")
