from __future__ import annotations

from datetime import timedelta

from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, page_reply
from paradarum.web.routing import Routes
from paradarum_client.models import (
    NewWebhook,
    PageQuery,
    Webhook,
    WebhookDelivery,
    WebhookIn,
    WebhookRollIn,
    WebhookUpdateIn,
)

routes = Routes(tag="webhooks")
NO_STORE = {"Cache-Control": "no-store"}


@routes.get(
    "/api/account/webhooks",
    summary="List webhook endpoints, newest first (owners and admins)",
)
async def list_webhooks(request: Request) -> Reply[list[Webhook]]:
    endpoints = await request.runtime.webhooks.list(principal=request.principal)
    return Reply([shapes.webhook(endpoint) for endpoint in endpoints], "Webhook endpoints")


@routes.post(
    "/api/account/webhooks",
    status=201,
    summary="Add a webhook endpoint; its signing secret is in this answer only "
    "(panel session only)",
)
async def create_webhook(request: Request, body: WebhookIn) -> Reply[NewWebhook]:
    created = await request.runtime.webhooks.create(
        principal=request.principal, url=body.url, events=body.events, client=request.client
    )
    return Reply(
        shapes.new_webhook(created),
        "Webhook endpoint added. Keep the signing secret now: it is not shown again.",
        headers=NO_STORE,
    )


@routes.get("/api/account/webhooks/{id}", errors=(404,), summary="One webhook endpoint")
async def get_webhook(request: Request, id: int) -> Reply[Webhook]:
    endpoint = await request.runtime.webhooks.get(principal=request.principal, endpoint_id=id)
    return Reply(shapes.webhook(endpoint), "Webhook endpoint")


@routes.patch(
    "/api/account/webhooks/{id}",
    errors=(404,),
    summary="Change a webhook endpoint's URL (panel session only) or events, pause or resume it",
)
async def update_webhook(request: Request, id: int, body: WebhookUpdateIn) -> Reply[Webhook]:
    endpoint = await request.runtime.webhooks.update(
        principal=request.principal,
        endpoint_id=id,
        client=request.client,
        url=body.url,
        events=body.events,
        enabled=body.enabled,
    )
    return Reply(shapes.webhook(endpoint), "Webhook endpoint changed")


@routes.delete(
    "/api/account/webhooks/{id}",
    errors=(404,),
    summary="Delete a webhook endpoint and its delivery log",
)
async def delete_webhook(request: Request, id: int) -> Reply[Webhook]:
    endpoint = await request.runtime.webhooks.delete(
        principal=request.principal, endpoint_id=id, client=request.client
    )
    return Reply(shapes.webhook(endpoint), "Webhook endpoint deleted")


@routes.post(
    "/api/account/webhooks/{id}/roll",
    errors=(404,),
    summary="Give a webhook endpoint a new signing secret, in this answer only "
    "(panel session only)",
    description=(
        "The previous secret keeps signing as well for the grace period (both "
        "signatures are in `webhook-signature`), so the receiver can switch without "
        "losing an event."
    ),
)
async def roll_webhook_secret(request: Request, id: int, body: WebhookRollIn) -> Reply[NewWebhook]:
    rolled = await request.runtime.webhooks.roll_secret(
        principal=request.principal,
        endpoint_id=id,
        client=request.client,
        grace=timedelta(minutes=body.grace_period_minutes),
    )
    return Reply(
        shapes.new_webhook(rolled),
        "New signing secret. Keep it now: it is not shown again.",
        headers=NO_STORE,
    )


@routes.get(
    "/api/account/webhooks/{id}/deliveries",
    errors=(404,),
    summary="A webhook endpoint's delivery log, newest first",
)
async def list_deliveries(
    request: Request, id: int, query: PageQuery
) -> Reply[list[WebhookDelivery]]:
    page = await request.runtime.webhooks.deliveries(
        principal=request.principal, endpoint_id=id, limit=query.limit, cursor=query.cursor
    )
    return page_reply(request.path, query, page, shapes.webhook_delivery, "Deliveries")


@routes.post(
    "/api/account/webhooks/{id}/deliveries/{delivery_id}/resend",
    status=201,
    errors=(404,),
    summary="Send a delivery's message again (the same webhook-id and body), as a new delivery",
)
async def resend_delivery(request: Request, id: int, delivery_id: int) -> Reply[WebhookDelivery]:
    delivery = await request.runtime.webhooks.resend(
        principal=request.principal, endpoint_id=id, delivery_id=delivery_id, client=request.client
    )
    return Reply(shapes.webhook_delivery(delivery), "Queued to be sent again")
