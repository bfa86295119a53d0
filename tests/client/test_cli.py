"""The customer's commands through Typer's runner, against a real running server."""

from __future__ import annotations

import json
import re
import stat
import uuid

import httpx
import pytest

from paradarum_client.console import moment
from paradarum_client.models import parse_time
from tests.client.harness import KEY, Cli, active_zone, new_hostname, signed_in
from tests.support import signup

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(api_server, tmp_path) -> Cli:
    return Cli(api_server.url, tmp_path / "config")


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
    # The API's own NewKey shape, camelCase as on the wire.
    assert {"id", "name", "key", "keyPrefix", "createdAt", "isRevoked"} <= set(data)
    assert data["name"] == "CI" and KEY.fullmatch(data["key"]) and data["isRevoked"] is False
    shown_once = set(cli.outputs)

    listed = cli("keys", "list")
    assert listed.exit_code == 0, listed.output
    assert "WordPress" in listed.output and key[:8] in listed.output
    assert data["keyPrefix"] in listed.output
    listed_json = json.loads(cli("keys", "list", "--json").stdout)
    assert [item["keyPrefix"] for item in listed_json] == [data["keyPrefix"], key[:8]]

    kept = cli("keys", "revoke", str(data["id"]), input="n\n")
    assert kept.exit_code == 0 and "Nothing was changed." in kept.output
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


def test_revoke_asks_to_confirm_naming_the_key_by_name_and_prefix(cli, api_server):
    signed_in(cli, api_server.url)
    created = json.loads(cli("keys", "create", "Shop deploys", "--json").stdout)
    asked = cli("keys", "revoke", str(created["id"]), input="n\n")
    assert asked.exit_code == 0  # "no" is an answer, not an error
    assert asked.output.splitlines()[-1] == "Nothing was changed."
    assert "Aborted" not in asked.output
    question = asked.output.splitlines()[0]
    assert f'Revoke API key {created["id"]} "Shop deploys" ({created["keyPrefix"]}…)' in question

    unknown = cli("keys", "revoke", "987654321")
    assert unknown.exit_code == 1 and "No API key with ID 987654321" in unknown.output
    assert "Revoke" not in unknown.output  # nothing to confirm

    assert cli("keys", "revoke", str(created["id"]), "--yes").exit_code == 0
    twice = cli("keys", "revoke", str(created["id"]))
    assert twice.exit_code == 1 and "already revoked" in twice.output
    assert '"Shop deploys"' in twice.output


def test_purge_commands_accept_urls_tags_or_everything(cli, api_server):
    host = active_zone(api_server, signed_in(cli, api_server.url))
    key = json.loads(cli("keys", "create", "purger", "--json").stdout)["key"]
    env = {"PARADARUM_API_KEY": key}

    by_url = cli("purge", f"https://{host}/a", f"https://{host}/b", env=env)
    assert by_url.exit_code == 0, by_url.output
    assert re.search(r"Purge \d+ accepted \(2 URLs\)", by_url.output)

    by_tag = cli("purge", "--tag", "product-1", "-t", "product-2", "--wait", env=env)
    assert by_tag.exit_code == 0, by_tag.output
    assert "2 tags" in by_tag.output
    assert "1/1 cache nodes answered" in by_tag.output
    # A cache node is shown by its label, never by its address.
    assert "node-1" in by_tag.output and "done" in by_tag.output
    assert api_server.node.base_url not in by_tag.output

    everything = cli("purge", "--everything", "--wait", env=env)
    assert everything.exit_code == 0, everything.output
    assert "(everything)" in everything.output

    for args in ((), ("https://a.example/", "--everything"), ("--tag", "t", "--everything")):
        refused = cli("purge", *args, env=env)
        assert refused.exit_code == 2
        assert "exactly one" in refused.output
    invalid = cli("purge", "not-a-url", env=env)
    assert invalid.exit_code == 1
    # The summary first, then one line per problem.
    lines = invalid.output.splitlines()
    assert lines[0].startswith("Error: ") and "urls:" in lines[1] and "Item 1" in lines[1]

    created_at = next(i for i, output in enumerate(cli.outputs) if key in output)
    assert not any(key in output for output in cli.outputs[created_at + 1 :])


def test_purges_list_and_show_find_a_purge_by_the_id_purge_printed(cli, api_server):
    host = active_zone(api_server, signed_in(cli, api_server.url))
    queued = cli("purge", f"https://{host}/show-me", f"https://{host}/and-me")
    purge_id = re.search(r"Purge (\d+) accepted", queued.output).group(1)
    assert f"paradarum purges show {purge_id}" in queued.output
    cli("purge", "--tag", "later")

    shown = cli("purges", "show", purge_id)
    assert shown.exit_code == 0, shown.output
    assert f"Purge {purge_id}: " in shown.output and "Targets (urls):" in shown.output
    assert f"https://{host}/show-me" in shown.output
    assert f"https://{host}/and-me" in shown.output
    as_json = json.loads(cli("purges", "show", purge_id, "--json").stdout)
    assert as_json["id"] == int(purge_id) and "nodes" in as_json

    listed = cli("purges", "list", env={"COLUMNS": "120"})
    assert listed.exit_code == 0, listed.output
    assert f"https://{host}/show-me (+1 more)" in listed.output
    ids = [item["id"] for item in json.loads(cli("purges", "list", "--json").stdout)]
    assert ids[1] == int(purge_id) and ids == sorted(ids, reverse=True)
    assert len(json.loads(cli("purges", "list", "--limit", "1", "--json").stdout)) == 1

    missing = cli("purges", "show", "987654321")
    assert missing.exit_code == 1 and missing.output.startswith("Error: ")


