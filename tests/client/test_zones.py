"""Zones through the client and the command line, against a real server and a real DNS
server; an operator's zones through the server's command, on the server's database."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import pytest

from paradarum import cli as server_cli
from paradarum_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ForbiddenError,
    NotFoundError,
    ValidationError,
    models,
)
from tests.client.harness import Cli, active_zone, new_hostname, operator, signed_in
from tests.support import PASSWORD, signup

pytestmark = pytest.mark.slow


def new_account(url: str) -> tuple[str, str]:
    """A new account's email and a session token for it."""
    email = f"zones-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url) as http:
        signup(http, email)
    with Client(base_url=url, token="") as anonymous:
        return email, anonymous.login(email, PASSWORD).token


@pytest.fixture
def cli(zone_server, tmp_path) -> Cli:
    return Cli(zone_server.url, tmp_path / "config")


def test_a_zone_is_added_verified_once_its_txt_record_exists_and_deleted(zone_server, dns_server):
    _, token = new_account(zone_server.url)
    hostname = new_hostname("www")
    with Client(token=token, base_url=zone_server.url) as client:
        added = client.zones.add(hostname.upper())
        assert type(added) is models.Zone and type(added.verification) is models.ZoneVerification
        assert (added.hostname, added.status, added.verified_at) == (hostname, "pending", None)
        record = added.verification
        assert (record.type, record.name) == ("dns-txt", f"_paradarum-challenge.{hostname}")
        other = client.zones.add(new_hostname("shop"))
        assert [zone.id for zone in client.zones.list()] == [other.id, added.id]

        with pytest.raises(ValidationError) as missing:
            client.zones.verify(added.id)
        # What DNS returned, and what to create.
        assert f"no TXT record at {record.name}" in missing.value.message
        assert record.value in missing.value.message
        assert missing.value.errors["verification"]

        dns_server.set_records([(record.name, record.value)])
        verified = client.zones.verify(added.id)
        assert verified.status == "active" and verified.verified_at is not None

        deleted = client.zones.delete(added.id)
        assert deleted.id == added.id
        assert [zone.id for zone in client.zones.list()] == [other.id]
        with pytest.raises(NotFoundError):
            client.zones.delete(added.id)
        with pytest.raises(ValidationError) as invalid:
            client.zones.add("https://www.example.com/path")
        assert "hostname" in invalid.value.errors


def test_the_async_client_manages_zones_like_the_sync_one(zone_server):
    _, token = new_account(zone_server.url)
    hostname = new_hostname()

    async def scenario() -> None:
        async with AsyncClient(token=token, base_url=zone_server.url) as client:
            added = await client.zones.add(hostname)
            assert added.status == "pending"
            assert [zone.hostname for zone in await client.zones.list()] == [hostname]
            with pytest.raises(ValidationError, match="no TXT record"):
                await client.zones.verify(added.id)
            assert (await client.zones.delete(added.id)).hostname == hostname
            assert await client.zones.list() == []

    asyncio.run(scenario())


def test_zones_add_prints_the_txt_record_ready_to_paste(cli, zone_server, dns_server):
    signed_in(cli, zone_server.url)
    # Long enough that a terminal table would have to wrap it.
    hostname = "a-rather-long-subdomain-for-the-storefront." + new_hostname("eu")
    added = cli("zones", "add", hostname)
    assert added.exit_code == 0, added.output
    zone = json.loads(cli("zones", "list", "--json").stdout)[0]
    name, value = zone["verification"]["name"], zone["verification"]["value"]
    lines = added.output.splitlines()
    assert lines[0] == f"Added zone {zone['id']} ({hostname}): pending."
    # Whole lines, unwrapped and unstyled, whatever the terminal's width.
    assert f"  Name:  {name}" in lines and f"  Value: {value}" in lines
    assert f'  {name}. 300 IN TXT "{value}"' in lines
    assert f"paradarum zones verify {zone['id']}" in added.output

    listed = cli("zones", "list")
    assert listed.exit_code == 0, listed.output
    assert "pending" in listed.output and "zones verify ID" in listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80

    failed = cli("zones", "verify", str(zone["id"]))
    assert failed.exit_code == 1
    first = failed.output.splitlines()[0]
    assert first.startswith("Error: The zone could not be verified: no TXT record at " + name)
    assert "Traceback" not in failed.output

    dns_server.set_records([(name, "not-the-value")])
    wrong = cli("zones", "verify", str(zone["id"]))
    assert wrong.exit_code == 1 and "not-the-value" in wrong.output  # what DNS returned

    dns_server.set_records([(name, value)])
    verified = cli("zones", "verify", str(zone["id"]))
    assert verified.exit_code == 0, verified.output
    assert f"Zone {zone['id']} ({hostname}) is active" in verified.output


