"""The README's curl walk-through is true: run it, as written, against a real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import start_server

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

pytestmark = pytest.mark.slow


def walkthrough() -> str:
    text = README.read_text()
    match = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)```", text, re.S)
    assert match, "README walk-through block not found"
    return match.group(1)


def test_the_walkthrough_is_paste_safe():
    """Pasted as one block, nothing may wait for input: a prompt would swallow the
    lines after it in terminals without bracketed paste."""
    script = walkthrough()
    assert not re.search(r"(^|[;&|(]\s*)read\b", script, re.M), "the walk-through reads input"
    assert "getpass" not in script


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_walkthrough_works_as_written(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server({"PARADARUM_DATA_DIR": str(data_dir)}, log_path=tmp_path / "server.log")
    # The operator's command works on the server's data directory, as `make run`'s
    # ./data is when the walk-through runs from the repository root.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env["PARADARUM_DATA_DIR"] = str(data_dir)
    script = walkthrough().replace("http://127.0.0.1:8000", server.base_url)
    # This interpreter's own command: .venv/bin/paradarum under `make test`.
    command = Path(sys.executable).parent / "paradarum"
    script = script.replace(".venv/bin/paradarum", str(command))
    try:
        # Pasted twice against the same server: each time a new account, and it works.
        results = [
            subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
                env=env,
            )
            for _ in range(2)
        ]
    finally:
        server.stop()
    emails = []
    for result in results:
        assert result.returncode == 0, result.stderr
        out = result.stdout
        lines = out.strip().splitlines()
        found = re.match(
            r"Your email: (you-[0-9a-f]{6}@example\.com)  password: [0-9a-f]{24}$", lines[0]
        )
        assert found, lines[0]
        email = found.group(1)
        emails.append(email)
        site = email.replace("you-", "www-").replace("@", ".")
        assert '"message":"Account created"' in lines[1]
        assert re.search(r"Your key: pdm_[A-Za-z0-9]{28}$", out, re.M)
        assert '"message":"API keys"' in out
        assert out.count(f'"email":"{email}"') >= 2
        assert re.search(
            rf"Added zone \d+ \({re.escape(site)}\) to {re.escape(email)}: active\.", out
        )
        assert "No cache node is configured on this server" in out  # the purge's 202
        assert "not among your active zones: www.example.org" in out  # the 403
        assert '"message":"API key revoked"' in out
        assert lines[-1] == "401"
    assert emails[0] != emails[1]


def test_the_walkthrough_stops_with_the_apis_sentence_when_a_step_is_refused():
    """Its field() helper: the API's message and a non-zero status, not a traceback."""
    found = re.search(r"^field\(\) \{.*?; \}$", walkthrough(), re.S | re.M)
    assert found
    helper = found.group(0)
    refused = '{"succeeded": false, "message": "Wrong email or password.", "data": null}'
    result = subprocess.run(
        ["bash", "-c", f"{helper}\necho '{refused}' | field \"['token']\""],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: Wrong email or password."
    assert "Traceback" not in result.stderr


def cli_walkthrough() -> str:
    match = re.search(r"<!-- cli-walkthrough -->\n```sh\n(.*?)```", README.read_text(), re.S)
    assert match, "README command-line walk-through block not found"
    return match.group(1)


def test_the_cli_walkthrough_names_no_literal_id():
    """IDs differ from server to server: every command that takes one gets it from the
    output of the one before, never a number written into the README."""
    for line in cli_walkthrough().splitlines():
        command = line.split("#")[0]
        assert not re.search(r"\b(verify|show|roll|revoke|usage|delete)\s+\d+\b", command), line


LITERAL_ID = re.compile(
    r"\b(verify|show|roll|revoke|usage|delete|remove)\s+\d+\b"
    r"|/(zones|apikeys|purges|members|invitations|trust-policies|passkeys)/\d+\b"
)


def test_no_shell_example_in_the_docs_names_a_literal_id():
    """The same rule for every shell block of the README and the docs: an example
    pasted on a server with other accounts must act on what the command before made."""
    pages = [README, ROOT / "client" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = []
    for page in pages:
        for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                if LITERAL_ID.search(line.split("#")[0]):
                    found.append(f"{page.relative_to(ROOT)}: {line}")
    assert found == []


VERIFIED_BY_ID = """
import sys
from datetime import UTC, datetime

from sqlalchemy import update

from paradarum.db.tables import zones
from tests.support import run, runtime_for

data_dir, zone_id = sys.argv[1], int(sys.argv[2])
with runtime_for({"PARADARUM_DATA_DIR": data_dir}) as runtime:

    def work(conn):
        values = {"status": "active", "verified_at": datetime.now(UTC)}
        assert conn.execute(update(zones).where(zones.c.id == zone_id).values(values)).rowcount

    run(runtime.db.write(work))
"""


def test_the_cli_walkthrough_works_as_pasted_on_a_server_with_other_accounts(tmp_path):
    from tests.support import PASSWORD, bearer, create_key, new_account, signup

    data_dir = tmp_path / "data"
    server = start_server({"PARADARUM_DATA_DIR": str(data_dir)}, log_path=tmp_path / "server.log")
    command = Path(sys.executable).parent / "paradarum"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env.update({"PARADARUM_DATA_DIR": str(data_dir), "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    try:
        import httpx

        with httpx.Client(base_url=server.base_url) as http:
            # Others were here first: ID 1 is nobody's of ours.
            for n in range(3):
                token = new_account(http, f"other-{n}@example.com")
                create_key(http, token, "theirs")
                http.post(
                    "/api/account/zones",
                    json={"hostname": f"o{n}.example.net"},
                    headers=bearer(token),
                )
            signup(http, "you@example.com")
        script = cli_walkthrough().replace("http://127.0.0.1:8000", server.base_url)
        script = script.replace("source .venv/bin/activate", f"PATH={command.parent}:$PATH")
        # Nothing publishes the DNS record here: the zone the script names by the ID it
        # read is made active in the server's data, as a verify would.
        helper = tmp_path / "verified.py"
        helper.write_text(VERIFIED_BY_ID)
        script = script.replace(
            'paradarum zones verify "$ZONE_ID"',
            f'PYTHONPATH={ROOT} {sys.executable} {helper} {data_dir} "$ZONE_ID"',
        )
        work = tmp_path / "work"
        work.mkdir()
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            input=f"you@example.com\n{PASSWORD}\n",
            capture_output=True,
            text=True,
            timeout=180,
            cwd=work,
            env=env,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    accepted = re.search(r"Purge (\d+) accepted", out)
    assert accepted and f"Purge {accepted.group(1)}: done" in out  # `purges show`, by its ID
    rolled = re.search(r"Rolled API key (\d+) \(deploy script\)", out)
    assert rolled and rolled.group(1) != "1", out  # ours, not the first account's
