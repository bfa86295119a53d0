"""A key's optional settings (expiry, addresses, purge only, zones), rolling and usage,
through the client and the command line, against a real server."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from paradarum_client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ForbiddenError,
    ValidationError,
    models,
)
from tests.client.harness import KEY, Cli, active_zone, signed_in
from tests.support import PASSWORD, signup, wait_until

pytestmark = pytest.mark.slow

PURGE_ONLY = "This key can only purge cache"
WRONG_ADDRESS = "This key cannot be used from your address."


@pytest.fixture
def cli(api_server, tmp_path) -> Cli:
    return Cli(api_server.url, tmp_path / "config")


def session(server) -> tuple[str, str]:
    """A new account with an active zone: its session token and the zone's hostname."""
    email = f"settings-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=server.url) as http:
        signup(http, email)
    hostname = active_zone(server, email)
    with Client(base_url=server.url, token="") as anonymous:
        return anonymous.login(email, PASSWORD).token, hostname


def row_of(output: str, prefix: str) -> str:
    return next(line for line in output.splitlines() if prefix in line).rstrip()


def test_a_key_created_with_settings_shows_them_in_keys_list(cli, api_server):
    hostname = active_zone(api_server, signed_in(cli, api_server.url))
    (zone,) = json.loads(cli("zones", "list", "--json").stdout)
    created = cli(
        "keys",
        "create",
        "Shop plugin",
        "--expires",
        "30d",
        "--allow",
        "203.0.113.0/24",
        "--allow",
        "2001:db8::/32",
        "--purge-only",
        "--zone",
        str(zone["id"]),
    )
    assert created.exit_code == 0, created.output
    assert len(KEY.findall(created.output)) == 1
    assert re.search(r"It expires \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 30 days\)\.", created.output)
    restrictions = f"purge only · from 203.0.113.0/24, 2001:db8::/32 · zone {zone['id']}"
    assert f"Restrictions: {restrictions}." in created.output

    in_ten_days = (datetime.now(UTC) + timedelta(days=10)).date()
    dated = json.loads(
        cli("keys", "create", "Dated", "--expires", in_ten_days.isoformat(), "--json").stdout
    )
    # A date alone: the key works through that whole day (UTC), to the next midnight.
    assert dated["expiresAt"] == f"{in_ten_days + timedelta(days=1)}T00:00:00.000Z"
    plain = json.loads(cli("keys", "create", "Plain", "--json").stdout)
    assert (plain["expiresAt"], plain["permissions"], plain["allowedCidrs"]) == (None, "full", None)
    cli("keys", "revoke", str(plain["id"]), "--yes")

    listed = cli("keys", "list", env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.output.splitlines()) <= 80
    prefix = KEY.search(created.output).group(0)[:8]
    assert re.search(r"active +in 30 days$", row_of(listed.output, prefix))
    assert re.search(r"active +in (10|11) days$", row_of(listed.output, dated["keyPrefix"]))
    assert re.search(r"revoked +—$", row_of(listed.output, plain["keyPrefix"]))
    assert "purge only" in listed.output
    wide = cli("keys", "list", env={"COLUMNS": "200"})
    # Under the name, at a glance: the first network (and how many more) and the zone by name.
    assert f"purge only · from 203.0.113.0/24 +1 more · zone {hostname}" in wide.output

    as_json = {key["name"]: key for key in json.loads(cli("keys", "list", "--json").stdout)}
    shop = as_json["Shop plugin"]
    assert (shop["permissions"], shop["zoneIds"]) == ("purge", [zone["id"]])
    assert shop["allowedCidrs"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert shop["status"] == "active" and shop["expiresAt"]

    for args, said in [
        (("--expires", "tomorrow"), "is not an expiry"),
        (("--expires", "2027-01-31T10:00:00"), "has no time zone"),
    ]:
        refused = cli("keys", "create", "Bad", *args)
        assert refused.exit_code == 2 and said in refused.output, refused.output
    too_far = cli("keys", "create", "Far", "--expires", "400d")
    assert too_far.exit_code == 1 and "366 days" in too_far.output


def test_the_client_sends_each_setting_and_the_server_checks_them(api_server):
    token, _ = session(api_server)
    with Client(token=token, base_url=api_server.url) as client:
        (zone,) = client.zones.list()
        moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
        created = client.keys.create(
            "settings", expires_at=moment, allowed_cidrs=["127.0.0.1"], zone_ids=[zone.id]
        )
        assert type(created) is models.NewKey
        assert (created.expires_at, created.allowed_cidrs) == (moment, ["127.0.0.1/32"])
        assert (created.permissions, created.zone_ids) == ("full", [zone.id])
        relative = client.keys.create("relative", expires_at=timedelta(hours=12))
        left = relative.expires_at - datetime.now(UTC)
        assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12)
        with pytest.raises(ValidationError) as past:
            client.keys.create("past", expires_at=timedelta(minutes=-5))
        assert "expiresAt" in past.value.errors
        with pytest.raises(ValidationError) as networks:
            client.keys.create("networks", allowed_cidrs=["not-a-network"])
        assert "allowedCidrs" in networks.value.errors


