"""``paradarum zones ...``: the hostnames an account may purge, and proving them in DNS.

``zones add`` prints the TXT record to create as plain lines, never wrapped or
styled, so that its name and value can be pasted into a DNS provider's form as they
are. When verification fails, the server's sentence says what DNS returned and what
to create; it is printed as it is.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from paradarum_client import console
from paradarum_client.command import AsJson, ServerUrl, Yes, client_for, confirm, fail
from paradarum_client.models import Zone, to_wire

ZoneId = Annotated[int, typer.Argument(metavar="ID", min=1, help="The zone's ID.")]


def show_record(zone: Zone) -> None:
    """The TXT record that proves ``zone``, ready to paste, and how to verify it."""
    record = zone.verification
    typer.echo(f"Create this DNS TXT record, then run `paradarum zones verify {zone.id}`:")
    typer.echo("")
    typer.echo(f"  Name:  {record.name}")
    typer.echo(f"  Value: {record.value}")
    typer.echo("")
    typer.echo("In a zone file:")
    typer.echo(f'  {record.name}. 300 IN TXT "{record.value}"')


def zones_add(
    hostname: Annotated[
        str,
        typer.Argument(
            metavar="HOSTNAME",
            help="As in the address bar (www.example.com), or *.example.com for every "
            "subdomain; no scheme, port or path.",
        ),
    ],
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Add a zone and print the DNS TXT record that proves it is yours."""
    with client_for(url) as client:
        zone = client.zones.add(hostname)
    if as_json:
        typer.echo(json.dumps(to_wire(zone)))
        return
    typer.echo(f"Added zone {zone.id} ({zone.hostname}): {zone.status}.")
    typer.echo("")
    show_record(zone)


def zones_list(as_json: AsJson = False, url: ServerUrl = None) -> None:
    """List zones, newest first: only active ones can be purged."""
    with client_for(url) as client:
        zones = client.zones.list()
    if as_json:
        typer.echo(json.dumps([to_wire(zone) for zone in zones]))
        return
    console.stdout().print(console.zones_table(zones))
    if any(zone.status == "pending" for zone in zones):
        typer.echo("A pending zone waits for its TXT record: `paradarum zones verify ID`")
        typer.echo("checks it, and says which record to create if it is not there yet.")


def zones_verify(zone_id: ZoneId, as_json: AsJson = False, url: ServerUrl = None) -> None:
    """Look up the zone's TXT record in DNS: found, the zone is active and can be purged."""
    with client_for(url) as client:
        zone = client.zones.verify(zone_id)
    if as_json:
        typer.echo(json.dumps(to_wire(zone)))
        return
    typer.echo(f"Zone {zone.id} ({zone.hostname}) is active: its cache can be purged.")


def zones_delete(zone_id: ZoneId, yes: Yes = False, url: ServerUrl = None) -> None:
    """Delete a zone: purges for its hostname are refused from then on."""
    with client_for(url) as client:
        if not yes:
            zone = next((zone for zone in client.zones.list() if zone.id == zone_id), None)
            if zone is None:
                raise fail(f"No zone with ID {zone_id} in this account.")
            confirm(f"Delete zone {zone.id} ({zone.hostname})? Purges for it will be refused.")
        deleted = client.zones.delete(zone_id)
    typer.echo(f"Deleted zone {deleted.id} ({deleted.hostname}).")
