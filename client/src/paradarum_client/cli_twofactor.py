"""``paradarum two-factor ...``: the signed-in person's authenticator app (TOTP) and
recovery codes. Passkeys are added in the panel (a browser makes them); they can be
listed and removed here.

These need the session kept by ``paradarum login``. Changes need a sign-in at most
10 minutes old: after that, ``paradarum login`` again.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from paradarum_client import console
from paradarum_client.command import AsJson, ServerUrl, client_for, fail
from paradarum_client.errors import ValidationError
from paradarum_client.models import rfc3339, to_wire

Code = Annotated[
    str,
    typer.Option(
        "--code",
        prompt="Code from your authenticator app",
        metavar="CODE",
        help="The 6-digit code of your authenticator app (prompted for when not given).",
    ),
]


def _show_codes(codes: list[str]) -> None:
    out = console.stdout()
    out.print(
        "Recovery codes (each works once; keep them somewhere safe, they are not shown again):"
    )
    for code in codes:
        out.print(f"  {code}")


def two_factor_status(as_json: AsJson = False, url: ServerUrl = None) -> None:
    """Show whether the authenticator app is on, the passkeys and the recovery codes left."""
    with client_for(url) as client:
        status = client.two_factor.status()
    if as_json:
        typer.echo(json.dumps(to_wire(status)))
        return
    out = console.stdout()
    out.print(f"Authenticator app: {'on' if status.totp else 'off'}")
    out.print(f"Passkeys: {len(status.passkeys)}")
    for passkey in status.passkeys:
        used = rfc3339(passkey.last_used_at) if passkey.last_used_at else "never used"
        out.print(f"  {passkey.id:>6}  {console.safe(passkey.name)}  ({used})")
    out.print(f"Recovery codes left: {status.recovery_codes_left}")
    if status.required:
        out.print("This account requires a second factor of every member.")


def two_factor_enable(url: ServerUrl = None) -> None:
    """Turn on an authenticator app: add the secret to it, then type its first code."""
    with client_for(url) as client:
        enrolment = client.two_factor.start_totp()
        typer.echo("Add this to your authenticator app (most can open the link, or type the key):")
        typer.echo(f"  Key:  {enrolment.secret}")
        typer.echo(f"  Link: {enrolment.otpauth_uri}")
        code = typer.prompt("Code from your authenticator app")
        try:
            codes = client.two_factor.confirm_totp(code.strip())
        except ValidationError as exc:
            raise fail(
                f"{exc.message} The key stays set up: `paradarum two-factor confirm` with "
                "the app's next code turns it on."
            ) from None
    typer.echo("Two-factor sign-in is on.")
    _show_codes(codes)


def two_factor_confirm(code: Code, url: ServerUrl = None) -> None:
    """Turn on the authenticator app set up by `enable`, with its current code."""
    with client_for(url) as client:
        codes = client.two_factor.confirm_totp(code.strip())
    typer.echo("Two-factor sign-in is on.")
    _show_codes(codes)


def two_factor_disable(code: Code, url: ServerUrl = None) -> None:
    """Turn the authenticator app off (needs a current code)."""
    with client_for(url) as client:
        client.two_factor.disable_totp(code.strip())
    typer.echo("The authenticator app is off.")


def two_factor_recovery_codes(url: ServerUrl = None) -> None:
    """Make ten new recovery codes; the old ones stop working."""
    with client_for(url) as client:
        codes = client.two_factor.renew_recovery_codes()
    _show_codes(codes)


def two_factor_remove_passkey(
    passkey_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The passkey's ID.")],
    url: ServerUrl = None,
) -> None:
    """Remove a passkey."""
    with client_for(url) as client:
        client.two_factor.remove_passkey(passkey_id)
    typer.echo(f"Passkey {passkey_id} removed.")
