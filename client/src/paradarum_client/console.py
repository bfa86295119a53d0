"""What the command line prints with Rich: tables of keys, purges and cache nodes.

Rich reads ``[...]`` in a string as markup, and key names, targets and a cache
node's reason are the customer's (or anyone's) text: a key named ``[/bold]``
would crash a table and ``[link=...]`` would plant a link in the terminal. So
every such string goes through :func:`safe` before it reaches Rich, and nothing
outside this module hands customer text to Rich.

Times are UTC to the minute (``2026-11-27 09:14``): short enough that a key table
fits an 80-column terminal without cutting them; ``--json`` has the exact times.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paradarum_client.models import ApiKey, Purge

NEVER = "—"
# "+3 more" after the first target in a list of purges.
FIRST_TARGET_WIDTH = 60


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
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")


def keys_table(keys: Iterable[ApiKey]) -> Table:
    table = _table("API keys")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold", ratio=1)
    table.add_column("Prefix", no_wrap=True)
    table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("Last used (UTC)", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    for key in keys:
        table.add_row(
            str(key.id),
            safe(key.name),
            safe(key.key_prefix),
            moment(key.created_at),
            moment(key.last_used_at),
            "revoked" if key.is_revoked else "active",
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
    for node in purge.nodes or []:
        table.add_row(safe(node.node), node.status, str(node.attempts), safe(node.last_error or ""))
    return table


def targets_list(purge: Purge) -> str:
    """Every target of a purge, one per line, for ``purges show``."""
    return "\n".join(f"  {safe(target)}" for target in purge.targets)
