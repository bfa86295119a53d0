"""Running the customer's ``paradarum`` commands in-process, against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from typer.testing import CliRunner, Result

from paradarum import cli as server_cli
from paradarum_client.cli import build_app
from tests.support import PASSWORD, signup

KEY = re.compile(r"pdm_[A-Za-z0-9]{28}")


def new_hostname(label: str = "site") -> str:
    """A hostname no other test uses: a hostname is active in one account at most."""
    return f"{label}-{uuid.uuid4().hex[:10]}.example.com"


def operator(data_dir: Path, *args: str) -> Result:
    """The server's ``paradarum`` (operator commands included) on the data directory
    of a running server, as an operator runs it on the server's host."""
    return CliRunner().invoke(
        server_cli.build_app(),
        [*args, "--data-dir", str(data_dir)],
        env={"PARADARUM_DATABASE_URL": None, "PARADARUM_DATA_DIR": None},
    )


def active_zone(server: object, email: str, hostname: str | None = None) -> str:
    """Make ``hostname`` (a fresh one by default) an active zone of ``email``'s account,
    without DNS: ``paradarum zones add EMAIL HOSTNAME --verified``, as a platform's
    operator does. Returns the hostname; purges of its URLs are then the account's."""
    hostname = hostname or new_hostname()
    result = operator(server.data_dir, "zones", "add", email, hostname, "--verified")  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert ": active." in result.output, result.output
    return hostname


class Cli:
    """Runs commands with a private config directory; remembers every output."""

    def __init__(self, url: str, config_home: Path) -> None:
        self.runner = CliRunner()
        self.app = build_app()
        self.env = {
            "PARADARUM_URL": url,
            "XDG_CONFIG_HOME": str(config_home),
            "PARADARUM_API_KEY": "",
            "COLUMNS": "80",
        }
        self.outputs: list[str] = []

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        result = self.runner.invoke(
            self.app, list(args), input=input, env={**self.env, **(env or {})}
        )
        self.outputs.append(result.output)
        return result


def signed_in(cli: Cli, url: str) -> str:
    """Sign up a fresh account and ``paradarum login`` as it; returns its email."""
    email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url) as http:
        signup(http, email)
    result = cli("login", input=f"{email}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    return email


def run_paradarum(
    *args: str, env: dict[str, str], input: bytes = b""
) -> subprocess.CompletedProcess:
    """The installed ``paradarum`` script in a process of its own, as a user runs it.

    In-process runs catch exceptions for the test; only a real process shows whether
    a traceback reaches the terminal.
    """
    script = Path(sys.executable).parent / "paradarum"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    return subprocess.run(
        [str(script), *args],
        env={**base, "COLUMNS": "80", **env},
        input=input,
        capture_output=True,
        timeout=60,
        check=False,
    )
