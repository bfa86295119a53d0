"""The customer's ``paradarum`` command: sign in, keys, zones, purge, scan for leaked keys.

These commands talk to a running Paradarum over HTTP through :class:`Client`, like any
script would. The server: ``--url``, else ``PARADARUM_URL``, else the one
``paradarum login`` used. The credential: ``PARADARUM_API_KEY``, else the session
kept by ``paradarum login``.

The app is built by :func:`build_app`, never at import, so that the server's
``paradarum`` (``paradarum.cli``) can build the same app and add its operator
commands to it. To put an operator variant where a customer command is (such as
``zones add EMAIL HOSTNAME --verified`` next to the customer's ``zones add HOSTNAME``),
the server takes the group with :func:`group` and swaps the command with
:func:`replace_command`; its variant calls the customer's function (a plain
module-level function here) for the customer's case.

The commands live in small modules: ``command.py`` (what they share: connecting,
common options, one-line errors), ``cli_keys.py``, ``cli_zones.py``, and here the
rest (sign-in, purge, scan) and the app that assembles them. Every failure ends
with one line on standard error and status 1 (2 for a URL or key that cannot work,
and for wrong arguments) — never with a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from paradarum_client import __version__, console, scan, session
from paradarum_client.cli_audit import audit_export
from paradarum_client.cli_keys import (
    KeyStatus,
    keys_create,
    keys_list,
    keys_revoke,
    keys_roll,
    keys_usage,
)
from paradarum_client.cli_members import (
    accounts_list,
    accounts_switch,
    members_invite,
    members_list,
    members_remove,
    members_role,
)
from paradarum_client.cli_twofactor import (
    two_factor_confirm,
    two_factor_disable,
    two_factor_enable,
    two_factor_recovery_codes,
    two_factor_remove_passkey,
    two_factor_status,
)
from paradarum_client.cli_webhooks import (
    webhooks_create,
    webhooks_delete,
    webhooks_deliveries,
    webhooks_list,
    webhooks_resend,
    webhooks_roll_secret,
    webhooks_update,
)
from paradarum_client.cli_zones import zones_add, zones_delete, zones_list, zones_verify
from paradarum_client.client import Client
from paradarum_client.command import (
    CONNECTION_HELP,
    AsJson,
    ServerUrl,
    client_for,
    error_message,
    fail,
    new_group,
    oidc_client,
    reported,
)
from paradarum_client.errors import AuthenticationError, ParadarumError, TwoFactorRequired
from paradarum_client.models import Purge, rfc3339, to_wire
from paradarum_client.protocol import DEFAULT_BASE_URL

# What the server's ``paradarum`` (``paradarum.cli``) builds on, and its operator
# variants call, besides build_app, group and replace_command.
__all__ = [
    "CONNECTION_HELP",
    "AsJson",
    "KeyStatus",
    "ServerUrl",
    "build_app",
    "group",
    "keys_create",
    "keys_list",
    "keys_revoke",
    "keys_roll",
    "keys_usage",
    "main",
    "new_group",
    "replace_command",
    "zones_add",
    "zones_delete",
    "zones_list",
    "zones_verify",
]

HELP = (
    "Paradarum from the command line: API keys, zones, cache purge, webhooks, "
    "leaked-key scans.\n\n" + CONNECTION_HELP
)


# -- the commands -----------------------------------------------------------------------


def login(
    email: Annotated[
        str, typer.Option(prompt=True, metavar="EMAIL", help="Prompted for when not given.")
    ],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            envvar="PARADARUM_PASSWORD",
            metavar="PASSWORD",
            show_default=False,
            help="Prompted for when not given.",
        ),
    ],
    url: ServerUrl = None,
    code: Annotated[
        str | None,
        typer.Option(
            "--code",
            metavar="CODE",
            help="Where two-factor sign-in is on: the authenticator app's code, or a "
            "recovery code (prompted for when needed and not given).",
        ),
    ] = None,
) -> None:
    """Sign in and keep the session token in your config directory (mode 0600)."""
    with Client(base_url=url or DEFAULT_BASE_URL, token="") as client:
        try:
            kept = client.login(email, password)
        except TwoFactorRequired as second:
            if code is None:
                code = typer.prompt("Code from your authenticator app (or a recovery code)")
            answer = code.strip()
            # A recovery code has letters (xxxxx-xxxxx); an app's code is 6 digits.
            recovery = not answer.replace(" ", "").isdigit()
            kept = client.login_two_factor(
                second.challenge.challenge,
                code=None if recovery else answer,
                recovery_code=answer if recovery else None,
            )
        base_url = client.base_url
    path = session.save(
        {"url": base_url, "token": kept.token, "expiresAt": rfc3339(kept.expires_at) or ""}
    )
    typer.echo(f"Signed in to {base_url} as {email.strip().lower()}.")
    typer.echo(f"Session kept in {path} until {rfc3339(kept.expires_at)}.")


def logout() -> None:
    """End the kept session, on the server and in your config directory."""
    kept = session.load()
    if not kept.get("token"):
        typer.echo("Not signed in.")
        return
    try:
        with Client(token=kept["token"], base_url=kept.get("url")) as client:
            client.logout()
    except AuthenticationError:
        pass  # expired or already ended: nothing left to end on the server
    except ParadarumError as exc:
        raise fail(f"{error_message(exc)} The session is still kept in {session.path()}.") from exc
    session.forget()
    typer.echo("Signed out.")


def purge(
    urls: Annotated[
        list[str] | None,
        typer.Argument(metavar="URL", help="Absolute URLs to purge.", show_default=False),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            "-t",
            metavar="TAG",
            help="A cache tag to purge (repeat for more).",
            show_default=False,
        ),
    ] = None,
    everything: Annotated[bool, typer.Option("--everything", help="Purge everything.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until every cache node has answered.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="How long --wait waits at most.", min=1)
    ] = 120,
    oidc: Annotated[
        bool,
        typer.Option(
            "--oidc",
            help="In GitHub Actions: trade the job's ID token for a short-lived key "
            "(needs `permissions: id-token: write` and a trust policy; no key stored).",
        ),
    ] = False,
    oidc_token_env: Annotated[
        str | None,
        typer.Option(
            "--oidc-token-env",
            metavar="VARIABLE",
            help="Trade the ID token in this environment variable instead "
            "(GitLab's `id_tokens:`, any other CI). Implies --oidc.",
            show_default=False,
        ),
    ] = None,
    oidc_audience: Annotated[
        str | None,
        typer.Option(
            "--oidc-audience",
            metavar="AUDIENCE",
            help="The audience to ask GitHub for (default: the server's URL).",
            show_default=False,
        ),
    ] = None,
    oidc_policy: Annotated[
        int | None,
        typer.Option(
            "--oidc-policy",
            metavar="ID",
            min=1,
            help="The trust policy to use (only needed when several accounts trust "
            "this repository).",
            show_default=False,
        ),
    ] = None,
    url: ServerUrl = None,
) -> None:
    """Purge URLs, tags (--tag) or everything (--everything) from every cache node."""
    if sum([bool(urls), bool(tag), everything]) != 1:
        raise fail("Give URLs, or --tag TAG (repeatable), or --everything: exactly one of them.", 2)
    if oidc or oidc_token_env or oidc_policy:
        chosen = oidc_client(
            url, token_variable=oidc_token_env, audience=oidc_audience, policy_id=oidc_policy
        )
    else:
        chosen = client_for(url)
    with chosen as client:
        if urls:
            queued = client.purge.urls(urls)
        elif tag:
            queued = client.purge.tags(tag)
        else:
            queued = client.purge.everything()
        count = len(queued.targets)
        noun = {"urls": "URL", "tags": "tag"}.get(queued.kind, "")
        what = f"{count} {noun}{'s' if count != 1 else ''}" if noun else queued.kind
        typer.echo(f"Purge {queued.id} accepted ({what}): {queued.status}.")
        if wait:
            final = _wait_with_progress(client, queued.id, timeout)
        elif queued.finished:
            # Finished at once: only a server without cache nodes does that. Say so.
            final = client.purges.get(queued.id)
        else:
            typer.echo(f"Follow it with `paradarum purges show {queued.id}`.")
            return
    _show_result(final, table=wait)
    if final.status != "done":
        raise typer.Exit(1)


def _wait_with_progress(client: Client, purge_id: int, timeout: float) -> Purge:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("Purging"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cache nodes answered"),
        console=console.stderr(),
        transient=False,
    ) as progress:
        task = progress.add_task("purge", total=None)

        def show(current: Purge) -> None:
            nodes = current.nodes
            if nodes:
                answered = sum(1 for node in nodes if node.finished)
                progress.update(task, total=len(nodes), completed=answered)
            elif current.finished:  # no node at all: said after the wait, not as a bar
                progress.update(task, visible=False)

        try:
            return client.purges.wait(purge_id, timeout=timeout, on_update=show)
        except TimeoutError:
            progress.stop()
            raise fail(
                f"Purge {purge_id} has not finished after {timeout:g} s. "
                f"Check later with `paradarum purges show {purge_id}`."
            ) from None


def _show_result(final: Purge, *, table: bool = True) -> None:
    if final.nodes == []:
        console.stderr().print(
            "Warning: no cache node is configured on the server, so nothing was purged."
        )
        return
    if table:
        console.stdout().print(console.nodes_table(final))


def purges_list(
    limit: Annotated[
        int, typer.Option(metavar="N", min=1, max=1000, help="Show at most N purges.")
    ] = 20,
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """List recent purges, newest first."""
    with client_for(url) as client:
        purges: list[Purge] = []
        for item in client.purges.iter(page_size=min(limit, 200)):
            purges.append(item)
            if len(purges) >= limit:
                break
    if as_json:
        typer.echo(json.dumps([to_wire(item) for item in purges]))
        return
    console.stdout().print(console.purges_table(purges))


def purges_show(
    purge_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The purge's ID.")],
    as_json: AsJson = False,
    url: ServerUrl = None,
) -> None:
    """Show one purge: its targets and each cache node's result."""
    with client_for(url) as client:
        found = client.purges.get(purge_id)
    if as_json:
        typer.echo(json.dumps(to_wire(found)))
        return
    out = console.stdout()
    out.print(f"Purge {found.id}: {found.status}")
    completed = (
        f"completed {console.moment(found.completed_at)} UTC"
        if found.completed_at
        else "not completed yet"
    )
    out.print(f"Created {console.moment(found.created_at)} UTC, {completed}")
    out.print(f"Targets ({found.kind}):" if found.targets else f"Targets: {found.kind}")
    if found.targets:
        out.print(console.targets_list(found))
    _show_result(found)