def test_zones_delete_confirms_naming_the_hostname_unless_yes(cli, zone_server):
    signed_in(cli, zone_server.url)
    hostname = new_hostname()
    zone_id = json.loads(cli("zones", "add", hostname, "--json").stdout)["id"]

    kept = cli("zones", "delete", str(zone_id), input="n\n")
    assert kept.exit_code == 0 and "Nothing was changed." in kept.output
    assert f"Delete zone {zone_id} ({hostname})?" in kept.output.splitlines()[0]
    assert hostname in cli("zones", "list").output

    deleted = cli("zones", "delete", str(zone_id), "--yes")
    assert deleted.exit_code == 0 and f"Deleted zone {zone_id} ({hostname})." in deleted.output
    missing = cli("zones", "delete", str(zone_id))
    assert missing.exit_code == 1 and f"No zone with ID {zone_id}" in missing.output
    assert "Delete zone" not in missing.output  # nothing to confirm


def test_an_operator_made_zone_can_be_purged_and_other_hosts_are_refused(api_server):
    email, token = new_account(api_server.url)
    hostname = active_zone(api_server, email)
    elsewhere = new_hostname("not-mine")
    with Client(token=token, base_url=api_server.url) as client:
        (zone,) = client.zones.list()
        assert (zone.hostname, zone.status) == (hostname, "active")
        accepted = client.purge.urls([f"https://{hostname}/a", f"https://{hostname}/b"])
        assert accepted.kind == "urls"
        with pytest.raises(ForbiddenError) as refused:
            client.purge.urls([f"https://{hostname}/c", f"https://{elsewhere}/d"])
    error = refused.value
    assert error.status_code == 403 and isinstance(error, AuthenticationError)
    assert elsewhere in error.message and hostname not in error.message
    assert error.errors["urls"] == [f"{elsewhere} is not one of your active zones."]


def test_the_purge_command_purges_an_operator_made_zone_and_names_hosts_it_refuses(
    api_server, tmp_path
):
    cli = Cli(api_server.url, tmp_path / "config")
    hostname = active_zone(api_server, signed_in(cli, api_server.url))
    elsewhere = new_hostname("not-mine")

    accepted = cli("purge", f"https://{hostname}/a", "--wait")
    assert accepted.exit_code == 0, accepted.output
    assert re.search(r"Purge \d+ accepted \(1 URL\)", accepted.output)
    refused = cli("purge", f"https://{hostname}/a", f"https://{elsewhere}/b")
    assert refused.exit_code == 1
    lines = refused.output.splitlines()
    assert lines[0].startswith("Error: These hosts are not among your active zones: " + elsewhere)
    assert lines[1] == f"  urls: {elsewhere} is not one of your active zones."


def test_operator_zone_commands_work_on_the_database_one_line_each(api_server, tmp_path):
    email, _ = new_account(api_server.url)
    active, pending = new_hostname("active"), new_hostname("pending")

    made_active = operator(api_server.data_dir, "zones", "add", email.upper(), active, "--verified")
    assert made_active.exit_code == 0, made_active.output
    assert re.fullmatch(rf"Added zone \d+ \({active}\) to {email}: active\.\n", made_active.output)
    made_pending = operator(api_server.data_dir, "zones", "add", email, pending)
    assert made_pending.exit_code == 0, made_pending.output
    assert made_pending.output.count("\n") == 1
    assert f"_paradarum-challenge.{pending} with the value " in made_pending.output

    listed = operator(api_server.data_dir, "zones", "list", email)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert [line.split()[1:] for line in lines] == [["pending", pending], ["active", active]]

    as_json = json.loads(operator(api_server.data_dir, "zones", "list", email, "--json").stdout)
    assert [zone["status"] for zone in as_json] == ["pending", "active"]

    # Refusals: one line, status 1.
    for args, said in [
        (("zones", "add", "nobody@example.com", new_hostname(), "--verified"), "No account"),
        (("zones", "list", "nobody@example.com"), "No account with the email nobody@example.com"),
        (
            ("zones", "add", new_account(api_server.url)[0], active, "--verified"),
            "already an active zone",
        ),
        (("zones", "add", email, "https://www.example.com/", "--verified"), "Error: "),
    ]:
        result = operator(api_server.data_dir, *args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.count("\n") == 1 and said in result.output, result.output
        assert result.output.startswith("Error: ")


def test_the_servers_zones_commands_keep_the_customers_case(api_server, tmp_path):
    cli = Cli(api_server.url, tmp_path / "config")
    signed_in(cli, api_server.url)
    cli.app = server_cli.build_app()
    hostname = new_hostname()
    added = cli("zones", "add", hostname)
    assert added.exit_code == 0, added.output
    assert "Name:  _paradarum-challenge." + hostname in added.output
    assert hostname in cli("zones", "list").output
    # --verified is the operator's: without the account it is a usage error.
    operator_flag = cli("zones", "add", new_hostname(), "--verified")
    assert operator_flag.exit_code == 2 and "EMAIL HOSTNAME" in operator_flag.output
    too_many = cli("zones", "add", "a@example.com", new_hostname(), "extra")
    assert too_many.exit_code == 2
