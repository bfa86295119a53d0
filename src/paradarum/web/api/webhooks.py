from __future__ import annotations

from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, next_page_link
from paradarum.web.routing import Routes
from paradarum_client.models import (
    NewWebhookSecret,
    PageQuery,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookIn,
    WebhookPatchIn,
)

routes = Routes(tag="webhooks")


@routes.post(
    "/api/account/webhooks",
    status=201,
    errors=(403,),
    summary="Add a webhook endpoint (session); its signing secret is shown this once",
)
async def create_webhook(request: Request, body: WebhookIn) -> Reply[NewWebhookSecret]:
    created = await request.runtime.webhooks.create(
        principal=request.principal, url=body.url, events=body.events, enabled=body.enabled
    )
    return Reply(
        shapes.webhook_secret(created),
        "Webhook endpoint added. Keep its signing secret now: it is not shown again.",
    )


@routes.get(
    "/api/account/webhooks",
    errors=(403,),
    summary="List webhook endpoints (session)",
)
async def list_webhooks(request: Request) -> Reply[list[WebhookEndpoint]]:
    found = await request.runtime.webhooks.list(principal=request.principal)
    return Reply([shapes.webhook(info) for info in found], "Webhook endpoints")


@routes.get(
    "/api/account/webhooks/{id}",
    errors=(403, 404),
    summary="One webhook endpoint (session)",
)
async def get_webhook(request: Request, id: int) -> Reply[WebhookEndpoint]:
    info = await request.runtime.webhooks.get(principal=request.principal, endpoint_id=id)
    return Reply(shapes.webhook(info), "Webhook endpoint")


@routes.patch(
    "/api/account/webhooks/{id}",
    errors=(403, 404),
    summary="Change a webhook endpoint's URL, events or enabled (session)",
)
async def update_webhook(request: Request, id: int, body: WebhookPatchIn) -> Reply[WebhookEndpoint]:
    info = await request.runtime.webhooks.update(
        principal=request.principal,
        endpoint_id=id,
        url=body.url,
        events=body.events,
        enabled=body.enabled,
    )
    return Reply(shapes.webhook(info), "Webhook endpoint updated")


@routes.delete(
    "/api/account/webhooks/{id}",
    errors=(403, 404),
    summary="Delete a webhook endpoint and its delivery log (session)",
)
async def delete_webhook(request: Request, id: int) -> Reply[WebhookEndpoint]:
    info = await request.runtime.webhooks.delete(principal=request.principal, endpoint_id=id)
    return Reply(shapes.webhook(info), "Webhook endpoint deleted")


@routes.post(
    "/api/account/webhooks/{id}/secret",
    errors=(403, 404),
    summary="Roll the signing secret (session): a new one, shown this once, signs from now on",
)
async def roll_webhook_secret(request: Request, id: int) -> Reply[NewWebhookSecret]:
    rolled = await request.runtime.webhooks.roll_secret(principal=request.principal, endpoint_id=id)
    return Reply(
        shapes.webhook_secret(rolled),
        "Signing secret rolled. Keep it now: it is not shown again.",
    )


@routes.get(
    "/api/account/webhooks/{id}/deliveries",
    errors=(403, 404),
    summary="The endpoint's delivery log, newest first (session)",
)
async def list_deliveries(
    request: Request, id: int, query: PageQuery
) -> Reply[list[WebhookDelivery]]:
    page = await request.runtime.webhooks.deliveries(
        principal=request.principal,
        endpoint_id=id,
        limit=query.limit,
        cursor=query.cursor,
    )
    return Reply(
        [shapes.webhook_delivery(item) for item in page.items],
        "Deliveries",
        headers=next_page_link(request.path, query, page.next_cursor),
    )


@routes.post(
    "/api/account/webhooks/{id}/deliveries/{delivery}/resend",
    status=202,
    errors=(403, 404),
    summary="Send a delivery again: the same event and webhook-id, a fresh day of retries",
)
async def resend_delivery(request: Request, id: int, delivery: int) -> Reply[WebhookDelivery]:
    info = await request.runtime.webhooks.resend(
        principal=request.principal, endpoint_id=id, delivery_id=delivery
    )
    return Reply(shapes.webhook_delivery(info), "The delivery is queued again")
