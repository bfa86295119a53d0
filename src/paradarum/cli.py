"""The server's ``paradarum`` command: the customer's commands, plus run and administer.

The customer's app (login, keys, purge, purges, scan) is built by
:func:`paradarum_client.cli.build_app`; :func:`build_app` here adds the operator's
commands to it, so this ``paradarum`` is a superset of the client distribution's.
An operator variant of a customer command (``zones add EMAIL HOSTNAME --verified``
next to the customer's ``zones add HOSTNAME``) goes in with
:func:`paradarum_client.cli.replace_command`, calling the customer's function for
the customer's case.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from paradarum import startup
from paradarum.config import Settings, load_or_create_secret
from paradarum.startup import StartupError
from paradarum_client import cli as customer

if TYPE_CHECKING:
    from paradarum.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

HELP = (
    "Paradarum: API keys, panel and cache purge. Run and administer the server "
    "(serve, db, accounts), and use it like a customer.\n\n" + customer.CONNECTION_HELP
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="PARADARUM_DATA_DIR", help="Where SQLite data lives."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="PARADARUM_DATABASE_URL",
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
        except ValidationFailed as exc:
            for field, problems in exc.errors.items():
                typer.echo(f"{field}: {' '.join(problems)}", err=True)
            typer.echo(f"Error: {exc.message}", err=True)
            raise typer.Exit(1) from None
        except DomainError as exc:
            typer.echo(f"Error: {exc.message}", err=True)
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    """The settings, with a data directory that is private and writable, and the
    signing secret readable: every operator command starts here."""
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url:
        overrides["database_url"] = database_url
    settings = startup.load_settings(overrides)
    startup.prepare_data_dir(settings)
    try:
        load_or_create_secret(settings)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"Cannot keep the signing secret: {exc.strerror}.", code=1) from None
    return settings


def _migrate(settings: Settings) -> None:
    from sqlalchemy.exc import DBAPIError

    from paradarum.db.migrate import upgrade
    from paradarum.runtime import open_database

    db = open_database(settings)
    try:
        upgrade(db)
    except DBAPIError as exc:
        # One line an operator can act on (the driver's reason names host and
        # port, never the password), and a non-zero exit for the supervisor.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise StartupError(f"Cannot use the database: {reason}", code=1) from None
    finally:
        db.close()


@contextmanager
def _runtime(settings: Settings) -> Iterator[Runtime]:
    from paradarum.runtime import build_runtime

    _migrate(settings)
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()


def serve(
    host: Annotated[
        str | None, typer.Option(envvar="PARADARUM_HOST", show_default="127.0.0.1")
    ] = None,
    port: Annotated[
        int | None, typer.Option(envvar="PARADARUM_PORT", min=0, max=65535, show_default="8000")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(envvar="PARADARUM_WORKERS", min=1, max=64, show_default="1")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Apply pending migrations, then serve the API and the panel."""
    from paradarum import logs, server

    settings = _settings(data_dir, database_url)
    host = host or settings.host
    port = settings.port if port is None else port
    startup.check_address(host, port)
    logs.configure(settings.log_level)
    _migrate(settings)
    server.serve(settings, host=host, port=port, workers=workers or settings.workers)


def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply pending migrations (safe to run from several instances at once)."""
    settings = _settings(data_dir, database_url)
    _migrate(settings)
    typer.echo("Database is up to date.")


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
    settings = _settings(data_dir, database_url)
    with _runtime(settings) as runtime:
        account = asyncio.run(runtime.accounts.find(email))
        if not yes:
            typer.confirm(
                f"Delete the account {account.email} (id {account.id}) with all its keys "
                "and zones, for good?",
                abort=True,
            )
        asyncio.run(runtime.accounts.delete(email))
    typer.echo(f"Deleted account {account.id} <{account.email}>.")


def build_app() -> typer.Typer:
    """The customer's app with the operator's commands added, new each call."""
    app = customer.build_app(help=HELP)
    app.command("serve")(operator(serve))
    db_app = customer.new_group("Database administration.")
    db_app.command("upgrade")(operator(db_upgrade))
    app.add_typer(db_app, name="db")
    accounts_app = customer.new_group("Account administration (works with sign-up off).")
    accounts_app.command("create")(operator(accounts_create))
    accounts_app.command("delete")(operator(accounts_delete))
    app.add_typer(accounts_app, name="accounts")
    return app


def main() -> None:
    build_app()(prog_name="paradarum")


if __name__ == "__main__":
    main()