def test_a_wait_that_times_out_says_how_to_check_later(stalled_server, tmp_path):
    cli = Cli(stalled_server.url, tmp_path / "config")
    active_zone(stalled_server, signed_in(cli, stalled_server.url))
    waited = cli("purge", "--tag", "slow", "--wait", "--timeout", "1")
    assert waited.exit_code == 1
    purge_id = re.search(r"Purge (\d+) accepted", waited.output).group(1)
    assert f"Check later with `paradarum purges show {purge_id}`" in waited.output

    later = cli("purges", "show", purge_id)
    assert later.exit_code == 0, later.output
    assert f"Purge {purge_id}: queued" in later.output
    assert "queued" in later.output.split("Cache node")[1]


def test_a_purge_that_reached_no_cache_node_warns_that_nothing_was_purged(
    nodeless_server, tmp_path
):
    cli = Cli(nodeless_server.url, tmp_path / "config")
    active_zone(nodeless_server, signed_in(cli, nodeless_server.url))
    warning = "no cache node is configured on the server, so nothing was purged"
    for args in (("--everything", "--wait"), ("--tag", "t")):
        result = cli("purge", *args)
        assert result.exit_code == 0, result.output
        assert warning in result.output
        assert "cache nodes answered" not in result.output and "Cache node" not in result.output
    purge_id = re.search(r"Purge (\d+) accepted", cli.outputs[-1]).group(1)
    shown = cli("purges", "show", purge_id)
    assert warning in shown.output and "Cache node" not in shown.output


def test_a_429_says_try_again_once_and_how_long_to_wait(cli, api_server):
    email = f"limited-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=api_server.url) as http:
        signup(http, email)
    for _ in range(3):  # the server's limit for these tests
        assert cli("login", "--email", email, input="wrong password!\n").exit_code == 1
    limited = cli("login", "--email", email, input="wrong password!\n")
    assert limited.exit_code == 1
    (line,) = [line for line in limited.output.splitlines() if line.startswith("Error:")]
    assert line.count("Try again") == 1
    assert re.search(r"\(retry in \d+ s\)$", line), line


def test_keys_list_fits_80_columns_without_cutting_timestamps(cli, api_server):
    signed_in(cli, api_server.url)
    long_name = "Nightly cache warm-up job for the storefront, the blog and the shop API"
    created = json.loads(cli("keys", "create", long_name, "--json").stdout)
    key = created["key"]
    assert cli("keys", "list", env={"PARADARUM_API_KEY": key}).exit_code == 0  # a use
    listed = cli("keys", "list", env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    # At 80 columns: last used, whole, and status and expiry; "Created" needs more room.
    row = next(line for line in listed.output.splitlines() if created["keyPrefix"] in line)
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", row)) == 1, listed.output
    assert re.search(r"active +never$", row.rstrip()), row
    assert "…" not in listed.output
    wide = cli("keys", "list", env={"COLUMNS": "120"})
    row = next(line for line in wide.output.splitlines() if created["keyPrefix"] in line)
    assert moment(parse_time(created["createdAt"])) in row
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", row)) == 2, wide.output


def test_customer_text_is_printed_literally_never_as_rich_markup(cli, api_server):
    # Short enough that a list of purges shows the whole URL (+ the markup below).
    host = active_zone(api_server, signed_in(cli, api_server.url), new_hostname("t"))
    names = ["[/bold]", "[link=https://evil.example]support[/link]", "[red]x[/red] \\[b]"]
    for name in names:
        assert cli("keys", "create", name).exit_code == 0
    listed = cli("keys", "list", env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    for name in names:
        assert name in listed.output
    assert "\x1b]8;" not in listed.output  # no terminal hyperlink

    url = f"https://{host}/[link=https://e.x]x[/link]"
    queued = cli("purge", url, "--wait", env={"COLUMNS": "200"})
    assert queued.exit_code == 0, queued.output
    purge_id = re.search(r"Purge (\d+) accepted", queued.output).group(1)
    assert cli("purge", "--tag", "[/bold]").exit_code == 0
    for args in (("purges", "show", purge_id), ("purges", "list")):
        shown = cli(*args, env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        assert url in shown.output
    assert "[/bold]" in cli("purges", "list", env={"COLUMNS": "200"}).output


def test_commands_without_credentials_say_how_to_sign_in(cli):
    result = cli("keys", "list")
    assert result.exit_code == 1
    assert "paradarum login" in result.output and "PARADARUM_API_KEY" in result.output


def test_a_stored_session_is_not_sent_to_another_server(cli, api_server):
    signed_in(cli, api_server.url)
    result = cli("keys", "list", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "Not signed in" in result.output
