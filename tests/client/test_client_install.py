"""The client distribution installs alone, pulls only what a client needs, and works.

A fresh virtual environment, ``pip install ./client`` (from the package index, like a
customer), then the client and the ``paradarum`` command in it against a real server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

import paradarum
from tests.support import PASSWORD, signup

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVER_STACK = {
    "fastapi",
    "starlette",
    "sqlalchemy",
    "psycopg",
    "psycopg-binary",
    "psycopg-pool",
    "argon2-cffi",
    "redis",
    "uvicorn",
    "granian",
    "pydantic",
    "pydantic-settings",
    "alembic",
    "paradarum",
}
# What `python -m venv` puts there itself.
VENV_BOOTSTRAP = {"pip", "setuptools", "wheel"}

# Run in the fresh environment: every installed distribution with the names it
# requires (requirements behind an extra are not installed, so not followed).
INVENTORY = r"""
import json, re
from importlib.metadata import distributions

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

found = {}
for dist in distributions():
    requires = [r for r in (dist.requires or []) if "extra ==" not in r]
    found[norm(dist.metadata["Name"])] = [
        norm(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in requires
    ]
print(json.dumps(found))
"""

USE_THE_API = r"""
import json, sys
from paradarum_client import Client

url, email, password = sys.argv[1:4]
with Client(base_url=url, token="") as anonymous:
    session = anonymous.login(email, password)
with Client(token=session.token, base_url=url) as panel:
    created = panel.keys.create("installed alone")
with Client(api_key=created.key, base_url=url) as client:
    listed = client.keys.list()
print(json.dumps({"created": created.id, "prefix": created.key_prefix,
                  "listed": [key.id for key in listed], "key": created.key}))
"""


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Never in the checkout: Python would find the server's metadata and code there.
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def dependency_closure(found: dict[str, list[str]], root: str) -> set[str]:
    seen: set[str] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        if name in seen or name not in found:
            continue
        seen.add(name)
        pending.extend(found[name])
    return seen


def test_the_client_installs_alone_and_talks_to_a_real_server(api_server, tmp_path):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = str(venv / "bin" / "python")
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        str(ROOT / "client"),
        cwd=tmp_path,
    )

    found = json.loads(run(python, "-c", INVENTORY, cwd=tmp_path).stdout)
    installed = set(found)
    assert {"paradarum-client", "httpx", "msgspec"} <= installed
    assert not installed & SERVER_STACK, installed & SERVER_STACK
    assert not installed & {"typer", "rich", "click"}  # the command line is an extra
    # Nothing but the client, httpx, msgspec and what httpx needs.
    assert installed - VENV_BOOTSTRAP == dependency_closure(found, "paradarum-client")
    assert set(found["paradarum-client"]) == {"httpx", "msgspec"}

    # The library works without the command line's packages.
    email = f"installed-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=api_server.url) as http:
        signup(http, email)
    used = json.loads(
        run(python, "-c", USE_THE_API, api_server.url, email, PASSWORD, cwd=tmp_path).stdout
    )
    assert used["listed"] == [used["created"]]

    # The command says what it needs, in one line.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    bare = subprocess.run(
        [str(venv / "bin" / "paradarum"), "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert bare.returncode == 1
    assert bare.stderr.strip() == (
        "Error: the paradarum command needs the client's command-line extra: "
        "pip install 'paradarum-client[cli]'"
    )

    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        f"{ROOT / 'client'}[cli]",
        cwd=tmp_path,
    )
    found = json.loads(run(python, "-c", INVENTORY, cwd=tmp_path).stdout)
    assert {"typer", "rich"} <= set(found)
    version = run(str(venv / "bin" / "paradarum"), "--version", cwd=tmp_path, env=env).stdout
    assert version.split() == ["paradarum", paradarum.__version__]

    listed = run(
        str(venv / "bin" / "paradarum"),
        "keys",
        "list",
        cwd=tmp_path,
        env={**env, "PARADARUM_URL": api_server.url, "PARADARUM_API_KEY": used["key"]},
    )
    assert used["prefix"] in listed.stdout and used["key"] not in listed.stdout


def test_the_command_lines_packages_are_capped_only_at_a_major_version():
    """Other tools share Typer and Rich with the command line: a cap below the next
    major version (``typer<0.29``) would keep them from installing side by side."""
    import tomllib

    for pyproject in (ROOT / "client" / "pyproject.toml", ROOT / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        specs = [*project["dependencies"], *project.get("optional-dependencies", {}).get("cli", [])]
        for spec in specs:
            name = re.match(r"[A-Za-z0-9._-]+", spec).group(0).lower()
            if name not in ("typer", "rich", "click"):
                continue
            for bound in re.findall(r"<\s*([0-9][0-9.]*)", spec):
                assert re.fullmatch(r"[0-9]+(\.0)*", bound), (pyproject.name, spec)