def scan_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PATH",
            help="Files or directories (recursively; .git and binary files are skipped). "
            "Standard input when none is given, or for -.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Find Paradarum API keys in files; exit 1 when there is one.

    Reports path:line:column and the key's first 8 characters only. Use it in CI or
    as a pre-commit hook (see .pre-commit-hooks.yaml) to stop keys from being committed.
    """
    stdin = typer.get_binary_stream("stdin")
    status = scan.run(paths or [], stdin=stdin, out=sys.stdout, err=sys.stderr)
    raise typer.Exit(status)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"paradarum {__version__}")
        raise typer.Exit()


def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


# -- the app -------------------------------------------------------------------------


def build_app(*, help: str = HELP) -> typer.Typer:
    """The customer's ``paradarum`` app, new each call."""
    app = new_group(help)
    app.callback()(root)
    app.command("login")(reported(login))
    app.command("logout")(reported(logout))

    keys = new_group("Create, list, roll and revoke API keys; see what each is used for.")
    keys.command("create")(reported(keys_create))
    keys.command("list")(reported(keys_list))
    keys.command("roll")(reported(keys_roll))
    keys.command("usage")(reported(keys_usage))
    keys.command("revoke")(reported(keys_revoke))
    app.add_typer(keys, name="keys")

    zones = new_group("The hostnames this account may purge, proven with a DNS TXT record.")
    zones.command("add")(reported(zones_add))
    zones.command("list")(reported(zones_list))
    zones.command("verify")(reported(zones_verify))
    zones.command("delete")(reported(zones_delete))
    app.add_typer(zones, name="zones")

    app.command("purge")(reported(purge))
    purges = new_group("Purges already asked for, and each cache node's result.")
    purges.command("list")(reported(purges_list))
    purges.command("show")(reported(purges_show))
    app.add_typer(purges, name="purges")

    members = new_group("Who works on this account, as what; invitations.")
    members.command("list")(reported(members_list))
    members.command("invite")(reported(members_invite))
    members.command("role")(reported(members_role))
    members.command("remove")(reported(members_remove))
    app.add_typer(members, name="members")

    accounts = new_group("The accounts you belong to; which one the session acts on.")
    accounts.command("list")(reported(accounts_list))
    accounts.command("switch")(reported(accounts_switch))
    app.add_typer(accounts, name="accounts")

    two_factor = new_group(
        "Two-factor sign-in: your authenticator app, passkeys and recovery codes."
    )
    two_factor.command("status")(reported(two_factor_status))
    two_factor.command("enable")(reported(two_factor_enable))
    two_factor.command("confirm")(reported(two_factor_confirm))
    two_factor.command("disable")(reported(two_factor_disable))
    two_factor.command("recovery-codes")(reported(two_factor_recovery_codes))
    two_factor.command("remove-passkey")(reported(two_factor_remove_passkey))
    app.add_typer(two_factor, name="two-factor")

    webhooks = new_group(
        "Where this account's events are sent (signed webhooks), and each delivery."
    )
    webhooks.command("create")(reported(webhooks_create))
    webhooks.command("list")(reported(webhooks_list))
    webhooks.command("update")(reported(webhooks_update))
    webhooks.command("delete")(reported(webhooks_delete))
    webhooks.command("roll-secret")(reported(webhooks_roll_secret))
    webhooks.command("deliveries")(reported(webhooks_deliveries))
    webhooks.command("resend")(reported(webhooks_resend))
    app.add_typer(webhooks, name="webhooks")

    audit = new_group("The account's security log, for a SIEM.")
    audit.command("export")(reported(audit_export))
    app.add_typer(audit, name="audit")

    app.command("scan")(scan_command)
    return app


def group(app: typer.Typer, name: str) -> typer.Typer:
    """The command group ``name`` of ``app`` (``keys``, ``zones``, ``purges``), to add to."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    raise LookupError(f"paradarum has no command group {name!r}")


def replace_command(group: typer.Typer, name: str, callback: Callable[..., Any]) -> None:
    """Put ``callback`` in place of the command ``name`` of ``group``.

    For a variant that extends a customer command (more arguments, an operator flag):
    the variant parses the union of both command lines and calls the customer's
    function, with its own arguments, for the customer's case. Client errors in the
    variant are reported like in every other command.
    """
    for index, info in enumerate(group.registered_commands):
        if info.name == name:
            group.registered_commands.pop(index)
            break
    else:
        raise LookupError(f"the group has no command {name!r}")
    group.command(name)(reported(callback))
    # Keep the command where it was in the help, not last.
    group.registered_commands.insert(index, group.registered_commands.pop())


def main() -> None:
    """The client distribution's ``paradarum`` script."""
    build_app()(prog_name="paradarum")
