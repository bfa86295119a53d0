"""Zones over HTTP, on SQLite and PostgreSQL, verified against a real DNS server
(dnsmasq, started on a loopback port with the test's TXT records)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from paradarum.db.tables import jobs
from tests.dns import DnsServer, running_dns
from tests.support import bearer, create_key, new_account, peer, run


@pytest.fixture
def dns(tmp_path: Path) -> Iterator[DnsServer]:
    with running_dns(tmp_path / "dns") as server:
        yield server


@pytest.fixture
def settings_overrides(dns: DnsServer) -> dict[str, object]:
    return {"dns_resolver": dns.setting, "dns_timeout_seconds": 1.0, "zone_limit": 3}


def add(client, token: str, hostname: str):
    return client.post("/api/account/zones", json={"hostname": hostname}, headers=bearer(token))


def verify(client, token: str, zone_id: int):
    return client.post(f"/api/account/zones/{zone_id}/verify", headers=bearer(token))


def listed(client, token: str) -> list[dict]:
    return client.get("/api/account/zones", headers=bearer(token)).json()["data"]


def test_a_zone_is_pending_until_its_txt_record_is_found_then_active(client, dns):
    token = new_account(client)
    response = add(client, token, "  WWW.Example.COM ")
    assert response.status_code == 201, response.text
    zone = response.json()["data"]
    assert zone["hostname"] == "www.example.com"
    assert zone["status"] == "pending" and zone["verifiedAt"] is None
    record = zone["verification"]
    assert record["type"] == "dns-txt"
    assert record["name"] == "_paradarum-challenge.www.example.com"
    assert len(record["value"]) >= 24
    assert record["name"] in response.json()["message"]

    missing = verify(client, token, zone["id"])
    assert missing.status_code == 400
    assert "no TXT record at _paradarum-challenge.www.example.com" in missing.text

    dns.set_records([(record["name"], record["value"])])
    verified = verify(client, token, zone["id"])
    assert verified.status_code == 200, verified.text
    data = verified.json()["data"]
    assert data["status"] == "active" and data["verifiedAt"] is not None
    assert listed(client, token)[0]["status"] == "active"
    # Verifying again is harmless.
    assert verify(client, token, zone["id"]).json()["data"]["status"] == "active"


def test_a_wrong_txt_value_is_a_400_naming_what_was_found(client, dns):
    token = new_account(client)
    zone = add(client, token, "shop.example").json()["data"]
    dns.set_records([(zone["verification"]["name"], "someone-else's-token")])
    response = verify(client, token, zone["id"])
    assert response.status_code == 400
    body = response.json()
    assert "someone-else's-token" in body["errors"]["verification"][0]
    assert zone["verification"]["value"] in body["message"]  # what to create instead


def test_the_first_account_to_verify_wins_and_other_claims_disappear(client, dns):
    first, second, third = new_account(client), new_account(client), new_account(client)
    zones = {
        token: add(client, token, "contested.example").json()["data"] for token in (first, second)
    }
    # Squatting blocks nobody: both hold a pending claim.
    assert all(zone["status"] == "pending" for zone in zones.values())
    dns.set_records(
        [(zones[second]["verification"]["name"], zones[second]["verification"]["value"])]
    )
    assert verify(client, second, zones[second]["id"]).status_code == 200
    # The other pending claim is gone; the hostname cannot be added elsewhere now.
    assert listed(client, first) == []
    assert verify(client, first, zones[first]["id"]).status_code == 404
    taken = add(client, third, "contested.example")
    assert taken.status_code == 409
    assert "another account" in taken.json()["message"]
    # Its own account cannot add it twice either.
    assert add(client, second, "contested.example").status_code == 409


def test_a_dns_server_that_is_down_is_a_503_never_a_500(client, dns):
    token = new_account(client)
    zone = add(client, token, "down.example").json()["data"]
    dns.stop()
    response = verify(client, token, zone["id"])
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert "DNS" in response.json()["message"]
    assert listed(client, token)[0]["status"] == "pending"


def test_a_wildcard_zone_is_verified_at_its_parent_name(client, dns):
    token = new_account(client)
    zone = add(client, token, "*.shop.example").json()["data"]
    assert zone["verification"]["name"] == "_paradarum-challenge.shop.example"
    dns.set_records([(zone["verification"]["name"], zone["verification"]["value"])])
    assert verify(client, token, zone["id"]).json()["data"]["status"] == "active"


@pytest.mark.parametrize(
    ("hostname", "problem"),
    [
        ("https://www.example.com/", "http"),
        ("www.example.com:8080", "port"),
        ("www.example.com/blog", "path"),
        ("localhost", "two labels"),
        ("*.com", "*.com"),
        ("a.*.example.com", "*"),
        ("203.0.113.7", "IP address"),
        ("x" * 64 + ".example", "63"),
        ("", "enter a hostname"),
    ],
)
def test_a_hostname_that_cannot_be_a_zone_is_a_400_on_hostname(client, hostname, problem):
    token = new_account(client)
    response = add(client, token, hostname)
    assert response.status_code == 400, response.text
    message = " ".join(response.json()["errors"]["hostname"])
    assert problem.lower() in message.lower(), message


def test_unicode_hostnames_are_stored_in_punycode(client):
    token = new_account(client)
    zone = add(client, token, "Bücher.example").json()["data"]
    assert zone["hostname"] == "xn--bcher-kva.example"


def test_zones_are_per_account_limited_listed_newest_first_and_deleted(client):
    token, other = new_account(client), new_account(client)
    ids = [add(client, token, f"z{n}.example").json()["data"]["id"] for n in range(3)]
    over = add(client, token, "z3.example")
    assert over.status_code == 400 and "3 zones" in over.json()["message"]
    assert [zone["id"] for zone in listed(client, token)] == list(reversed(ids))
    # Another account sees none of them and cannot touch them.
    assert listed(client, other) == []
    assert client.delete(f"/api/account/zones/{ids[0]}", headers=bearer(other)).status_code == 404
    deleted = client.delete(f"/api/account/zones/{ids[0]}", headers=bearer(token))
    assert deleted.status_code == 200 and deleted.json()["data"]["hostname"] == "z0.example"
    assert add(client, token, "z3.example").status_code == 201  # the slot is free again
    events = client.get("/api/account/audit", headers=bearer(token)).json()["data"]
    assert {"zone.added", "zone.deleted"} <= {event["event"] for event in events}


def test_an_operator_makes_a_zone_the_account_already_claims_active(client, runtime):
    """`zones add EMAIL HOSTNAME --verified` after the customer added the zone: the
    pending claim becomes active (not "already has a zone"), and others' claims go."""
    token, other = new_account(client), new_account(client)
    pending = add(client, token, "claimed.example").json()["data"]
    assert add(client, other, "claimed.example").status_code == 201
    email = client.get("/api/account", headers=bearer(token)).json()["data"]["email"]
    zone = run(runtime.zones.add_for(email=email, hostname="claimed.example", verified=True))
    assert zone.id == pending["id"] and zone.status == "active" and zone.verified_at
    assert [z["status"] for z in listed(client, token)] == ["active"]
    assert listed(client, other) == []
    # Once active, adding it again is the same 409 as ever.
    with pytest.raises(Exception, match="already has a zone"):
        run(runtime.zones.add_for(email=email, hostname="claimed.example", verified=True))


