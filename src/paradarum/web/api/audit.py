from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, Streamed, next_page_link
from paradarum.web.routing import Routes
from paradarum_client.models import AuditEvent, AuditExportQuery, PageQuery, to_wire

routes = Routes(tag="account")
NDJSON = b"application/x-ndjson"


@routes.get(
    "/api/account/audit",
    summary="Security log: sign-ins, key and zone events, purges, notifications; newest first",
)
async def list_events(request: Request, query: PageQuery) -> Reply[list[AuditEvent]]:
    page = await request.runtime.audit.list(
        principal=request.principal, limit=query.limit, cursor=query.cursor
    )
    return Reply(
        [shapes.audit_event(event) for event in page.items],
        "Security log",
        headers=next_page_link(request.path, query, page.next_cursor),
    )


@routes.get(
    "/api/account/audit-log/export",
    media_type="application/x-ndjson",
    summary="The security log as NDJSON (one entry per line), oldest first, for SIEM tools",
    description=(
        "Streamed, `Content-Type: application/x-ndjson`: every entry at or after `since`, "
        "each line an object shaped as in `GET /api/account/audit`."
    ),
)
async def export_events(request: Request, query: AuditExportQuery) -> Streamed[AuditEvent]:
    events = request.runtime.audit.export(
        account_id=request.principal.account_id, since=query.since
    )
    # The first page is read before the answer starts: a database that is down is a
    # 503 envelope, not a 200 cut short.
    first = await anext(events, None)

    async def lines() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield orjson.dumps(to_wire(shapes.audit_event(first))) + b"\n"
        async for event in events:
            yield orjson.dumps(to_wire(shapes.audit_event(event))) + b"\n"

    return Streamed(lines(), content_type=NDJSON)
