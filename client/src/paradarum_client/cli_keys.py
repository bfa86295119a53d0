"""``paradarum keys ...``: create (with its optional settings), list, roll, usage, revoke.

A raw key is printed once, by the command that made it (``create``, ``roll``), and
by nothing else. Everything else names a key by ID, name and prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, TypeVar

import typer

from paradarum_client import chart, console, durations
from paradarum_client.command import AsJson, ServerUrl, Yes, client_for, confirm, fail
from paradarum_client.errors import ParadarumError
from paradarum_client.models import ApiKey, NewKey, to_wire
from paradarum_client.protocol import MAX_GRACE, describe

T = TypeVar("T")

KeyId = Annotated[int, typer.Argument(metavar="ID", min=1, help="The key's ID.")]


class KeyStatus(StrEnum):
    all = "all"
    active = "active"
    expired = "expired"
    revoked = "revoked"


def parsed(text: str, *, parse: Callable[[str], T], option: str) -> T:
    """``parse(text)``, or a usage error (status 2) that names the option."""
    try:
        return parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def grace_period(text: str) -> timedelta:
    """``--grace`` as a span of at most 7 days (a key's roll and a webhook's secret
    roll take the same), or a usage error that names the option."""
    period = parsed(text, parse=durations.span, option="--grace")
    if period > MAX_GRACE:
        raise typer.BadParameter(
            f"{text!r} is {describe(period)}: the grace period is at most 7 days (7d)",
            param_hint="--grace",
        )
    return period


def when(moment: datetime) -> str:
    """``2027-01-31 00:00 UTC (in 61 days)``."""
    return f"{console.moment(moment)} UTC ({console.until(moment, datetime.now(UTC))})"


def show_new_key(created: NewKey) -> None:
    """The key, once, between blank lines so that it is easy to select."""
    typer.echo("")
    typer.echo(f"    {created.key}")
    typer.echo("")
    typer.echo("This is the only time the key is shown. Store it somewhere safe now.")


def keys_create(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="What the key is for, e.g. 'WordPress'.")
    ],
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="WHEN",
            help="When the key stops working: 90d, 30d, 12h (from now), a date "
            "(2027-01-31: the key works through that day, UTC) or an RFC 3339 time; at most "
            "366 days ahead. "
            "Default: never.",
            show_default=False,
        ),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            metavar="CIDR",
            help="Only from this address or network, e.g. 203.0.113.0/24 (repeat for more).",
            show_default=False,
        ),
    ] = None,
    purge_only: Annotated[
        bool,
        typer.Option("--purge-only", help="Purges only: no key management, no zones."),
    ] = False,
    zone: Annotated[
        list[int] | None,
        typer.Option(
            "--zone",
            metavar="ID",
            min=1,
            help="Purge only this zone (repeat for more; `paradarum zones list` has the IDs).",
            show_default=False,
        ),
    ] = None,
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Create an API key and print it, once: store it right away."""
    expires_at = parsed(expires, parse=durations.expiry, option="--expires") if expires else None
    with client_for(url) as client:
        created = client.keys.create(
            name,
            expires_at=expires_at,
            allowed_cidrs=allow or None,
            purge_only=purge_only,
            zone_ids=zone or None,
        )
    if as_json:
        typer.echo(json.dumps(to_wire(created)))
        return
    typer.echo(f"Created API key {created.id} ({created.name}).")
    if created.expires_at is not None:
        typer.echo(f"It expires {when(created.expires_at)}.")
    restrictions = console.key_details(created, zones={}, replaced_by=None, brief=False)
    if restrictions:
        typer.echo(f"Restrictions: {restrictions}.")
    show_new_key(created)


def keys_list(
    status: Annotated[
        KeyStatus,
        typer.Option(help="Which keys: all, active, expired or revoked.", metavar="STATUS"),
    ] = KeyStatus.all,
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """List API keys, newest first, with their expiry and restrictions (never the keys)."""
    with client_for(url) as client:
        keys = client.keys.list(status=status.value)
        zones: dict[int, str] = {}
        if not as_json and any(key.zone_ids for key in keys):
            zones = {zone.id: zone.hostname for zone in client.zones.list()}
    if as_json:
        typer.echo(json.dumps([to_wire(key) for key in keys]))
        return
    out = console.stdout()
    out.print(console.keys_table(keys, now=datetime.now(UTC), zones=zones, width=out.width))


def keys_roll(
    key_id: KeyId,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            metavar="SPAN",
            help="How long the old key keeps working, so that the new one can be deployed "
            "first: 30m, 1h, 2d, at most 7d; 0 revokes it now.",
        ),
    ] = "0",
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Replace a key with a new one (same name and settings), printed once."""
    period = grace_period(grace)
    with client_for(url) as client:
        created = client.keys.roll(key_id, grace=period)
        if as_json:
            typer.echo(json.dumps(to_wire(created)))
            return
        typer.echo(f"Rolled API key {key_id} ({created.name}): the new key is {created.id}.")
        show_new_key(created)
        if not period:
            typer.echo(f"The old key {key_id} is revoked: it no longer works.")
            return
        old = _find(client.keys.list, key_id)
    ends = old.expires_at if old and old.expires_at else created.created_at + period
    typer.echo(f"The old key {key_id} keeps working until {when(ends)}.")


def _find(listing: Callable[[], list[ApiKey]], key_id: int) -> ApiKey | None:
    """The key ``key_id`` as listed now, or None when the list cannot be had: the new
    key is printed by then, and must not be followed by an error that hides it."""
    try:
        return next((key for key in listing() if key.id == key_id), None)
    except ParadarumError:
        return None


def keys_usage(key_id: KeyId, as_json: AsJson = False, url: ServerUrl = None) -> None:
    """A chart of the key's requests per day over the last 30 days, with totals."""
    with client_for(url) as client:
        usage = client.keys.usage(key_id)
    if as_json:
        typer.echo(json.dumps(to_wire(usage)))
        return
    for line in chart.usage_chart(usage, width=min(console.stdout().width, 80)):
        typer.echo(line)


def keys_revoke(key_id: KeyId, yes: Yes = False, url: ServerUrl = None) -> None:
    """Revoke an API key. Permanent: anything using it stops working at once."""
    with client_for(url) as client:
        if not yes:
            key = next((key for key in client.keys.list() if key.id == key_id), None)
            if key is None:
                raise fail(f"No API key with ID {key_id} in this account.")
            described = f'{key.id} "{key.name}" ({key.key_prefix}…)'
            if key.is_revoked:
                raise fail(f"API key {described} is already revoked.")
            confirm(f"Revoke API key {described} for good? Anything using it stops working.")
        revoked = client.keys.revoke(key_id)
    typer.echo(f"Revoked API key {revoked.id} ({revoked.name}, {revoked.key_prefix}).")
