"""The server's ``paradarum`` command: the customer's commands, plus run and administer.

The customer's app (login, keys, zones, purge, purges, scan) is built by
:func:`paradarum_client.cli.build_app`; :func:`build_app` here adds the operator's
commands to it, so this ``paradarum`` is a superset of the client distribution's.
An operator variant of a customer command (``zones add EMAIL HOSTNAME --verified``
next to the customer's ``zones add HOSTNAME``) goes in with
:func:`paradarum_client.cli.replace_command`, calling the customer's function for
the customer's case. Operator commands work on the database directly (the settings
come from flags and ``PARADARUM_*``), so they need no running server and no
credential: whoever can run them can read the database anyway.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from paradarum import startup
from paradarum.config import DATABASE_FILE_NAME, Settings, load_or_create_secret
from paradarum.startup import StartupError
from paradarum_client import cli as customer
from paradarum_client.command import confirm, fail, field_lines, quiet_after_broken_pipe
from paradarum_client.models import to_wire

if TYPE_CHECKING:
    from paradarum.runtime import Runtime
    from paradarum.services.zones import ZoneInfo

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

HELP = (
    "Paradarum: API keys, panel and cache purge. Run and administer the server "
    "(serve, db, accounts, jobs), and use it like a customer.\n\n" + customer.CONNECTION_HELP
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", envvar="PARADARUM_DATA_DIR", metavar="DIR", help="Where SQLite data lives."
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="PARADARUM_DATABASE_URL",
        metavar="URL",
        help="postgresql://... to use PostgreSQL instead of the SQLite file.",
    ),
]


def operator(command: F) -> F:
    """``command`` with every startup problem (configuration, data directory,
    database) and every refusal of a service reported as one line, never a
    traceback: status 2 for configuration, 1 for the rest."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        from paradarum.errors import DomainError, ValidationFailed

        try:
            return command(*args, **kwargs)
        except StartupError as exc:
            typer.echo(f"Error: {exc.message}", err=True)
            raise typer.Exit(exc.code) from None
        except BrokenPipeError:
            quiet_after_broken_pipe()
        except ValidationFailed as exc:
            # As the customer commands print it: the sentence, then each field.
            typer.echo(f"Error: {exc.message}", err=True)
            for line in field_lines(exc.message, exc.errors):
                typer.echo(line, err=True)
            raise typer.Exit(1) from None
        except DomainError as exc:
            typer.echo(f"Error: {exc.message}", err=True)
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def _settings(
    data_dir: Path | None,
    database_url: str | None,
    *,
    secret: bool = True,
    existing: bool = False,
    flags: dict[str, str] | None = None,
) -> Settings:
    """The settings, with a data directory that is private and writable, and (unless
    ``secret`` is False: migrations need none) the signing secret readable: every
    operator command starts here. ``existing``: a command about data already there
    (an account, a zone) refuses to start a new, empty SQLite database instead."""
    overrides: dict[str, object] = dict(flags or {})
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url:
        overrides["database_url"] = database_url
    settings = startup.load_settings(overrides)
    database = (settings.data_dir / DATABASE_FILE_NAME).resolve()
    if existing and settings.is_sqlite and not database.exists():
        raise StartupError(
            f"No database at {database}: run this where `paradarum serve` keeps its data "
            "(./data from the directory it started in), or set PARADARUM_DATA_DIR.",
            code=1,
        )
    startup.prepare_data_dir(settings)
    if not secret:
        return settings
    try:
        load_or_create_secret(settings)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StartupError(
                f"The disk holding {settings.data_dir} is full: free some space, then start again.",
                code=1,
            ) from None
        raise StartupError(f"Cannot keep the signing secret: {exc.strerror}.", code=1) from None
    return settings


def _migrate(settings: Settings) -> tuple[str | None, str | None]:
    from sqlalchemy.exc import DBAPIError

    from paradarum.db.migrate import upgrade
    from paradarum.runtime import open_database

    db = open_database(settings)
    try:
        return upgrade(db)
    except DBAPIError as exc:
        # One line an operator can act on (the driver's reason names host and
        # port, never the password), and a non-zero exit for the supervisor.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise StartupError(f"Cannot use the database: {reason}", code=1) from None
    finally:
        db.close()


def _schema_in_place(settings: Settings) -> None:
    """Operator commands work on the schema as it is. A new, empty database gets it
    (nothing serves it yet); one at another revision is left alone: upgrading a
    database that servers use is ``paradarum db upgrade``'s job, done when planned,
    not as a side effect of creating an account."""
    from sqlalchemy.exc import DBAPIError

    from paradarum.db.migrate import current_revision, head_revision
    from paradarum.errors import Unavailable
    from paradarum.runtime import open_database

    db = open_database(settings)
    try:
        with db.reading() as conn:
            current = current_revision(conn)
        head = head_revision(db)
    except (DBAPIError, Unavailable) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StartupError(f"Cannot use the database: {reason}", code=1) from None
    finally:
        db.close()
    if current is None:
        _migrate(settings)
    elif current != head:
        raise StartupError(
            f"The database schema is at revision {current} and this paradarum needs {head}: "
            "run `paradarum db upgrade` first.",
            code=1,
        )


