"""What every customer command shares: where it connects, its common options, how it ends.

Kept apart from the commands themselves (``cli.py``, ``cli_keys.py``,
``cli_zones.py``) so that each group of commands is a small module and none of them
imports the app that assembles them.

Every failure the client reports ends the command with one line on standard error
and status 1 (2 for a URL or key that cannot work, and for wrong arguments) — never
with a traceback.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from paradarum_client import ci, session
from paradarum_client.client import Client
from paradarum_client.errors import ConfigurationError, ParadarumError, RateLimitedError
from paradarum_client.models import rfc3339
from paradarum_client.protocol import DEFAULT_BASE_URL, KEY_VARIABLE, URL_VARIABLE, check_base_url

F = TypeVar("F", bound=Callable[..., Any])

# Where commands connect and with what credential: in the help of both paradarum apps.
CONNECTION_HELP = f"""\b
Server:     --url, else {URL_VARIABLE}, else the server `paradarum login` used
            (default {DEFAULT_BASE_URL}).
Credential: {KEY_VARIABLE}, else the session kept by `paradarum login`.
"""

ServerUrl = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=URL_VARIABLE,
        metavar="URL",
        help=f"The Paradarum server (default: the one `paradarum login` used, "
        f"else {DEFAULT_BASE_URL}).",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")]


def confirm(question: str) -> None:
    """Ask ``question``; "no" ends the command with "Nothing was changed." and status 0
    (declining is an answer, not an error)."""
    if not typer.confirm(question):
        typer.echo("Nothing was changed.")
        raise typer.Exit(0)


# The server's sentences point to the API's routes; on the command line the same thing
# is a command. (A test keeps this in step with the server's sentences.)
ROUTE_COMMANDS = {
    "(POST /api/account/zones)": (
        "(`paradarum zones add HOSTNAME`, then `paradarum zones verify ID`)"
    ),
    "(GET /api/account/zones lists them)": "(`paradarum zones list` lists them)",
    "(DELETE /api/account/apikeys/{id})": "(`paradarum keys revoke ID`)",
    "Re-authenticate (POST /api/auth/reauthenticate) and try again.": (
        "Sign in again (`paradarum login`) and try again."
    ),
    "(POST /api/account/two-factor/totp)": "(`paradarum two-factor enable`)",
    "(POST /api/account/email/verification sends a new one)": (
        "(sign in to the panel for a new one: “Send a new link”)"
    ),
}


def for_the_command_line(message: str) -> str:
    """``message`` with the API routes it names replaced by the commands that do the same."""
    for route, command in ROUTE_COMMANDS.items():
        message = message.replace(route, command)
    return message


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``Error: message`` on standard error; raise the returned exit."""
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def error_message(exc: ParadarumError) -> str:
    message = for_the_command_line(exc.message)
    if isinstance(exc, RateLimitedError) and exc.retry_after:
        # The server's sentence already says "Try again later."; add only the wait.
        return f"{message} (retry in {math.ceil(exc.retry_after)} s)"
    return message


def field_lines(message: str, errors: dict[str, list[str]]) -> list[str]:
    """``  field: problem`` for each field whose problem the sentence does not
    already say (a one-field refusal's sentence is often that problem)."""
    lines = []
    message = for_the_command_line(message)
    for name, problems in errors.items():
        said = for_the_command_line(" ".join(problems))
        if said and said not in message:
            lines.append(f"  {name}: {said}")
    return lines


def quiet_after_broken_pipe() -> NoReturn:
    """The reader went away (``paradarum zones list | head -5``): stop without a word,
    as other Unix tools do, with their status (128 + SIGPIPE)."""
    # What is still buffered for stdout would fail again at exit: it goes nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(128 + signal.SIGPIPE)


def reported(command: F) -> F:
    """``command`` with every client error turned into one line and an exit status."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigurationError as exc:
            raise fail(exc.message, 2) from None
        except ParadarumError as exc:
            typer.echo(f"Error: {error_message(exc)}", err=True)
            for line in field_lines(exc.message, exc.errors):
                typer.echo(line, err=True)
            raise typer.Exit(1) from None
        except BrokenPipeError:
            quiet_after_broken_pipe()
        except OSError as exc:  # the session file: an unwritable config directory, say
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"{where}{exc.strerror or exc}") from None

    return run  # type: ignore[return-value]


def client_for(url: str | None) -> Client:
    """A client for the chosen server with the chosen credential.

    The server: ``url`` (``--url``/``PARADARUM_URL``), else the one ``paradarum
    login`` used. The credential: ``PARADARUM_API_KEY``, else the kept session — and
    that only for the server it came from.
    """
    if url is not None:
        check_base_url(url, source="")  # a wrong URL is worth hearing before "not signed in"
    kept = session.load()
    base_url = url or kept.get("url") or None
    if os.environ.get(KEY_VARIABLE):
        return Client(base_url=base_url)  # reads and checks the key itself
    token = kept.get("token") or None
    if token and (url is None or url.rstrip("/") == kept.get("url")):
        return Client(token=token, base_url=base_url)
    raise fail(f"Not signed in: run `paradarum login` or set {KEY_VARIABLE}.")


def oidc_client(
    url: str | None,
    *,
    token_variable: str | None,
    audience: str | None,
    policy_id: int | None = None,
) -> Client:
    """A client with a short-lived key minted for this CI job's ID token: from
    ``token_variable`` when given (GitLab, any CI), else asked of GitHub Actions for
    ``audience`` (default: the server's URL, which is a trust policy's default
    audience when the server's public URL is the same). Says, without the key,
    when the key expires."""
    if url is not None:
        check_base_url(url, source="")
    base_url = check_base_url(
        url or session.load().get("url") or DEFAULT_BASE_URL, source=f" ({URL_VARIABLE})"
    )
    if token_variable:
        id_token = ci.id_token_from_environment(token_variable)
    else:
        id_token = ci.github_actions_id_token(audience or base_url)
    client, minted = Client.from_oidc_token(id_token, base_url=base_url, policy_id=policy_id)
    typer.echo(
        f"Using a key from trust policy {minted.policy_id} for this CI job "
        f"({minted.key_prefix}…, expires {rfc3339(minted.expires_at)}).",
        err=True,
    )
    return client


def new_group(help: str) -> typer.Typer:
    """A command group that looks like the rest of the app (plain help, no completion)."""
    return typer.Typer(
        help=help,
        no_args_is_help=True,
        add_completion=False,
        # Plain help: Rich help labels every option with its Python type (--help <bool>).
        rich_markup_mode=None,
        # A traceback must never print local variables: they may hold a key or a token.
        pretty_exceptions_show_locals=False,
    )
