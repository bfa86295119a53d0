"""The ``paradarum`` command: run the service and administer it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from paradarum.config import Settings, load_or_create_secret

app = typer.Typer(
    help="Paradarum: API keys, panel and cache purge.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback must never print local variables: they may hold a key or a token.
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
accounts_app = typer.Typer(
    help="Account administration (works with sign-up off).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")

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


def _settings(data_dir: Path | None, database_url: str | None) -> Settings:
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url:
        overrides["database_url"] = database_url
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        typer.echo(f"Invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from exc


def _migrate(settings: Settings) -> None:
    from sqlalchemy.exc import InterfaceError, OperationalError

    from paradarum.db.migrate import upgrade
    from paradarum.runtime import open_database

    db = open_database(settings)
    try:
        upgrade(db)
    except (OperationalError, InterfaceError) as exc:
        # One line an operator can act on (the driver's reason names host and
        # port, never the password), and a non-zero exit for the supervisor.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        typer.echo(f"Cannot reach the database: {reason}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="PARADARUM_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PARADARUM_PORT", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(envvar="PARADARUM_WORKERS", min=1, max=64)] = 1,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Apply pending migrations, then serve the API and the panel."""
    import uvicorn

    from paradarum import logs

    settings = _settings(data_dir, database_url)
    logs.configure(settings.log_level)
    if not settings.is_sqlite and settings.jwt_secret is None:
        typer.echo(
            "PostgreSQL mode needs a JWT signing secret shared by every instance: "
            "set PARADARUM_JWT_SECRET to the same random value (at least 32 characters, "
            "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(48))'`) "
            "on each instance.",
            err=True,
        )
        raise typer.Exit(2)
    try:
        load_or_create_secret(settings)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    _migrate(settings)
    # Worker processes read their settings from the environment.
    os.environ["PARADARUM_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.database_url:
        os.environ["PARADARUM_DATABASE_URL"] = settings.database_url
    uvicorn.run(
        "paradarum.web.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=logs.UVICORN_LOG_CONFIG,
        access_log=False,
        # Client addresses come from the socket unless PARADARUM_TRUSTED_PROXIES says so.
        proxy_headers=False,
        server_header=False,
        date_header=True,
    )


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply pending migrations (safe to run from several instances at once)."""
    settings = _settings(data_dir, database_url)
    _migrate(settings)
    typer.echo("Database is up to date.")


@accounts_app.command("create")
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
    """Create an account, even when sign-up is turned off."""
    from paradarum.errors import DomainError, ValidationFailed
    from paradarum.runtime import build_runtime
    from paradarum.services.context import ClientInfo

    settings = _settings(data_dir, database_url)
    _migrate(settings)
    runtime = build_runtime(settings)
    try:
        account = runtime.accounts.signup(
            email=email, password=password, client=ClientInfo(address="cli"), force=True
        )
    except ValidationFailed as exc:
        for field, problems in exc.errors.items():
            typer.echo(f"{field}: {' '.join(problems)}", err=True)
        raise typer.Exit(1) from exc
    except DomainError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from exc
    finally:
        runtime.close()
    typer.echo(f"Created account {account.id} <{account.email}>.")


# -- the API from the command line (on paradarum_client) ---------------------------
#
# These commands talk to a running Paradarum over HTTP, like any script would.
# Credentials: PARADARUM_API_KEY, else the session token kept by `paradarum login`.
# The server: --url / PARADARUM_URL, else the one `login` used, else the default.

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

SESSION_FILE_NAME = "session.json"

ServerUrl = Annotated[
    str | None,
    typer.Option("--url", envvar="PARADARUM_URL", help="The Paradarum server.", show_default=False),
]


def _session_path() -> Path:
    return Path(typer.get_app_dir("paradarum")) / SESSION_FILE_NAME


def _load_session() -> dict[str, str]:
    import json

    try:
        data = json.loads(_session_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_session(data: dict[str, str]) -> Path:
    """Write the session file readable by its owner only (0600, directory 0700)."""
    import json

    path = _session_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)
    os.chmod(path, 0o600)
    return path


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _client(url: str | None, *, require_credential: bool = True) -> Any:
    from paradarum_client import Client

    session = _load_session()
    base_url = url or session.get("url") or None
    api_key = os.environ.get("PARADARUM_API_KEY") or None
    if api_key:
        return Client(api_key=api_key, base_url=base_url)
    token = session.get("token") or None
    if token and (url is None or url.rstrip("/") == session.get("url")):
        return Client(token=token, base_url=base_url)
    if require_credential:
        raise _fail("Not signed in: run `paradarum login` or set PARADARUM_API_KEY.")
    return Client(base_url=base_url)


@contextmanager
def _api_errors() -> Iterator[None]:
    """Show a client error as one line (plus field problems) and exit 1."""
    from paradarum_client import ParadarumError, RateLimitedError

    try:
        yield
    except RateLimitedError as exc:
        wait = f" Try again in {exc.retry_after:g} s." if exc.retry_after else ""
        raise _fail(exc.message + wait) from exc
    except ParadarumError as exc:
        for name, problems in exc.errors.items():
            typer.echo(f"{name}: {' '.join(problems)}", err=True)
        raise _fail(exc.message) from exc


def _when(moment: datetime | None) -> str:
    from paradarum.clock import rfc3339

    return rfc3339(moment) or "—"


@app.command()
def login(
    email: Annotated[str, typer.Option(prompt=True, help="Prompted for when not given.")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, envvar="PARADARUM_PASSWORD", show_default=False),
    ],
    url: ServerUrl = None,
) -> None:
    """Sign in and keep the session token in your config directory (mode 0600)."""
    from paradarum_client import DEFAULT_BASE_URL, Client

    base_url = (url or os.environ.get("PARADARUM_URL") or DEFAULT_BASE_URL).rstrip("/")
    with _api_errors(), Client(base_url=base_url, token="") as client:
        session = client.login(email, password)
    path = _save_session(
        {"url": base_url, "token": session.token, "expiresAt": _when(session.expires_at)}
    )
    typer.echo(f"Signed in to {base_url} as {email.strip().lower()}.")
    typer.echo(f"Session kept in {path} until {_when(session.expires_at)}.")


@app.command()
def logout() -> None:
    """End the kept session, on the server and in your config directory."""
    from paradarum_client import AuthenticationError, Client, ParadarumError

    session = _load_session()
    path = _session_path()
    if not session.get("token"):
        typer.echo("Not signed in.")
        return
    try:
        with Client(token=session["token"], base_url=session.get("url")) as client:
            client.logout()
    except AuthenticationError:
        pass  # expired or already ended: nothing left to end on the server
    except ParadarumError as exc:
        raise _fail(f"{exc.message} The session is still kept in {path}.") from exc
    path.unlink(missing_ok=True)
    typer.echo("Signed out.")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'WordPress'.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
    url: ServerUrl = None,
) -> None:
    """Create an API key and print it, once: store it right away."""
    import json

    from paradarum.clock import rfc3339

    with _api_errors(), _client(url) as client:
        created = client.keys.create(name)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": created.id,
                    "name": created.name,
                    "key": created.key,
                    "keyPrefix": created.key_prefix,
                    "createdAt": rfc3339(created.created_at),
                }
            )
        )
        return
    typer.echo(f"Created API key {created.id} ({created.name}).")
    typer.echo("")
    typer.echo(f"    {created.key}")
    typer.echo("")
    typer.echo("This is the only time the key is shown. Store it somewhere safe now.")


@keys_app.command("list")
def keys_list(
    status: Annotated[str, typer.Option(help="all, active or revoked.")] = "all",
    url: ServerUrl = None,
) -> None:
    """List API keys, newest first."""
    from rich.console import Console
    from rich.table import Table

    with _api_errors(), _client(url) as client:
        keys = client.keys.list(status=status)
    table = Table(title="API keys")
    for column in ("ID", "Name", "Prefix", "Created", "Last used", "Status"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.key_prefix,
            _when(key.created_at),
            _when(key.last_used_at),
            "revoked" if key.is_revoked else "active",
        )
    Console(highlight=False).print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="The key's ID.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    url: ServerUrl = None,
) -> None:
    """Revoke an API key. Permanent: scripts using it stop working at once."""
    with _api_errors(), _client(url) as client:
        if not yes:
            typer.confirm(f"Revoke API key {key_id} for good?", abort=True)
        revoked = client.keys.revoke(key_id)
    typer.echo(f"Revoked API key {revoked.id} ({revoked.name}, {revoked.key_prefix}).")


@app.command()
def purge(
    urls: Annotated[
        list[str] | None, typer.Argument(help="Absolute URLs to purge.", show_default=False)
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", "-t", help="A cache tag to purge (repeat for more).", show_default=False
        ),
    ] = None,
    everything: Annotated[bool, typer.Option("--everything", help="Purge everything.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress until every cache node has answered.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most.", min=1)] = 120,
    url: ServerUrl = None,
) -> None:
    """Purge URLs, tags (--tag) or everything (--everything) from every cache node."""
    chosen = [bool(urls), bool(tag), everything]
    if sum(chosen) != 1:
        raise _fail(
            "Give URLs, or --tag TAG (repeatable), or --everything: exactly one of them.", 2
        )
    with _api_errors(), _client(url) as client:
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
        if not wait:
            return
        final = _wait_with_progress(client, queued.id, timeout)
    _print_nodes(final)
    if final.status != "done":
        raise typer.Exit(1)


def _wait_with_progress(client: Any, purge_id: int, timeout: float) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("Purging"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cache nodes answered"),
        transient=False,
    ) as progress:
        task = progress.add_task("purge", total=None)

        def show(current: Any) -> None:
            nodes = current.nodes or []
            answered = sum(1 for node in nodes if node.finished)
            progress.update(task, total=max(len(nodes), 1), completed=answered if nodes else 1)

        try:
            return client.purges.wait(purge_id, timeout=timeout, on_update=show)
        except TimeoutError as exc:
            raise _fail(f"{exc} Check later with the purge ID.") from exc


def _print_nodes(final: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Purge {final.id}: {final.status}")
    for column in ("Cache node", "Result", "Attempts", "Reason"):
        table.add_column(column)
    for node in final.nodes or []:
        table.add_row(node.node, node.status, str(node.attempts), node.last_error or "")
    Console(highlight=False).print(table)


def main() -> None:
    app(prog_name="paradarum")


if __name__ == "__main__":
    main()