def test_a_purge_only_key_cannot_manage_zones(client):
    token = new_account(client)
    key = client.post(
        "/api/account/apikeys",
        json={"name": "purger", "permissions": "purge"},
        headers=bearer(token),
    ).json()["data"]["key"]
    response = add(client, key, "purger.example")
    assert response.status_code == 403
    assert "purge" in response.json()["message"]
    assert client.get("/api/account/zones", headers=bearer(key)).status_code == 403
    # A full key manages them like a session.
    full = create_key(client, token)["key"]
    assert add(client, full, "purger.example").status_code == 201
    assert (
        client.get("/api/account/zones", headers=peer("192.0.2.1", bearer(full))).status_code == 200
    )


def test_verifications_are_limited_per_account(client, dns):
    """Each one asks DNS for a name the caller chose: 30 a minute, then 429."""
    token = new_account(client)
    zone = add(client, token, "limited.example").json()["data"]
    answers = [verify(client, token, zone["id"]).status_code for _ in range(30)]
    assert answers[:30] == [400] * 30  # not found, each time asked of DNS
    limited = verify(client, token, zone["id"])
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # Another account is not held back by this one.
    other = new_account(client)
    mine = add(client, other, "other.example").json()["data"]
    assert verify(client, other, mine["id"]).status_code == 400


