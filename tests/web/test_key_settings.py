"""Optional key settings: expiry limits, rolling with a grace period, address and
permission restrictions, and usage per key. On SQLite and PostgreSQL; usage counts
also from real server processes and instances."""

from __future__ import annotations

import httpx
import pytest

from paradarum_client.models import rfc3339
from tests.support import (
    active_zone,
    bearer,
    create_key,
    login,
    new_account,
    peer,
    random_secret,
    signup,
    start_server,
    wait_until,
)


def make_key(client, token: str, **settings: object) -> dict:
    response = client.post(
        "/api/account/apikeys", json={"name": "restricted", **settings}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"expiresAt": "2000-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "2999-01-01T00:00:00Z"}, "expiresAt"),
        ({"expiresAt": "tomorrow"}, "expiresAt"),
        ({"allowedCidrs": ["not-a-network"]}, "allowedCidrs"),
        ({"allowedCidrs": []}, "allowedCidrs"),
        ({"allowedCidrs": [f"10.0.0.{n}" for n in range(21)]}, "allowedCidrs"),
        ({"permissions": "admin"}, "permissions"),
        ({"zoneIds": [0]}, "zoneIds.0"),
    ],
)
def test_invalid_key_settings_are_a_400_on_the_field(client, options, field):
    token = new_account(client)
    response = client.post(
        "/api/account/apikeys", json={"name": "k", **options}, headers=bearer(token)
    )
    assert response.status_code == 400, response.text
    assert field in response.json()["errors"], response.json()


def test_a_key_without_settings_behaves_as_always(client):
    token = new_account(client)
    created = create_key(client, token)
    assert created["expiresAt"] is None and created["permissions"] == "full"
    assert created["allowedCidrs"] is None and created["zoneIds"] is None
    assert created["status"] == "active"
    assert client.get("/api/account/apikeys", headers=bearer(created["key"])).status_code == 200


class TestAddresses:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"trusted_proxies": ["10.0.0.0/8"]}

    def test_a_key_works_only_from_its_networks_as_the_trusted_proxy_rules_see_the_client(
        self, client
    ):
        token = new_account(client)
        key = make_key(client, token, allowedCidrs=["203.0.113.0/24", "2001:db8::/32"])["key"]
        assert (
            key
            and "203.0.113.0/24"
            in make_key(client, token, allowedCidrs=["203.0.113.9/24"])["allowedCidrs"]
        )

        def status(address: str, forwarded: str | None = None) -> httpx.Response:
            headers = {**bearer(key), **({"X-Forwarded-For": forwarded} if forwarded else {})}
            return client.get("/api/account", headers=peer(address, headers))

        assert status("203.0.113.7").status_code == 200
        assert status("2001:db8::5").status_code == 200
        refused = status("198.51.100.1")
        assert refused.status_code == 403
        assert refused.json()["message"] == "This key cannot be used from your address."
        # A forged X-Forwarded-For from an untrusted peer changes nothing...
        assert status("198.51.100.1", "203.0.113.7").status_code == 403
        # ...and through a trusted proxy, the client it forwards for is what counts.
        assert status("10.1.1.1", "203.0.113.7").status_code == 200
        assert status("10.1.1.1", "198.51.100.1").status_code == 403
        # The refusals are in the security log, once (a flood does not fill it).
        for _ in range(20):
            status("198.51.100.1")

        def refusals() -> list[dict]:
            events = client.get("/api/account/audit", headers=bearer(token)).json()["data"]
            return [e for e in events if e["event"] == "key.refused"]

        wait_until(lambda: len(refusals()) == 1)
        assert "198.51.100.1" in refusals()[0]["detail"]


