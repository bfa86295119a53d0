"""What `make run` and `make test` install: serving needs the runtime only; the test
toolchain (Playwright, mypy, Schemathesis, pre-commit...) comes with `make test`."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ("pytest", "playwright", "mypy", "schemathesis", "pre-commit", "ruff", "aiosmtpd")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned(target: str, venv: Path) -> list[str]:
    """The commands `make TARGET` would run on a fresh clone (no venv yet)."""
    done = subprocess.run(
        ["make", "--dry-run", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in done.stdout.splitlines() if line and not line.startswith("make")]


def test_make_run_installs_the_runtime_then_serves_and_nothing_of_the_test_toolchain(tmp_path):
    commands = planned("run", tmp_path / "venv")
    installs = [line for line in commands if " install " in line]
    assert any(re.search(r"pip install (--\S+ )*-e \.$", line) for line in installs), installs
    assert not any("dev" in line for line in installs), installs
    assert commands[-1].split()[0].endswith("/bin/paradarum"), commands
    assert commands[-1].split()[1] == "serve", commands


def test_make_test_adds_the_dev_extras(tmp_path):
    commands = planned("test", tmp_path / "venv")
    assert any(".[dev]" in line for line in commands if " install " in line), commands


def test_the_runtime_dependencies_hold_no_test_tool():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0] for spec in project["dependencies"]]
    assert not set(names) & set(TOOLCHAIN), names
    dev = [
        re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]
        for spec in project["optional-dependencies"]["dev"]
    ]
    assert {"pytest", "playwright", "mypy"} <= set(dev)