# -- zones follow their domain (daily re-checks; moves; suspension) -------------------

DAY = 24 * 3600


def keyed_account(client) -> str:
    """A new account's key: it outlives the days the clock moves (a session does not)."""
    return str(create_key(client, new_account(client))["key"])


def record_of(zone: dict) -> tuple[str, str]:
    return (zone["verification"]["name"], zone["verification"]["value"])


def verified_zone(client, dns, token: str, hostname: str) -> dict:
    zone = add(client, token, hostname).json()["data"]
    dns.set_records([*dns.records, record_of(zone)])
    assert verify(client, token, zone["id"]).status_code == 200
    return zone


def purge_url(client, token: str, url: str) -> int:
    response = client.post("/api/account/purge", json={"urls": [url]}, headers=bearer(token))
    return response.status_code


def events(client, token: str) -> list[dict]:
    return client.get("/api/account/audit", headers=bearer(token)).json()["data"]


def mails(runtime, account_token_client, token: str) -> list[tuple[str, dict]]:
    account_id = account_token_client.get("/api/account", headers=bearer(token)).json()["data"][
        "id"
    ]
    with runtime.db.reading() as conn:
        rows = conn.execute(
            select(jobs.c.payload)
            .where(jobs.c.kind == "email", jobs.c.account_id == account_id)
            .order_by(jobs.c.id)
        ).all()
    return [
        (payload["message"], payload["data"])
        for payload in (json.loads(row.payload) for row in rows)
    ]


def test_a_zone_whose_record_is_gone_moves_to_the_account_that_proves_the_domain_now(
    frozen_client, frozen_runtime, dns
):
    old, new = keyed_account(frozen_client), keyed_account(frozen_client)
    held = verified_zone(frozen_client, dns, old, "sold.example")
    assert purge_url(frozen_client, old, "https://sold.example/") == 202

    # While the holder's record is there, the hostname is taken.
    assert add(frozen_client, new, "sold.example").status_code == 409
    # The domain is sold: the old record goes. Asked at once, DNS says so.
    dns.set_records([])
    claim = add(frozen_client, new, "sold.example")
    assert claim.status_code == 201, claim.text
    claim = claim.json()["data"]
    missing = verify(frozen_client, new, claim["id"])
    assert missing.status_code == 400  # the new owner's record is not there yet
    dns.set_records([record_of(claim)])
    moved = verify(frozen_client, new, claim["id"])
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["status"] == "active"

    # The old holder: no longer active, no longer purging; told in its log and by mail.
    (old_zone,) = listed(frozen_client, old)
    assert old_zone["id"] == held["id"] and old_zone["status"] == "pending"
    assert purge_url(frozen_client, old, "https://sold.example/") == 403
    assert purge_url(frozen_client, new, "https://sold.example/") == 202
    (entry,) = [e for e in events(frozen_client, old) if e["event"] == "zone.moved"]
    assert "sold.example" in entry["detail"] and entry["actorType"] == "system"
    assert [
        (kind, payload["hostname"])
        for kind, payload in mails(frozen_runtime, frozen_client, old)
        if kind.startswith("zone")
    ] == [("zone_moved", "sold.example")]