@contextmanager
def _runtime(settings: Settings) -> Iterator[Runtime]:
    from paradarum.runtime import build_runtime

    _schema_in_place(settings)
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()


def serve(
    # Read as text and checked with the settings (which read PARADARUM_HOST, _PORT and
    # _WORKERS themselves), so that a bad value is the same one line as any setting's.
    host: Annotated[
        str | None,
        typer.Option(show_default="127.0.0.1", help="Or PARADARUM_HOST.", metavar="HOST"),
    ] = None,
    port: Annotated[
        str | None,
        typer.Option(
            show_default="8000", help="Or PARADARUM_PORT; 0 picks a free port.", metavar="PORT"
        ),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(show_default="1", help="Or PARADARUM_WORKERS (1 to 64).", metavar="N"),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Apply pending migrations, then serve the API and the panel."""
    from paradarum import logs, server

    flags = {"host": host, "port": port, "workers": workers}
    settings = _settings(
        data_dir, database_url, flags={k: v for k, v in flags.items() if v is not None}
    )
    port_number = startup.check_address(settings.host, settings.port)
    logs.configure(settings.log_level)
    _migrate(settings)

    def announce() -> None:
        # Besides the JSON logs, the one line a person starting it needs.
        typer.echo(
            f"Paradarum is running at {startup.base_url(settings.host, port_number)}"
            " — Ctrl-C to stop",
            err=True,
        )

    server.serve(
        settings,
        host=settings.host,
        port=port_number,
        workers=settings.workers,
        on_started=announce,
    )


def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply pending migrations (safe to run from several instances at once)."""
    settings = _settings(data_dir, database_url, secret=False)
    before, after = _migrate(settings)
    where = (
        f"the SQLite database {(settings.data_dir / DATABASE_FILE_NAME).resolve()}"
        if settings.is_sqlite
        else "the PostgreSQL database"
    )
    if before is None:
        typer.echo(f"Created {where} (schema {after}).")
    elif before != after:
        typer.echo(f"Upgraded {where} from schema {before} to {after}.")
    else:
        typer.echo(f"{where[0].upper()}{where[1:]} is up to date (schema {after}): nothing to do.")


def accounts_create(
    email: str,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            confirmation_prompt=True,
            hide_input=True,
            envvar="PARADARUM_NEW_PASSWORD",
            help="Prompted for when not given.",
        ),
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account, even when sign-up is turned off (its address counts as verified)."""
    from paradarum.services.context import ClientInfo

    with _runtime(_settings(data_dir, database_url)) as runtime:
        account = asyncio.run(
            runtime.accounts.signup(
                email=email, password=password, client=ClientInfo(address="cli"), force=True
            )
        )
    assert account is not None  # an operator's account is created verified
    typer.echo(f"Created account {account.id} <{account.email}>.")


def accounts_delete(
    email: Annotated[str, typer.Argument(metavar="EMAIL")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete an account and everything it owns; its keys, sessions and zones stop
    working at once."""
    settings = _settings(data_dir, database_url, existing=True)
    with _runtime(settings) as runtime:
        account = asyncio.run(runtime.accounts.find(email))
        if not yes:
            confirm(
                f"Delete the account {account.email} (id {account.id}) with all its keys "
                "and zones, for good?"
            )
        asyncio.run(runtime.accounts.delete(email))
    typer.echo(f"Deleted account {account.id} <{account.email}>.")


def accounts_reset_password(
    email: Annotated[str, typer.Argument(metavar="EMAIL")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Email the person a link to choose a new password (it works once, for 1 hour).
    The password and sessions stay as they are until the link is used."""
    from paradarum.errors import AccountNotFound

    async def work(runtime: Runtime) -> Any:
        if runtime.settings.smtp_url is None:
            raise fail(
                "Mail is not configured (PARADARUM_SMTP_URL), so no link can reach the "
                "person: set it where `paradarum serve` runs, and here, then try again.",
                1,
            )
        person = await runtime.accounts.send_reset_link(email.strip().lower())
        if person is None:
            raise AccountNotFound(f"No account with the email {email.strip().lower()}.")
        return person

    person = _on_database(data_dir=data_dir, database_url=database_url, work=work)
    typer.echo(
        f"Queued a password reset link for {person.email}: "
        "the running server emails it within seconds, and it works once, for 1 hour. "
        "The current password and sessions keep working until the link is used."
    )


def _on_database(
    *,
    data_dir: Path | None,
    database_url: str | None,
    work: Callable[[Runtime], Coroutine[Any, Any, T]],
) -> T:
    """Run ``work`` on a runtime of the database the settings name.

    A refusal (an unknown email, a hostname taken or invalid) is one line and
    status 1, like a customer command's.
    """
    from paradarum.errors import DomainError

    try:
        with _runtime(_settings(data_dir, database_url, existing=True)) as runtime:
            return asyncio.run(work(runtime))
    except StartupError as exc:
        raise fail(exc.message, exc.code) from None
    except DomainError as exc:
        raise fail(exc.message) from None


def jobs(
    as_json: customer.AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Count the job queue's rows by kind and state (queued, running, done, failed):
    purge deliveries, email; from the database, so every process's jobs."""
    from paradarum.services.jobs import JobState

    async def work(runtime: Runtime) -> Any:
        return await runtime.jobs.counts()

    counts = _on_database(data_dir=data_dir, database_url=database_url, work=work)
    if as_json:
        typer.echo(
            json.dumps(
                {kind: {str(s): n for s, n in states.items()} for kind, states in counts.items()}
            )
        )
        return
    # A table a person reads and grep/awk can cut: one line per kind.
    width = max([len("kind"), *(len(kind) for kind in counts)])
    typer.echo("  ".join([f"{'kind':<{width}}", *(f"{state!s:>7}" for state in JobState)]))
    for kind, by_state in counts.items():
        cells = (f"{by_state[state]:>7}" for state in JobState)
        typer.echo("  ".join([f"{kind:<{width}}", *cells]))


def _zone_line(zone: ZoneInfo, id_width: int) -> str:
    """``12  active   www.example.com``: ID, status, hostname; grep and cut friendly."""
    return f"{zone.id:>{id_width}}  {zone.status:<7}  {zone.hostname}"


def zones_add(
    names: Annotated[
        list[str],
        typer.Argument(
            metavar="[EMAIL] HOSTNAME",
            help="HOSTNAME: as in the address bar, or *.example.com. With EMAIL (operator): "
            "for that account, on the database.",
            show_default=False,
        ),
    ],
    verified: Annotated[
        bool,
        typer.Option(
            "--verified",
            help="Operator, with EMAIL: active at once, without DNS (for a platform that "
            "proved ownership when it provisioned the site).",
        ),
    ] = False,
    as_json: customer.AsJson = False,
    url: customer.ServerUrl = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a zone and print the DNS TXT record that proves it is yours.

    Operator: EMAIL HOSTNAME [--verified] adds it to that account, on the database.
    """
    if len(names) > 2:
        raise typer.BadParameter(
            "give HOSTNAME, or EMAIL HOSTNAME (operator)", param_hint="[EMAIL] HOSTNAME"
        )
    if len(names) == 1:
        if verified:
            raise fail("--verified is for operators: give the account too (EMAIL HOSTNAME).", 2)
        customer.zones_add(hostname=names[0], as_json=as_json, url=url)
        return
    email, name = names
    zone = _on_database(
        data_dir=data_dir,
        database_url=database_url,
        work=lambda runtime: runtime.zones.add_for(email=email, hostname=name, verified=verified),
    )
    if as_json:
        from paradarum.web import shapes

        typer.echo(json.dumps(to_wire(shapes.zone(zone))))
        return
    line = f"Added zone {zone.id} ({zone.hostname}) to {email.strip().lower()}: {zone.status}"
    if not zone.verified_at:
        line += f"; its TXT record: {zone.challenge_name} with the value {zone.token}"
    typer.echo(line + ".")


def zones_list(
    email: Annotated[
        str | None,
        typer.Argument(
            metavar="[EMAIL]",
            help="Operator: that account's zones, from the database.",
            show_default=False,
        ),
    ] = None,
    as_json: customer.AsJson = False,
    url: customer.ServerUrl = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List zones, newest first: only active ones can be purged.

    Operator: EMAIL lists that account's zones, one line each (ID, status, hostname).
    """
    if email is None:
        customer.zones_list(as_json=as_json, url=url)
        return
    account = email
    zones = _on_database(
        data_dir=data_dir,
        database_url=database_url,
        work=lambda runtime: runtime.zones.list_for(account),
    )
    if as_json:
        from paradarum.web import shapes

        typer.echo(json.dumps([to_wire(shapes.zone(zone)) for zone in zones]))
        return
    if not zones:
        typer.echo(f"{email.strip().lower()} has no zones.")
    id_width = max((len(str(zone.id)) for zone in zones), default=1)
    for zone in zones:
        typer.echo(_zone_line(zone, id_width))


def build_app() -> typer.Typer:
    """The customer's app with the operator's commands added, new each call."""
    app = customer.build_app(help=HELP)
    zones = customer.group(app, "zones")
    customer.replace_command(zones, "add", zones_add)
    customer.replace_command(zones, "list", zones_list)
    app.command("serve")(operator(serve))
    app.command("jobs")(operator(jobs))
    db_app = customer.new_group("Database administration.")
    db_app.command("upgrade")(operator(db_upgrade))
    app.add_typer(db_app, name="db")
    accounts_app = customer.group(app, "accounts")
    accounts_app.command("create")(operator(accounts_create))
    accounts_app.command("delete")(operator(accounts_delete))
    accounts_app.command("reset-password")(operator(accounts_reset_password))
    return app


def main() -> None:
    build_app()(prog_name="paradarum")


if __name__ == "__main__":
    main()