def test_a_key_used_from_another_address_is_refused_with_the_servers_message(cli, api_server):
    token, _ = session(api_server)
    with Client(token=token, base_url=api_server.url) as panel:
        elsewhere = panel.keys.create("elsewhere", allowed_cidrs=["203.0.113.0/24"])
    client = Client(api_key=elsewhere.key, base_url=api_server.url)
    with client, pytest.raises(ForbiddenError) as refused:
        client.account()
    assert refused.value.message == WRONG_ADDRESS and refused.value.status_code == 403
    listed = cli("keys", "list", env={"PARADARUM_API_KEY": elsewhere.key})
    assert listed.exit_code == 1 and listed.output == f"Error: {WRONG_ADDRESS}\n"


def test_a_purge_only_key_is_refused_on_keys_list_and_may_purge(cli, api_server):
    hostname = active_zone(api_server, signed_in(cli, api_server.url))
    key = json.loads(cli("keys", "create", "purger", "--purge-only", "--json").stdout)["key"]
    env = {"PARADARUM_API_KEY": key}

    refused = cli("keys", "list", env=env)
    assert refused.exit_code == 1
    assert refused.output.startswith(f"Error: {PURGE_ONLY}") and refused.output.count("\n") == 1
    purged = cli("purge", f"https://{hostname}/page", env=env)
    assert purged.exit_code == 0, purged.output
    assert re.search(r"Purge \d+ accepted \(1 URL\)", purged.output)

    with Client(api_key=key, base_url=api_server.url) as client:
        assert client.account().active_keys == 1  # allowed to a purge-only key
        with pytest.raises(ForbiddenError) as forbidden:
            client.keys.list()
        # Code written before ForbiddenError catches it as it did.
        assert isinstance(forbidden.value, AuthenticationError)
        assert forbidden.value.status_code == 403 and PURGE_ONLY in forbidden.value.message
        with pytest.raises(ForbiddenError):
            client.zones.add("www.example.com")
        assert client.purge.tags("product-1").kind == "tags"


def test_a_rolled_key_and_its_replacement_both_work_during_the_grace_period(cli, api_server):
    signed_in(cli, api_server.url)
    old = json.loads(cli("keys", "create", "Deploys", "--purge-only", "--json").stdout)

    rolled = cli("keys", "roll", str(old["id"]), "--grace", "1h")
    assert rolled.exit_code == 0, rolled.output
    (new_key,) = KEY.findall(rolled.output)  # printed once
    lines = rolled.output.splitlines()
    assert re.fullmatch(rf"Rolled API key {old['id']} \(Deploys\): the new key is \d+\.", lines[0])
    assert re.search(
        rf"The old key {old['id']} keeps working until \d{{4}}-\d\d-\d\d \d\d:\d\d UTC "
        r"\(in 1 hour\)\.",
        rolled.output,
    )
    assert "This is the only time the key is shown" in rolled.output

    for key in (old["key"], new_key):
        with Client(api_key=key, base_url=api_server.url) as client:
            assert client.account().active_keys == 2
    listed = cli("keys", "list", env={"COLUMNS": "200"})
    old_row = row_of(listed.output, old["keyPrefix"])
    assert re.search(r"active +in 1 hour$", old_row), listed.output
    new_id = int(re.search(r"the new key is (\d+)", lines[0]).group(1))
    assert f"replaced by {new_id}" in listed.output
    as_json = {key["id"]: key for key in json.loads(cli("keys", "list", "--json").stdout)}
    assert as_json[new_id]["replaces"] == old["id"]
    assert as_json[new_id]["permissions"] == "purge"  # the same settings
    assert as_json[old["id"]]["expiresAt"] is not None

    at_once = cli("keys", "roll", str(new_id), "--grace", "0", "--json")
    assert at_once.exit_code == 0, at_once.output
    newest = json.loads(at_once.stdout)
    assert newest["replaces"] == new_id
    client = Client(api_key=new_key, base_url=api_server.url)
    with client, pytest.raises(AuthenticationError) as revoked:
        client.account()
    assert type(revoked.value) is AuthenticationError and revoked.value.status_code == 401
    # The old key, still in its grace period, was rolled already: that is said, once.
    again = cli("keys", "roll", str(old["id"]))
    assert again.exit_code == 1
    (error,) = [line for line in again.output.splitlines() if line.startswith("Error:")]
    assert f"rolled already: key {new_id}" in error
    text = cli("keys", "roll", str(newest["id"]))
    assert text.exit_code == 0 and f"The old key {newest['id']} is revoked" in text.output

    for grace, said in [("8d", "at most 7 days"), ("90s", "is not a duration"), ("1 h", "")]:
        refused = cli("keys", "roll", str(newest["id"]), "--grace", grace)
        assert refused.exit_code == 2 and said in refused.output, refused.output
        assert "--grace" in refused.output


