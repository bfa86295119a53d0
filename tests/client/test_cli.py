"""The CLI commands through Typer's runner, against a real running server."""

from __future__ import annotations

import json
import re
import stat
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from paradarum.cli import app
from tests.support import PASSWORD, signup

pytestmark = pytest.mark.slow

KEY = re.compile(r"pdm_[A-Za-z0-9]{28}")


class Cli:
    """Runs commands with a private config directory; remembers every output."""

    def __init__(self, url: str, config_home: Path) -> None:
        self.runner = CliRunner()
        self.env = {
            "PARADARUM_URL": url,
            "XDG_CONFIG_HOME": str(config_home),
            "PARADARUM_API_KEY": "",
        }
        self.outputs: list[str] = []

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None):
        result = self.runner.invoke(app, list(args), input=input, env={**self.env, **(env or {})})
        self.outputs.append(result.output)
        return result


@pytest.fixture
def cli(api_server, tmp_path) -> Cli:
    return Cli(api_server.url, tmp_path / "config")


def signed_in(cli: Cli, url: str) -> str:
    email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url) as http:
        signup(http, email)
    result = cli("login", input=f"{email}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    return email


def test_login_keeps_the_session_token_in_a_private_file(cli, api_server, tmp_path):
    email = signed_in(cli, api_server.url)
    session_file = tmp_path / "config" / "paradarum" / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(session_file.parent.stat().st_mode) == 0o700
    stored = json.loads(session_file.read_text())
    assert stored["url"] == api_server.url
    assert stored["token"] not in "".join(cli.outputs)
    assert email in cli.outputs[-1]

    wrong = cli("login", "--email", email, input="wrong password!\n")
    assert wrong.exit_code == 1
    assert "Wrong email or password" in wrong.output
    assert json.loads(session_file.read_text())["token"] == stored["token"]

    signed_out = cli("logout")
    assert signed_out.exit_code == 0 and "Signed out" in signed_out.output
    assert not session_file.exists()
    ended = httpx.get(
        api_server.url + "/api/account", headers={"Authorization": f"Bearer {stored['token']}"}
    )
    assert ended.status_code == 401
    assert cli("keys", "list").exit_code == 1
    assert stored["token"] not in "".join(cli.outputs)


def test_key_commands_show_the_key_only_when_it_is_created(cli, api_server):
    signed_in(cli, api_server.url)
    created = cli("keys", "create", "WordPress purge plugin")
    assert created.exit_code == 0, created.output
    (key,) = KEY.findall(created.output)
    as_json = cli("keys", "create", "CI", "--json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert set(data) == {"id", "name", "key", "keyPrefix", "createdAt"}
    assert data["name"] == "CI" and KEY.fullmatch(data["key"])
    shown_once = set(cli.outputs)

    listed = cli("keys", "list")
    assert listed.exit_code == 0, listed.output
    assert "WordPress" in listed.output and key[:8] in listed.output
    assert data["keyPrefix"] in listed.output

    kept = cli("keys", "revoke", str(data["id"]), input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    assert "active" in cli("keys", "list", "--status", "active").output.split(data["keyPrefix"])[1]

    revoked = cli("keys", "revoke", str(data["id"]), input="y\n")
    assert revoked.exit_code == 0, revoked.output
    assert "Revoked API key" in revoked.output
    again = cli("keys", "revoke", str(data["id"]), "--yes")
    assert again.exit_code == 1 and "already revoked" in again.output
    missing = cli("keys", "revoke", "987654321", "--yes")
    assert missing.exit_code == 1 and "No API key" in missing.output
    revoked_list = cli("keys", "list", "--status", "revoked")
    assert data["keyPrefix"] in revoked_list.output and key[:8] not in revoked_list.output

    # An API key in the environment works too, and is never echoed.
    with_key = cli(
        "keys", "list", env={"PARADARUM_API_KEY": key, "XDG_CONFIG_HOME": "/nonexistent"}
    )
    assert with_key.exit_code == 0, with_key.output

    others = [output for output in cli.outputs if output not in shown_once]
    assert others and not any(KEY.search(output) for output in others)


def test_purge_commands_accept_urls_tags_or_everything(cli, api_server):
    signed_in(cli, api_server.url)
    key = json.loads(cli("keys", "create", "purger", "--json").stdout)["key"]
    env = {"PARADARUM_API_KEY": key}

    by_url = cli("purge", "https://www.example.com/a", "https://www.example.com/b", env=env)
    assert by_url.exit_code == 0, by_url.output
    assert re.search(r"Purge \d+ accepted \(2 URLs\)", by_url.output)

    by_tag = cli("purge", "--tag", "product-1", "-t", "product-2", "--wait", env=env)
    assert by_tag.exit_code == 0, by_tag.output
    assert "2 tags" in by_tag.output
    assert "cache nodes answered" in by_tag.output
    assert api_server.node.base_url in by_tag.output and "done" in by_tag.output

    everything = cli("purge", "--everything", "--wait", env=env)
    assert everything.exit_code == 0, everything.output
    assert "(everything)" in everything.output

    for args in ((), ("https://a.example/", "--everything"), ("--tag", "t", "--everything")):
        refused = cli("purge", *args, env=env)
        assert refused.exit_code == 2
        assert "exactly one" in refused.output
    invalid = cli("purge", "not-a-url", env=env)
    assert invalid.exit_code == 1
    assert "urls:" in invalid.output and "Item 1" in invalid.output

    created_at = next(i for i, output in enumerate(cli.outputs) if key in output)
    assert not any(key in output for output in cli.outputs[created_at + 1 :])


def test_commands_without_credentials_say_how_to_sign_in(cli):
    result = cli("keys", "list")
    assert result.exit_code == 1
    assert "paradarum login" in result.output and "PARADARUM_API_KEY" in result.output


def test_a_stored_session_is_not_sent_to_another_server(cli, api_server):
    signed_in(cli, api_server.url)
    result = cli("keys", "list", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "Not signed in" in result.output


def test_the_existing_commands_are_still_there():
    runner = CliRunner()
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    for command in ("serve", "db", "accounts", "login", "logout", "keys", "purge"):
        assert command in result.output
