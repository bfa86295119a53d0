"""What the command line prints with Rich: tables of keys, zones, purges and cache nodes.

Rich reads ``[...]`` in a string as markup, and key names, targets and a cache
node's reason are the customer's (or anyone's) text: a key named ``[/bold]``
would crash a table and ``[link=...]`` would plant a link in the terminal. So
every such string goes through :func:`safe` before it reaches Rich, and nothing
outside this module hands customer text to Rich.

Times are UTC to the minute (``2026-11-27 09:14``), never cut: a table that would
not fit 80 columns leaves a column out rather than shorten one (the key table shows
"Created" from 100 columns on); ``--json`` has the exact times and every field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paradarum_client.models import ApiKey, Purge, Webhook, WebhookDelivery, Zone

NEVER = "—"
# "+3 more" after the first target in a list of purges.
FIRST_TARGET_WIDTH = 60
# From this width on the key table has room for the "Created" column too.
WIDE = 100


def safe(text: str) -> str:
    """``text`` as literal characters for Rich: no markup is interpreted."""
    return escape(text)


def moment(value: datetime | None) -> str:
    if value is None:
        return NEVER
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _table(title: str) -> Table:
    # Two spaces between columns and none at the edges: at 80 columns every one left
    # over goes to the column that folds (a name, a hostname, a target).
    return Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        collapse_padding=True,
        pad_edge=False,
    )


def until(moment: datetime, now: datetime) -> str:
    """``in 6 days``, ``in 3 hours``, ``in 12 minutes`` (rounded), or ``expired``."""
    left = moment - now
    if left <= timedelta(0):
        return "expired"
    count, unit = max(1, round(left / timedelta(minutes=1))), "minute"
    if count >= 60:
        count, unit = round(left / timedelta(hours=1)), "hour"
    if count >= 24 and unit == "hour":
        count, unit = round(left / timedelta(days=1)), "day"
    return f"in {count} {unit}{'s' if count != 1 else ''}"


def _first_and_more(items: list[str]) -> str:
    """``a +2 more``: the first item, and how many others."""
    return items[0] + (f" +{len(items) - 1} more" if len(items) > 1 else "")


def key_details(
    key: ApiKey, *, zones: Mapping[int, str], replaced_by: int | None, brief: bool = True
) -> str:
    """The key's restrictions at a glance (purge only, networks, zones), and why it
    ended when that is news: ``purge only · from 203.0.113.0/24 · zone www.example.com``.
    ``brief``: the first network and zone, and how many more. ``zones`` names zone IDs
    (an ID it lacks is shown as the ID). Text, not markup: escape it for Rich."""
    listed = _first_and_more if brief else ", ".join
    parts = []
    if key.permissions == "purge":
        parts.append("purge only")
    if key.allowed_cidrs:
        parts.append("from " + listed(key.allowed_cidrs))
    if key.zone_ids:
        names = [zones.get(zone_id, str(zone_id)) for zone_id in key.zone_ids]
        parts.append(("zone " if len(names) == 1 else "zones ") + listed(names))
    if replaced_by is not None:
        parts.append(f"replaced by {replaced_by}")
    if key.revoked_reason == "leaked":
        parts.append("revoked as leaked")
    if key.revoked_reason == "member":
        parts.append("revoked with its member")
    return " · ".join(parts)


def keys_table(
    keys: Iterable[ApiKey],
    *,
    now: datetime,
    zones: Mapping[int, str] | None = None,
    width: int = 80,
) -> Table:
    """One row per key; under its name, its restrictions. ``zones`` names zone IDs."""
    keys = list(keys)
    replaced_by = {key.replaces: key.id for key in keys if key.replaces is not None}
    wide = width >= WIDE
    table = _table("API keys")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold", ratio=1)
    table.add_column("Prefix", no_wrap=True)
    if wide:
        table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("Last used (UTC)", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Expires", no_wrap=True)
    for key in keys:
        name = safe(key.name)
        details = key_details(key, zones=zones or {}, replaced_by=replaced_by.get(key.id))
        if details:
            name += f"\n[dim]{safe(details)}[/dim]"
        if key.status == "active":
            expires = until(key.expires_at, now) if key.expires_at else "never"
        else:
            expires = "expired" if key.status == "expired" else NEVER
        times = [moment(key.created_at)] if wide else []
        table.add_row(
            str(key.id),
            name,
            safe(key.key_prefix),
            *times,
            moment(key.last_used_at),
            key.status,
            expires,
        )
    return table


def zones_table(zones: Iterable[Zone]) -> Table:
    table = _table("Zones")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Hostname", overflow="fold", ratio=1)
    table.add_column("Status", no_wrap=True)
    table.add_column("Added (UTC)", no_wrap=True)
    table.add_column("Verified (UTC)", no_wrap=True)
    for zone in zones:
        table.add_row(
            str(zone.id),
            safe(zone.hostname),
            zone.status,
            moment(zone.created_at),
            moment(zone.verified_at),
        )
    return table


def _targets(purge: Purge) -> str:
    if not purge.targets:
        return purge.kind
    first = purge.targets[0]
    if len(first) > FIRST_TARGET_WIDTH:
        first = first[: FIRST_TARGET_WIDTH - 1] + "…"
    more = len(purge.targets) - 1
    return safe(first) + (f" (+{more} more)" if more else "")


def purges_table(purges: Iterable[Purge]) -> Table:
    """Newest first, one line each where the width allows; ``purges show`` has the rest."""
    table = _table("Purges")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("Targets", overflow="fold", ratio=1)
    for purge in purges:
        table.add_row(
            str(purge.id), moment(purge.created_at), purge.status, purge.kind, _targets(purge)
        )
    return table


def nodes_table(purge: Purge) -> Table:
    table = _table(f"Purge {purge.id}: {purge.status}")
    table.add_column("Cache node", overflow="fold")
    table.add_column("Result", no_wrap=True)
    table.add_column("Attempts", justify="right", no_wrap=True)
    table.add_column("Reason", overflow="fold", ratio=1)
    for node in purge.nodes:
        table.add_row(safe(node.node), node.status, str(node.attempts), safe(node.last_error or ""))
    return table


def targets_list(purge: Purge) -> str:
    """Every target of a purge, one per line, for ``purges show``."""
    return "\n".join(f"  {safe(target)}" for target in purge.targets)


def webhooks_table(webhooks: Iterable[Webhook]) -> Table:
    """One row per endpoint: where it sends, what, and whether it is on."""
    table = _table("Webhook endpoints")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("URL", overflow="fold", ratio=2)
    table.add_column("Events", overflow="fold", ratio=1)
    table.add_column("Status", no_wrap=True)
    for webhook in webhooks:
        table.add_row(
            str(webhook.id),
            safe(webhook.url),
            safe(", ".join(webhook.events)),
            "enabled" if webhook.enabled else "disabled",
        )
    return table


def deliveries_table(webhook_id: int, deliveries: Iterable[WebhookDelivery]) -> Table:
    """Newest first: what was sent, how it went, and the endpoint's answer."""
    table = _table(f"Deliveries to webhook endpoint {webhook_id}")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("Event", overflow="fold")
    table.add_column("Status", no_wrap=True)
    table.add_column("Tries", justify="right", no_wrap=True)
    table.add_column("Answer", overflow="fold", ratio=1)
    for delivery in deliveries:
        answer = str(delivery.response_status) if delivery.response_status else ""
        if delivery.last_error:
            answer = f"{answer} {delivery.last_error}".strip()
        table.add_row(
            str(delivery.id),
            moment(delivery.created_at),
            safe(delivery.event),
            delivery.status,
            str(delivery.attempts),
            safe(answer or NEVER),
        )
    return table