def test_a_purge_only_key_purges_and_reads_its_account_but_nothing_else(client, runtime):
    token = new_account(client)
    active_zone(client, runtime, token, "www.example.com")
    key = make_key(client, token, permissions="purge")["key"]
    headers = bearer(key)
    assert client.get("/api/account", headers=headers).status_code == 200
    purge = client.post(
        "/api/account/purge", json={"urls": ["https://www.example.com/"]}, headers=headers
    )
    assert purge.status_code == 202, purge.text
    assert client.get("/api/account/purges", headers=headers).status_code == 200
    for method, path, body in (
        ("GET", "/api/account/apikeys", None),
        ("POST", "/api/account/apikeys", {"name": "more"}),
        ("DELETE", "/api/account/apikeys/1", None),
        ("GET", "/api/account/audit", None),
        ("POST", "/api/account/password", {"currentPassword": "x", "newPassword": "y"}),
    ):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert "only purge" in response.json()["message"]


def test_a_key_limited_to_zones_or_addresses_cannot_make_or_roll_keys(client, runtime):
    """Else it could mint (or roll into) a key without its limits."""
    token = new_account(client)
    zone = active_zone(client, runtime, token, "www.example.com")
    plain = create_key(client, token, name="plain")
    from_here = "203.0.113.7"  # the client address these requests come from
    limited = [
        make_key(client, token, zoneIds=[zone["id"]])["key"],
        make_key(client, token, allowedCidrs=["203.0.113.0/24"])["key"],
    ]
    for key in limited:
        headers = peer(from_here, bearer(key))
        assert client.get("/api/account", headers=headers).status_code == 200
        made = client.post("/api/account/apikeys", json={"name": "x"}, headers=headers)
        rolled = client.post(
            f"/api/account/apikeys/{plain['id']}/roll",
            json={"gracePeriodMinutes": 0},
            headers=headers,
        )
        for response in (made, rolled):
            assert response.status_code == 403, response.text
            assert "cannot create or roll keys" in response.json()["message"]
    # A key without those limits can, as the panel can.
    assert (
        client.post("/api/account/apikeys", json={"name": "y"}, headers=bearer(plain["key"]))
    ).status_code == 201


def test_zone_ids_must_name_zones_of_this_account(client, runtime):
    other = new_account(client, "other@example.com")
    foreign = active_zone(client, runtime, other, "shop.example.net")
    token = new_account(client)
    own = active_zone(client, runtime, token, "www.example.com")
    refused = client.post(
        "/api/account/apikeys",
        json={"name": "k", "zoneIds": [own["id"], foreign["id"], 999999]},
        headers=bearer(token),
    )
    assert refused.status_code == 400
    (problem,) = refused.json()["errors"]["zoneIds"]
    assert f"{foreign['id']}, 999999" in problem and str(own["id"]) + "," not in problem
    assert make_key(client, token, zoneIds=[own["id"]])["zoneIds"] == [own["id"]]


def test_rolling_with_grace_keeps_both_keys_until_the_grace_ends(frozen_client, clock):
    token = new_account(frozen_client, "roller@example.com")
    old = make_key(frozen_client, token, allowedCidrs=["0.0.0.0/0"], permissions="purge")
    rolled = frozen_client.post(
        f"/api/account/apikeys/{old['id']}/roll",
        json={"gracePeriodMinutes": 60},
        headers=bearer(token),
    )
    assert rolled.status_code == 201, rolled.text
    new = rolled.json()["data"]
    assert new["replaces"] == old["id"] and new["key"] != old["key"]
    assert new["name"] == old["name"]
    assert (new["permissions"], new["allowedCidrs"]) == ("purge", ["0.0.0.0/0"])

    def account(key: str) -> int:
        response = frozen_client.get("/api/account", headers=peer("192.0.2.1", bearer(key)))
        return response.status_code

    assert account(old["key"]) == account(new["key"]) == 200
    # Rolling it again during its grace period is refused, naming its replacement.
    again = frozen_client.post(
        f"/api/account/apikeys/{old['id']}/roll",
        json={"gracePeriodMinutes": 120},
        headers=bearer(token),
    )
    assert again.status_code == 400
    assert f"key {new['id']}" in again.json()["message"]
    clock.advance(3601)
    token = login(frozen_client, "roller@example.com")
    assert account(old["key"]) == 401
    assert account(new["key"]) == 200
    listed = {
        k["id"]: k
        for k in frozen_client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    }
    assert listed[old["id"]]["status"] == "expired"
    events = frozen_client.get("/api/account/audit", headers=bearer(token)).json()["data"]
    assert {"key.rolled", "key.created"} <= {e["event"] for e in events}


class TestRollAtTheLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"key_limit": 2}

    def test_at_the_limit_only_a_roll_without_grace_is_possible(self, client):
        token = new_account(client)
        first, _second = create_key(client, token), create_key(client, token)

        def roll(key_id: int, minutes: int) -> httpx.Response:
            return client.post(
                f"/api/account/apikeys/{key_id}/roll",
                json={"gracePeriodMinutes": minutes},
                headers=bearer(token),
            )

        refused = roll(first["id"], 60)
        assert refused.status_code == 400
        assert "grace period of 0" in refused.json()["message"]
        now = roll(first["id"], 0)
        assert now.status_code == 201
        assert client.get("/api/account", headers=bearer(first["key"])).status_code == 401
        listed = {
            k["id"]: k
            for k in client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
        }
        assert listed[first["id"]]["revokedReason"] == "rolled"
        # A revoked key cannot be rolled; neither can a key of another account.
        assert roll(first["id"], 0).status_code == 400
        other = new_account(client)
        foreign = client.post(
            f"/api/account/apikeys/{now.json()['data']['id']}/roll",
            json={"gracePeriodMinutes": 0},
            headers=bearer(other),
        )
        assert foreign.status_code == 404
        assert roll(now.json()["data"]["id"], 10081).status_code == 400


def test_usage_counts_successes_and_refusals_per_day(client, runtime):
    from tests.support import run

    token = new_account(client)
    key = make_key(client, token, allowedCidrs=["192.0.2.0/24"])
    for _ in range(5):
        client.get("/api/account", headers=peer("192.0.2.1", bearer(key["key"])))
    for _ in range(2):
        client.get("/api/account", headers=peer("198.51.100.9", bearer(key["key"])))
    run(runtime.usage.flush())
    usage = client.get(f"/api/account/apikeys/{key['id']}/usage", headers=bearer(token)).json()
    days = usage["data"]["days"]
    assert len(days) == 90
    assert days[-1]["day"] == rfc3339(runtime.clock())[:10]
    assert (days[-1]["successes"], days[-1]["refusals"]) == (5, 2)
    assert sum(day["successes"] for day in days[:-1]) == 0
    other = new_account(client)
    assert (
        client.get(f"/api/account/apikeys/{key['id']}/usage", headers=bearer(other)).status_code
        == 404
    )


@pytest.mark.slow
def test_usage_from_two_workers_and_two_instances_adds_up_exactly(tmp_path, database_url):
    env = {"PARADARUM_DATA_DIR": str(tmp_path / "data"), "PARADARUM_ACCESS_LOG": "false"}
    if database_url:
        env["PARADARUM_DATABASE_URL"] = database_url
        env["PARADARUM_JWT_SECRET"] = random_secret()
    servers = [
        start_server(env, workers=2, log_path=tmp_path / "a.log"),
        start_server(env, log_path=tmp_path / "b.log"),
    ]
    try:
        with httpx.Client(base_url=servers[0].base_url, timeout=10) as http:
            signup(http, "usage@example.com")
            token = login(http, "usage@example.com")
            key = create_key(http, token)
        sent = 0
        for round_ in range(40):
            base = servers[round_ % 2].base_url
            # A fresh connection each time: requests spread over both workers.
            assert httpx.get(base + "/api/account", headers=bearer(key["key"])).status_code == 200
            sent += 1
    finally:
        for server in servers:
            server.stop()  # each process flushes what it counted as it stops
    server = start_server(env, log_path=tmp_path / "c.log")
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            token = login(http, "usage@example.com")
            days = http.get(f"/api/account/apikeys/{key['id']}/usage", headers=bearer(token)).json()
    finally:
        server.stop()
    assert sum(day["successes"] for day in days["data"]["days"]) == sent


