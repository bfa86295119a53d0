"""``paradarum scan`` and the pre-commit hook find real keys, show only their prefix, and
ignore look-alikes. Keys are generated here, at run time: none is committed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paradarum.keys import generate
from paradarum_client.cli import build_app

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "client" / "hooks" / "paradarum-scan"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def wrong_checksum(key: str) -> str:
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def scan(*args: str, input: bytes | None = None):
    return CliRunner().invoke(build_app(), ["scan", *args], input=input)


def finding(path: str, line: int, column: int, key: str) -> str:
    return f"{path}:{line}:{column}: Paradarum API key {key[:8]}… (revoke it and create a new one)"


def test_scan_reports_each_key_by_path_line_column_and_its_prefix_only(tmp_path):
    first, second, third = generate(), generate(), generate()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "settings.py").write_text(
        f'DEBUG = True\nPARADARUM_API_KEY = "{first}"\n# and again: {second}\n'
    )
    (tmp_path / "deploy.sh").write_text(f"export PARADARUM_API_KEY={third}\r\n")
    (tmp_path / "README.md").write_text("Nothing secret here.\n")

    result = scan(str(tmp_path))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        finding(f"{tmp_path}/app/settings.py", 2, 22, first),
        finding(f"{tmp_path}/app/settings.py", 3, 14, second),
        finding(f"{tmp_path}/deploy.sh", 1, 26, third),
    ]
    for key in (first, second, third):
        assert key not in result.output and key[:9] not in result.output


def test_scan_ignores_key_shaped_strings_with_a_wrong_checksum(tmp_path):
    lookalike = wrong_checksum(generate())
    (tmp_path / "example.md").write_text(f"Send it as `X-API-Key: {lookalike}`.\n")
    (tmp_path / "longer.txt").write_text(f"x{generate()}x and {generate()}9\n")  # inside words
    result = scan(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_scan_skips_binary_files_and_git_directories(tmp_path):
    key = generate()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "COMMIT_EDITMSG").write_text(key)
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0" + key.encode())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text(key)
    result = scan(str(tmp_path))
    assert result.exit_code == 1
    assert result.output.splitlines() == [finding(f"{tmp_path}/sub/notes.txt", 1, 1, key)]


def test_scan_reads_standard_input_without_a_path_or_for_a_dash(tmp_path):
    key = generate()
    for args in ((), ("-",)):
        result = scan(*args, input=f"first line\n  {key}\n".encode())
        assert result.exit_code == 1
        assert result.output == finding("<stdin>", 2, 3, key) + "\n"
    clean = scan(input=b"no key here\n")
    assert clean.exit_code == 0 and clean.output == ""


def test_scan_exits_2_on_usage_errors(tmp_path):
    missing = scan(str(tmp_path / "no-such-file"))
    assert missing.exit_code == 2
    assert "no such file or directory" in missing.output
    assert scan("--no-such-option").exit_code == 2


def test_the_hook_script_needs_nothing_but_the_standard_library(tmp_path):
    key = generate()
    (tmp_path / "leak.env").write_text(f"KEY={key}\n")
    (tmp_path / "clean.txt").write_text("nothing\n")
    # -S: no site-packages at all, so neither httpx nor anything else installed.
    leak = subprocess.run(
        [sys.executable, "-S", str(HOOK), str(tmp_path / "clean.txt"), str(tmp_path / "leak.env")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert leak.returncode == 1, leak.stderr
    assert leak.stdout == finding(str(tmp_path / "leak.env"), 1, 5, key) + "\n"
    clean = subprocess.run(
        [sys.executable, "-S", str(HOOK), str(tmp_path / "clean.txt")],
        capture_output=True,
        check=False,
    )
    assert clean.returncode == 0 and clean.stdout == b""


def git(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_the_pre_commit_hook_refuses_a_commit_that_adds_a_key(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "customer"
    repo.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Customer",
        "GIT_AUTHOR_EMAIL": "customer@example.com",
        "GIT_COMMITTER_NAME": "Customer",
        "GIT_COMMITTER_EMAIL": "customer@example.com",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
    }
    assert git(repo, "init", "-q", env=env).returncode == 0
    # The real pre-commit tool runs this repository's hook (try-repo also picks up
    # uncommitted changes here) on the files staged for the commit. git gives hooks
    # its own GIT_INDEX_FILE, which would make pre-commit read this repository with
    # the customer's index: the hook drops it.
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(
        f"#!/bin/sh\nunset GIT_INDEX_FILE\nexec '{PRE_COMMIT}' try-repo '{ROOT}' paradarum-scan\n"
    )
    hook.chmod(0o755)

    key = generate()
    (repo / "config.php").write_text(f"<?php\ndefine('PARADARUM_API_KEY', '{key}');\n")
    git(repo, "add", "config.php", env=env)
    refused = git(repo, "commit", "-m", "Add the purge plugin's settings", env=env)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert finding("config.php", 2, 30, key) in refused.stdout + refused.stderr
    assert key not in refused.stdout + refused.stderr
    assert git(repo, "rev-parse", "--verify", "HEAD", env=env).returncode != 0  # no commit

    (repo / "config.php").write_text(
        "<?php\ndefine('PARADARUM_API_KEY', getenv('PARADARUM_API_KEY'));\n"
    )
    git(repo, "add", "config.php", env=env)
    accepted = git(repo, "commit", "-m", "Read the key from the environment", env=env)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "Paradarum API keys" in accepted.stdout + accepted.stderr  # the hook ran
    assert git(repo, "log", "--oneline", env=env).stdout.count("\n") == 1
