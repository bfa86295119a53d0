"""``paradarum webhooks ...``: where the account's events are sent, and what became of
each delivery.

A signing secret is printed once, by the command that made it (``create``,
``roll-secret``), between blank lines and with a note saying so; nothing else prints
it. Owners and admins manage endpoints. Adding one, changing its URL and rolling its
secret need the session kept by ``paradarum login`` (a key cannot send the account's
events elsewhere); the rest works with their API keys too.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from paradarum_client import console
from paradarum_client.cli_keys import grace_period, when
from paradarum_client.command import AsJson, ServerUrl, Yes, client_for, confirm
from paradarum_client.models import NewWebhook, WebhookDelivery, to_wire
from paradarum_client.protocol import WEBHOOK_EVENTS

WebhookId = Annotated[
    int,
    typer.Argument(metavar="ID", min=1, help="The endpoint's ID (`paradarum webhooks list`)."),
]
EVENTS_HELP = "Events: " + ", ".join(WEBHOOK_EVENTS) + "."


def show_secret(created: NewWebhook) -> None:
    """The secret, once, between blank lines so that it is easy to select."""
    typer.echo("")
    typer.echo(f"    {created.secret}")
    typer.echo("")
    typer.echo("This is the only time the signing secret is shown: put it in your receiver's")
    typer.echo("settings now. It checks each request's webhook-signature header with it.")


def webhooks_create(
    endpoint: Annotated[
        str,
        typer.Argument(
            metavar="URL", help="Where to send events: an https:// address of your server."
        ),
    ],
    events: Annotated[
        list[str],
        typer.Option(
            "--event",
            "-e",
            metavar="EVENT",
            help="An event to send (repeat for more). " + EVENTS_HELP,
            show_default=False,
        ),
    ],
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Add an endpoint and print its signing secret, once: store it right away."""
    with client_for(url) as client:
        created = client.webhooks.create(endpoint, events=events)
    if as_json:
        typer.echo(json.dumps(to_wire(created)))
        return
    typer.echo(f"Added webhook endpoint {created.id} ({created.url}).")
    typer.echo(f"Events: {', '.join(created.events)}.")
    show_secret(created)


def webhooks_list(as_json: AsJson = False, url: ServerUrl = None) -> None:
    """List the endpoints, newest first (never their secrets)."""
    with client_for(url) as client:
        webhooks = client.webhooks.list()
    if as_json:
        typer.echo(json.dumps([to_wire(webhook) for webhook in webhooks]))
        return
    console.stdout().print(console.webhooks_table(webhooks))
    for webhook in webhooks:
        if not webhook.enabled and webhook.disabled_reason:
            typer.echo(f"Endpoint {webhook.id}: {webhook.disabled_reason}")


def webhooks_update(
    webhook_id: WebhookId,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", metavar="URL", help="Send to this address instead."),
    ] = None,
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            metavar="EVENT",
            help="The events to send from now on, replacing the current ones (repeat for "
            "more). " + EVENTS_HELP,
            show_default=False,
        ),
    ] = None,
    enabled: Annotated[
        bool | None,
        typer.Option(
            "--enable/--disable",
            help="Start (again) or stop sending to the endpoint.",
            show_default=False,
        ),
    ] = None,
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Change an endpoint's address or events, or turn it on or off."""
    if endpoint is None and not events and enabled is None:
        raise typer.BadParameter(
            "say what to change: --endpoint, --event or --enable/--disable", param_hint="ID"
        )
    with client_for(url) as client:
        updated = client.webhooks.update(
            webhook_id, url=endpoint, events=events or None, enabled=enabled
        )
    if as_json:
        typer.echo(json.dumps(to_wire(updated)))
        return
    state = "enabled" if updated.enabled else "disabled"
    typer.echo(f"Webhook endpoint {updated.id} ({updated.url}) is {state}.")
    typer.echo(f"Events: {', '.join(updated.events)}.")


def webhooks_delete(webhook_id: WebhookId, yes: Yes = False, url: ServerUrl = None) -> None:
    """Delete an endpoint: it hears about nothing more, and its delivery log goes too."""
    with client_for(url) as client:
        if not yes:
            webhook = client.webhooks.get(webhook_id)
            confirm(f"Delete webhook endpoint {webhook.id} ({webhook.url}) and its delivery log?")
        deleted = client.webhooks.delete(webhook_id)
    typer.echo(f"Deleted webhook endpoint {deleted.id} ({deleted.url}).")


def webhooks_roll_secret(
    webhook_id: WebhookId,
    grace: Annotated[
        str | None,
        typer.Option(
            "--grace",
            metavar="SPAN",
            help="How long the previous secret keeps signing too, so that your receiver "
            "can switch without refusing an event: 30m, 1h, 2d, at most 7d; 0 stops it "
            "now. Default: 1 day.",
            show_default=False,
        ),
    ] = None,
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Give an endpoint a new signing secret, printed once."""
    period = None if grace is None else grace_period(grace)
    with client_for(url) as client:
        rolled = client.webhooks.roll_secret(webhook_id, grace=period)
    if as_json:
        typer.echo(json.dumps(to_wire(rolled)))
        return
    typer.echo(f"Rolled the signing secret of webhook endpoint {rolled.id} ({rolled.url}).")
    show_secret(rolled)
    if rolled.previous_secret_expires_at is None:
        typer.echo("The previous secret no longer signs requests.")
    else:
        typer.echo(
            "Requests are signed with the previous secret too until "
            f"{when(rolled.previous_secret_expires_at)}."
        )


def webhooks_deliveries(
    webhook_id: WebhookId,
    limit: Annotated[
        int, typer.Option(metavar="N", min=1, max=1000, help="Show at most N deliveries.")
    ] = 20,
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """The endpoint's delivery log, newest first: status, attempts, its answer."""
    with client_for(url) as client:
        deliveries: list[WebhookDelivery] = []
        for delivery in client.webhooks.iter_deliveries(webhook_id, page_size=min(limit, 200)):
            deliveries.append(delivery)
            if len(deliveries) >= limit:
                break
    if as_json:
        typer.echo(json.dumps([to_wire(delivery) for delivery in deliveries]))
        return
    if not deliveries:
        typer.echo(f"No deliveries to webhook endpoint {webhook_id} yet.")
        return
    console.stdout().print(console.deliveries_table(webhook_id, deliveries))


def webhooks_resend(
    webhook_id: WebhookId,
    delivery_id: Annotated[
        int,
        typer.Argument(
            metavar="DELIVERY",
            min=1,
            help="The delivery's ID (`paradarum webhooks deliveries ID`).",
        ),
    ],
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Send a delivery's message again (the same webhook-id and body), now."""
    with client_for(url) as client:
        resent = client.webhooks.resend(webhook_id, delivery_id)
    if as_json:
        typer.echo(json.dumps(to_wire(resent)))
        return
    typer.echo(
        f"Delivery {delivery_id} ({resent.event}) is sent again as delivery {resent.id}: "
        f"`paradarum webhooks deliveries {webhook_id}` shows how it goes."
    )
