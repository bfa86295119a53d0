"""``paradarum members ...`` and ``paradarum accounts ...``: who works on the account,
as what, and which of one's accounts the kept session acts on.

These need the session kept by ``paradarum login`` (an API key belongs to one
account and cannot manage people). ``accounts switch`` replaces the kept session
with one for the chosen account.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from paradarum_client import console, session
from paradarum_client.command import AsJson, ServerUrl, Yes, client_for, fail
from paradarum_client.models import rfc3339, to_wire

MemberId = Annotated[int, typer.Argument(metavar="ID", min=1, help="The member's ID.")]


class RoleName(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    PURGER = "purger"
    VIEWER = "viewer"


class KeysChoice(StrEnum):
    KEEP = "keep"
    REVOKE = "revoke"


RoleArgument = Annotated[
    RoleName,
    typer.Argument(
        metavar="ROLE",
        help="owner, admin, developer, purger (purge, purge-only keys) or viewer (read only).",
        case_sensitive=False,
    ),
]


def members_list(as_json: AsJson = False, url: ServerUrl = None) -> None:
    """List the account's members (ID, role, email) and pending invitations."""
    with client_for(url) as client:
        members = client.members.list()
        me = client.account()
        pending = client.members.invitations() if me.role in ("owner", "admin") else []
    if as_json:
        typer.echo(json.dumps([to_wire(member) for member in members]))
        return
    out = console.stdout()
    for member in members:
        you = "  (you)" if member.email == me.email else ""
        out.print(f"{member.id:>6}  {member.role:<9}  {console.safe(member.email)}{you}")
    for invitation in pending:
        out.print(
            f"{'':>6}  {invitation.role:<9}  {console.safe(invitation.email)}  "
            f"(invited, until {rfc3339(invitation.expires_at)}; invitation {invitation.id})"
        )


def members_invite(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="Who to invite.")],
    role: RoleArgument,
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Email an invitation to join this account as ROLE (valid 7 days, once)."""
    with client_for(url) as client:
        invitation = client.members.invite(email, str(role))
    if as_json:
        typer.echo(json.dumps(to_wire(invitation)))
        return
    typer.echo(
        f"Invited {invitation.email} as {invitation.role} (invitation {invitation.id}), "
        f"valid until {rfc3339(invitation.expires_at)}."
    )


def members_role(member_id: MemberId, role: RoleArgument, url: ServerUrl = None) -> None:
    """Change a member's role; their keys the new role could not create are revoked."""
    with client_for(url) as client:
        member = client.members.set_role(member_id, str(role))
    typer.echo(f"{member.email} is now {member.role}.")


def members_remove(
    member_id: MemberId,
    keys: Annotated[
        KeysChoice,
        typer.Option(
            "--keys",
            help="revoke: their active keys stop working; keep: they keep working, "
            "and you vouch for them.",
            case_sensitive=False,
        ),
    ],
    yes: Yes = False,
    url: ServerUrl = None,
) -> None:
    """Remove a member from the account (your own ID: leave it)."""
    with client_for(url) as client:
        me = client.account().email
        if not yes:
            member = next((m for m in client.members.list() if m.id == member_id), None)
            if member is None:
                raise fail(f"No member with ID {member_id} in this account.")
            question = (
                f"Leave this account and {keys} your keys in it?"
                if member.email == me
                else f"Remove {member.email} ({member.role}) and {keys} their keys?"
            )
            typer.confirm(question, abort=True)
        removed = client.members.remove(member_id, keys=keys.value)
    if removed.email == me:
        typer.echo(f"You left the account; your keys there: {keys}.")
        typer.echo("Run `paradarum login` again to act on another of your accounts.")
        return
    typer.echo(f"Removed {removed.email}; their keys: {keys}.")


def accounts_list(as_json: AsJson = False, url: ServerUrl = None) -> None:
    """The accounts you belong to, your role in each; * marks the one in use."""
    with client_for(url) as client:
        accounts = client.accounts.list()
        current = client.account().id
    if as_json:
        typer.echo(json.dumps([to_wire(account) for account in accounts]))
        return
    out = console.stdout()
    for account in accounts:
        mark = "*" if account.id == current else " "
        out.print(f"{mark} {account.id:>6}  {account.role:<9}  {console.safe(account.name)}")


def accounts_switch(
    account_id: Annotated[
        int, typer.Argument(metavar="ID", min=1, help="From `paradarum accounts list`.")
    ],
    url: ServerUrl = None,
) -> None:
    """Act on another of your accounts: the kept session is replaced by one for it."""
    kept = session.load()
    with client_for(url) as client:
        switched = client.accounts.switch(account_id)
        base_url = client.base_url
    if not kept.get("token"):
        raise fail("Switching needs the session kept by `paradarum login`, not an API key.")
    session.save(
        {"url": base_url, "token": switched.token, "expiresAt": rfc3339(switched.expires_at) or ""}
    )
    with client_for(url) as client:
        account = client.account()
    typer.echo(f"Now acting on account {account.id} ({account.name}) as {account.role}.")
