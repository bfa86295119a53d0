"""``paradarum audit export``: the account's security log as NDJSON, for a SIEM.

One JSON object per line, oldest first, each printed as it arrives from the server
(nothing is held back, however long the log), in the API's own shape with exact
times — the same lines ``GET /api/account/audit-log/export`` sends, so that the
output can be piped into any tool that reads NDJSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from paradarum_client import durations
from paradarum_client.cli_keys import parsed
from paradarum_client.command import ServerUrl, client_for
from paradarum_client.models import to_wire


def audit_export(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Where to start: 7d, 12h (that long ago), a date (2027-01-31: its start, "
            "UTC) or an RFC 3339 time. Default: the whole log.",
            show_default=False,
        ),
    ] = None,
    url: ServerUrl = None,
) -> None:
    """Print the security log as NDJSON (one JSON object per line), oldest first."""
    start = None
    if since is not None:
        start = parsed(
            since,
            parse=lambda text: durations.since(text, now=datetime.now(UTC)),
            option="--since",
        )
    with client_for(url) as client:
        for event in client.audit.export(since=start):
            typer.echo(json.dumps(to_wire(event), ensure_ascii=False))
