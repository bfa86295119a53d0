from __future__ import annotations

from paradarum.web import shapes
from paradarum.web.request import Request
from paradarum.web.responses import Reply, next_page_link
from paradarum.web.routing import Routes
from paradarum.web.schemas import DeliveryListQuery, WebhookIn, WebhookPatchIn
from paradarum_client.models import NewWebhookSecret, WebhookDelivery, WebhookEndpoint

routes = Routes(tag="webhooks")


@routes.post(
    "/api/account/webhooks",
    body=WebhookIn,
    response=NewWebhookSecret,
    status=201,
    errors=(403,),
    summary="Add a webhook endpoint (session); its signing secret is shown this once",
)
async def create_webhook(request: Request) -> Reply:
    body: WebhookIn = request.body
    created = await request.runtime.webhooks.create(
        principal=request.principal, url=body.url, events=body.events, enabled=body.enabled
    )
    return Reply(
        shapes.webhook_secret(created),
        "Webhook endpoint added. Keep its signing secret now: it is not shown again.",
    )


@routes.get(
    "/api/account/webhooks",
    response=list[WebhookEndpoint],
    errors=(403,),
    summary="List webhook endpoints (session)",
)
async def list_webhooks(request: Request) -> Reply:
    found = await request.runtime.webhooks.list(principal=request.principal)
    return Reply([shapes.webhook(info) for info in found], "Webhook endpoints")


@routes.get(
    "/api/account/webhooks/{id}",
    response=WebhookEndpoint,
    errors=(403, 404),
    summary="One webhook endpoint (session)",
)
async def get_webhook(request: Request) -> Reply:
    info = await request.runtime.webhooks.get(
        principal=request.principal, endpoint_id=request.params["id"]
    )
    return Reply(shapes.webhook(info), "Webhook endpoint")


@routes.patch(
    "/api/account/webhooks/{id}",
    body=WebhookPatchIn,
    response=WebhookEndpoint,
    errors=(403, 404),
    summary="Change a webhook endpoint's URL, events or enabled (session)",
)
async def update_webhook(request: Request) -> Reply:
    body: WebhookPatchIn = request.body
    info = await request.runtime.webhooks.update(
        principal=request.principal,
        endpoint_id=request.params["id"],
        url=body.url,
        events=body.events,
        enabled=body.enabled,
    )
    return Reply(shapes.webhook(info), "Webhook endpoint updated")


@routes.delete(
    "/api/account/webhooks/{id}",
    response=WebhookEndpoint,
    errors=(403, 404),
    summary="Delete a webhook endpoint and its delivery log (session)",
)
async def delete_webhook(request: Request) -> Reply:
    info = await request.runtime.webhooks.delete(
        principal=request.principal, endpoint_id=request.params["id"]
    )
    return Reply(shapes.webhook(info), "Webhook endpoint deleted")


@routes.post(
    "/api/account/webhooks/{id}/secret",
    response=NewWebhookSecret,
    errors=(403, 404),
    summary="Roll the signing secret (session): a new one, shown this once, signs from now on",
)
async def roll_webhook_secret(request: Request) -> Reply:
    rolled = await request.runtime.webhooks.roll_secret(
        principal=request.principal, endpoint_id=request.params["id"]
    )
    return Reply(
        shapes.webhook_secret(rolled),
        "Signing secret rolled. Keep it now: it is not shown again.",
    )


@routes.get(
    "/api/account/webhooks/{id}/deliveries",
    query=DeliveryListQuery,
    response=list[WebhookDelivery],
    paged=True,
    errors=(403, 404),
    summary="The endpoint's delivery log, newest first (session)",
)
async def list_deliveries(request: Request) -> Reply:
    query: DeliveryListQuery = request.query
    page = await request.runtime.webhooks.deliveries(
        principal=request.principal,
        endpoint_id=request.params["id"],
        limit=query.limit,
        cursor=query.cursor,
    )
    return Reply(
        [shapes.webhook_delivery(item) for item in page.items],
        "Deliveries",
        headers=next_page_link(request.path, query.model_dump(), page.next_cursor),
    )


@routes.post(
    "/api/account/webhooks/{id}/deliveries/{delivery}/resend",
    response=WebhookDelivery,
    status=202,
    errors=(403, 404),
    summary="Send a delivery again: the same event and webhook-id, a fresh day of retries",
)
async def resend_delivery(request: Request) -> Reply:
    info = await request.runtime.webhooks.resend(
        principal=request.principal,
        endpoint_id=request.params["id"],
        delivery_id=request.params["delivery"],
    )
    return Reply(shapes.webhook_delivery(info), "The delivery is queued again")
