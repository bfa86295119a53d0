"""The README's curl walk-through is true: run it, as written, against a real server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import start_server

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.slow


def walkthrough() -> str:
    text = README.read_text()
    match = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)```", text, re.S)
    assert match, "README walk-through block not found"
    return match.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_walkthrough_works_as_written(tmp_path):
    server = start_server(
        {"PARADARUM_DATA_DIR": str(tmp_path / "data")}, log_path=tmp_path / "server.log"
    )
    try:
        script = walkthrough().replace("http://127.0.0.1:8000", server.base_url)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            input="a long walkthrough password\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert '"message":"Account created"' in lines[0]
    assert re.search(r"Your key: pdm_[A-Za-z0-9]{28}$", result.stdout, re.M)
    assert '"message":"API keys"' in result.stdout
    assert result.stdout.count('"email":"you@example.com"') >= 3
    assert '"message":"API key revoked"' in result.stdout
    assert lines[-1] == "401"