def test_a_key_limited_to_zones_manages_and_reads_only_within_them(client, runtime):
    """No key or zone management outside its zones, no security log beyond them."""
    token = new_account(client)
    mine = active_zone(client, runtime, token, "www.example.com")
    other = active_zone(client, runtime, token, "shop.example.com")
    pending = client.post(
        "/api/account/zones", json={"hostname": "blog.example.com"}, headers=bearer(token)
    ).json()["data"]
    plain = create_key(client, token, name="account-wide")
    elsewhere = make_key(client, token, name="other zone", zoneIds=[other["id"]])
    inside = make_key(client, token, name="same zone", zoneIds=[mine["id"]])
    confined = make_key(client, token, name="confined", zoneIds=[mine["id"]])
    headers = bearer(confined["key"])

    # Zones: its own only.
    listed = client.get("/api/account/zones", headers=headers).json()["data"]
    assert [zone["id"] for zone in listed] == [mine["id"]]
    for zone in (other, pending):
        for response in (
            client.delete(f"/api/account/zones/{zone['id']}", headers=headers),
            client.post(f"/api/account/zones/{zone['id']}/verify", headers=headers),
        ):
            assert response.status_code == 403, response.text
            assert "limited to some zones" in response.json()["message"]
    added = client.post("/api/account/zones", json={"hostname": "new.example.com"}, headers=headers)
    assert added.status_code == 403 and "cannot add zones" in added.json()["message"]

    # Keys: only those confined within its zones (itself included).
    keys_seen = client.get("/api/account/apikeys", headers=headers).json()["data"]
    assert {key["id"] for key in keys_seen} == {inside["id"], confined["id"]}
    for key in (plain, elsewhere):
        assert (
            client.delete(f"/api/account/apikeys/{key['id']}", headers=headers).status_code == 403
        )
        usage = client.get(f"/api/account/apikeys/{key['id']}/usage", headers=headers)
        assert usage.status_code == 403
    assert (
        client.get(f"/api/account/apikeys/{inside['id']}/usage", headers=headers).status_code == 200
    )
    assert client.delete(f"/api/account/apikeys/{inside['id']}", headers=headers).status_code == 200

    # Purges within its zone still work, and outside are refused as before.
    inside_purge = client.post(
        "/api/account/purge", json={"urls": ["https://www.example.com/"]}, headers=headers
    )
    assert inside_purge.status_code == 202, inside_purge.text
    outside_purge = client.post(
        "/api/account/purge", json={"urls": ["https://shop.example.com/"]}, headers=headers
    )
    assert outside_purge.status_code == 403

    # The security log: entries about its zone and its keys, nothing else.
    seen = client.get("/api/account/audit", headers=headers).json()["data"]
    everything = client.get("/api/account/audit", headers=bearer(token)).json()["data"]
    assert {entry["event"] for entry in everything} >= {"account.signup", "zone.added"}
    allowed_prefixes = {inside["keyPrefix"], confined["keyPrefix"]}
    assert seen, "its own entries are readable"
    for entry in seen:
        about_key = entry["keyPrefix"] in allowed_prefixes
        about_zone = entry["event"].startswith("zone.") and "www.example.com" in entry["detail"]
        assert about_key or about_zone, entry
    assert {"key.created", "key.revoked", "purge.requested"} <= {e["event"] for e in seen}
    assert len(seen) < len(everything)

    # Nothing outside it was changed; an account-wide key and the session still see all.
    assert {
        k["id"] for k in client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    } >= {plain["id"], elsewhere["id"]}
    assert len(client.get("/api/account/zones", headers=bearer(plain["key"])).json()["data"]) == 3
