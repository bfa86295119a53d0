from __future__ import annotations

from collections.abc import AsyncIterator

from paradarum.services.audit import AuditEvent
from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import NDJSON, Reply, Stream, json_line, page_reply
from paradarum.web.routing import Routes
from paradarum_client import models
from paradarum_client.models import AuditExportQuery, PageQuery

routes = Routes(tag="account")


@routes.get(
    "/api/account/audit",
    summary="Security log: sign-ins, key and zone events, purges, notifications; newest first",
)
async def list_events(request: Request, query: PageQuery) -> Reply[list[models.AuditEvent]]:
    page = await request.runtime.audit.list(
        principal=request.principal, limit=query.limit, cursor=query.cursor
    )
    return page_reply(request.path, query, page, shapes.audit_event, "Security log")


@routes.get(
    "/api/account/audit-log/export",
    summary="The security log as NDJSON, oldest first, streamed (for SIEM tools)",
    description=(
        "One JSON object per line, each shaped as an entry of `GET /api/account/audit` "
        "(`AuditEvent`), oldest first (`occurredAt`, then `id`), from `since` on. Not an "
        "envelope. To follow the log, ask again with `since` set to the last `occurredAt` "
        "seen and skip the ids already read."
    ),
    media_type="application/x-ndjson",
    answer={
        "type": "string",
        "description": "Lines of JSON, each an AuditEvent (see components).",
    },
)
async def export_events(request: Request, query: AuditExportQuery) -> Stream:
    pages = await request.runtime.audit.export(principal=request.principal, since=query.since)
    return Stream(_lines(pages), NDJSON, headers={"Cache-Control": "no-store"})


async def _lines(pages: AsyncIterator[list[AuditEvent]]) -> AsyncIterator[bytes]:
    async for page in pages:
        yield b"".join(json_line(shapes.audit_event(event)) for event in page)