def test_the_client_rolls_with_a_grace_period_in_whole_minutes(api_server):
    token, _ = session(api_server)
    with Client(token=token, base_url=api_server.url) as client:
        old = client.keys.create("rolling", allowed_cidrs=["127.0.0.0/8"])
        new = client.keys.roll(old.id, grace=timedelta(minutes=30))
        assert type(new) is models.NewKey and new.key != old.key
        assert (new.replaces, new.name, new.allowed_cidrs) == (old.id, "rolling", ["127.0.0.0/8"])
        (listed_old,) = [key for key in client.keys.list() if key.id == old.id]
        assert listed_old.expires_at == new.created_at + timedelta(minutes=30)
        for grace in (timedelta(days=8), timedelta(seconds=30)):
            with pytest.raises(ValidationError, match="grace period"):
                client.keys.roll(new.id, grace=grace)
        assert [key.id for key in client.keys.list(status="active")] == [new.id, old.id]
        with pytest.raises(ValidationError, match="revoked"):
            client.keys.roll(client.keys.roll(new.id).replaces)


def test_keys_usage_charts_a_keys_requests_and_refusals(cli, api_server):
    signed_in(cli, api_server.url)
    created = json.loads(cli("keys", "create", "charted", "--purge-only", "--json").stdout)
    with Client(api_key=created["key"], base_url=api_server.url) as client:
        for _ in range(3):
            client.account()
        for _ in range(2):
            with pytest.raises(ForbiddenError):
                client.keys.list()

    def today() -> dict:
        return json.loads(cli("keys", "usage", str(created["id"]), "--json").stdout)["days"][-1]

    # The server writes its counts every 10 seconds: wait for the next write, no longer.
    wait_until(lambda: today()["successes"] == 3, timeout=12, interval=0.5)

    shown = cli("keys", "usage", str(created["id"]))
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0] == f"API key {created['id']}: requests per UTC day, the last 30 days"
    days = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d  ", line)]
    assert len(days) == 30
    assert days[-1].startswith(datetime.now(UTC).date().isoformat())
    assert re.search(r"  █+░+ +3 +2$", days[-1]), days[-1]
    assert "Total: 3 succeeded, 2 refused." in lines
    assert "\x1b[" not in shown.output  # plain text: no terminal codes in a pipe

    missing = cli("keys", "usage", "987654321")
    assert missing.exit_code == 1 and missing.output.startswith("Error: ")


def test_the_async_client_has_the_same_key_settings_roll_and_usage(api_server):
    token, hostname = session(api_server)

    async def scenario() -> None:
        async with AsyncClient(token=token, base_url=api_server.url) as panel:
            created = await panel.keys.create(
                "async", expires_at=timedelta(days=1), purge_only=True
            )
            assert created.permissions == "purge" and created.expires_at is not None
            rolled = await panel.keys.roll(created.id, grace=timedelta(hours=1))
            assert rolled.replaces == created.id and rolled.permissions == "purge"
            with pytest.raises(ValidationError):
                await panel.keys.roll(rolled.id, grace=timedelta(days=30))
            usage = await panel.keys.usage(rolled.id)
            assert type(usage) is models.KeyUsage and usage.key_id == rolled.id
            assert len(usage.days) == 90 and type(usage.days[-1]) is models.DayUsage
        async with AsyncClient(api_key=rolled.key, base_url=api_server.url) as client:
            with pytest.raises(ForbiddenError, match=PURGE_ONLY):
                await client.keys.list()
            assert (await client.purge.urls(f"https://{hostname}/x")).kind == "urls"

    asyncio.run(scenario())