def test_a_claimant_cannot_take_a_zone_whose_holder_still_publishes_its_record(frozen_client, dns):
    holder, claimant = keyed_account(frozen_client), keyed_account(frozen_client)
    held = verified_zone(frozen_client, dns, holder, "kept.example")
    dns.set_records([])
    claim = add(frozen_client, claimant, "kept.example").json()["data"]
    # Both records at the name: the holder keeps it.
    dns.set_records([record_of(held), record_of(claim)])
    taken = verify(frozen_client, claimant, claim["id"])
    assert taken.status_code == 409
    assert listed(frozen_client, holder)[0]["status"] == "active"
    assert listed(frozen_client, claimant)[0]["status"] == "pending"


def test_a_record_missing_on_three_daily_checks_in_a_row_suspends_the_zone_and_mails_the_owner(
    frozen_client, frozen_runtime, clock, dns
):
    owner = keyed_account(frozen_client)
    zone = verified_zone(frozen_client, dns, owner, "lapsed.example")
    recheck = frozen_runtime.zones.recheck_due
    assert run(recheck()) == 0  # checked when verified: not due for a day

    dns.set_records([])
    for day in (1, 2):
        clock.advance(DAY)
        assert run(recheck()) == 1
        assert listed(frozen_client, owner)[0]["status"] == "active", day
    # A record found again starts the count afresh.
    dns.set_records([record_of(zone)])
    clock.advance(DAY)
    assert run(recheck()) == 1
    dns.set_records([])
    for day in (1, 2):
        clock.advance(DAY)
        run(recheck())
        assert listed(frozen_client, owner)[0]["status"] == "active", day
    # DNS not answering is not a miss.
    dns.stop()
    clock.advance(DAY)
    assert run(recheck()) == 0
    assert listed(frozen_client, owner)[0]["status"] == "active"
    dns.set_records([])
    assert run(recheck()) == 1  # looked for again at the next pass: the third miss

    assert listed(frozen_client, owner)[0]["status"] == "suspended"
    assert purge_url(frozen_client, owner, "https://lapsed.example/") == 403
    everything = frozen_client.post(
        "/api/account/purge", json={"everything": True}, headers=bearer(owner)
    )
    assert everything.status_code == 400  # no active zone
    (entry,) = [e for e in events(frozen_client, owner) if e["event"] == "zone.suspended"]
    assert "lapsed.example" in entry["detail"]
    assert [k for k, _ in mails(frozen_runtime, frozen_client, owner) if k.startswith("zone")] == [
        "zone_suspended"
    ]
    # Suspended, the hostname is still the owner's: with its record back, another
    # account cannot add it, and a verify makes the zone active again.
    dns.set_records([record_of(zone)])
    assert add(frozen_client, keyed_account(frozen_client), "lapsed.example").status_code == 409
    again = verify(frozen_client, owner, zone["id"])
    assert again.status_code == 200 and again.json()["data"]["status"] == "active"
    assert purge_url(frozen_client, owner, "https://lapsed.example/") == 202


def test_the_daily_check_moves_a_zone_to_a_pending_claim_whose_record_is_there(
    frozen_client, clock, frozen_runtime, dns
):
    holder, claimant = keyed_account(frozen_client), keyed_account(frozen_client)
    verified_zone(frozen_client, dns, holder, "*.resold.example")
    dns.set_records([])
    claim = add(frozen_client, claimant, "*.resold.example").json()["data"]
    dns.set_records([record_of(claim)])  # published, never verified by the claimant

    clock.advance(DAY)
    assert run(frozen_runtime.zones.recheck_due()) == 1

    assert listed(frozen_client, claimant)[0]["status"] == "active"
    assert listed(frozen_client, holder)[0]["status"] == "pending"
    assert purge_url(frozen_client, holder, "https://a.resold.example/") == 403
    assert purge_url(frozen_client, claimant, "https://a.resold.example/") == 202
