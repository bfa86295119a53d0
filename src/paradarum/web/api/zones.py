from __future__ import annotations

from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, page_reply
from paradarum.web.routing import Routes
from paradarum_client.models import PageQuery, Zone, ZoneIn

routes = Routes(tag="zones")


@routes.get(
    "/api/account/zones",
    summary="List zones (the hostnames this account may purge), newest first",
)
async def list_zones(request: Request, query: PageQuery) -> Reply[list[Zone]]:
    page = await request.runtime.zones.list(
        principal=request.principal, limit=query.limit, cursor=query.cursor
    )
    return page_reply(request.path, query, page, shapes.zone, "Zones")


@routes.post(
    "/api/account/zones",
    status=201,
    errors=(409,),
    summary="Add a zone (pending until its DNS TXT record is verified)",
)
async def add_zone(request: Request, body: ZoneIn) -> Reply[Zone]:
    info = await request.runtime.zones.add(
        principal=request.principal, hostname=body.hostname, client=request.client
    )
    record = shapes.zone(info).verification
    return Reply(
        shapes.zone(info),
        f"Zone added. Create a TXT record named {record.name} with the value "
        f"{record.value}, then verify the zone.",
    )


@routes.post(
    "/api/account/zones/{id}/verify",
    errors=(404, 409),
    summary="Look for the zone's TXT record in DNS; found: the zone is active",
)
async def verify_zone(request: Request, id: int) -> Reply[Zone]:
    info = await request.runtime.zones.verify(
        principal=request.principal, zone_id=id, client=request.client
    )
    return Reply(shapes.zone(info), "Zone verified: it is active and can be purged")


@routes.delete(
    "/api/account/zones/{id}",
    errors=(404,),
    summary="Delete a zone; its hostname can no longer be purged from this account",
)
async def delete_zone(request: Request, id: int) -> Reply[Zone]:
    info = await request.runtime.zones.delete(
        principal=request.principal, zone_id=id, client=request.client
    )
    return Reply(shapes.zone(info), "Zone deleted")
