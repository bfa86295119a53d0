"""The zone service (services/zones.py) called directly on a real runtime, SQLite and
PostgreSQL (and a real DNS server, dnsmasq, where DNS is asked): refusals of additions
and their two rate limits, deletion and operators' additions, who owns a hostname
among held zones, and the daily re-check at its exact moment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from paradarum.db.tables import zones
from paradarum.errors import AccountNotFound, Forbidden, RateLimited, ZoneTaken
from paradarum.services import audit as events
from paradarum.services import zones as zone_rules
from paradarum.services.apikeys import KeySettings
from paradarum.services.confinement import ConfinedKeyCannotAddZones, OutsideKeyZones
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.zones import (
    RECHECK_EVERY,
    TOO_MANY_ADDITIONS,
    ZoneExists,
    ZoneInfo,
    ZoneLimitReached,
    ZoneNotFound,
    ZoneStatus,
)
from tests.dns import DnsServer, running_dns
from tests.services.principals import (
    CLIENT,
    WEBHOOK_SETTINGS,
    audit,
    join,
    key_principal,
    owner,
    subscribe,
)
from tests.services.principals import (
    events as queued_events,
)
from tests.support import run


@pytest.fixture
def dns(tmp_path: Path):
    with running_dns(tmp_path / "dns") as server:
        yield server


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    values: dict[str, object] = {"zone_limit": 3, **WEBHOOK_SETTINGS}
    if "dns" in request.fixturenames:
        server: DnsServer = request.getfixturevalue("dns")
        values.update(dns_resolver=server.setting, dns_timeout_seconds=1.0)
    return values


def add(runtime: Any, principal: Principal, hostname: str, client: ClientInfo = CLIENT) -> ZoneInfo:
    return run(runtime.zones.add(principal=principal, hostname=hostname, client=client))


def operator_adds(runtime: Any, principal: Principal, hostname: str, verified: bool = True):
    return run(
        runtime.zones.add_for(email=str(principal.email), hostname=hostname, verified=verified)
    )


def stored(runtime: Any, zone_id: int) -> Any:
    with runtime.db.reading() as conn:
        return conn.execute(select(zones).where(zones.c.id == zone_id)).first()


def test_a_hostname_is_one_zone_whatever_form_it_is_written_in(runtime):
    principal = owner(runtime)
    zone = add(runtime, principal, " WWW.Example.COM ")
    assert (zone.hostname, zone.status) == ("www.example.com", ZoneStatus.PENDING)
    assert zone.challenge_name == "_paradarum-challenge.www.example.com"
    with pytest.raises(ZoneExists):
        add(runtime, principal, "www.example.com")
    # Another account may claim it too while it is only pending.
    assert add(runtime, owner(runtime), "www.EXAMPLE.com").id != zone.id


def test_pending_zones_count_towards_the_limit(runtime):
    principal = owner(runtime)
    for name in ("one", "two"):
        add(runtime, principal, f"{name}.example.net")
    operator_adds(runtime, principal, "three.example.net")
    with pytest.raises(ZoneLimitReached) as refused:
        add(runtime, principal, "four.example.net")
    assert set(refused.value.errors) == {"hostname"}
    with pytest.raises(ZoneLimitReached):
        operator_adds(runtime, principal, "four.example.net")
    # Deleting one makes room again.
    first = run(runtime.zones.list(principal=principal)).items[-1]
    run(runtime.zones.delete(principal=principal, zone_id=first.id, client=CLIENT))
    add(runtime, principal, "four.example.net")


@pytest.mark.parametrize(
    "settings_overrides",
    [{"zone_additions_per_account": 2, "zone_additions_per_address": 3, "zone_limit": 10}],
)
def test_additions_are_limited_per_account_and_per_address_without_spending_the_other(
    frozen_runtime, clock
):
    here = ClientInfo(address="198.51.100.60")
    elsewhere = ClientInfo(address="198.51.100.61")
    first, second = owner(frozen_runtime), owner(frozen_runtime)
    add(frozen_runtime, first, "a.example.org", here)
    with pytest.raises(ZoneExists):  # an addition that fails counts all the same
        add(frozen_runtime, first, "a.example.org", here)
    with pytest.raises(RateLimited) as limited:
        add(frozen_runtime, first, "b.example.org", here)
    assert limited.value.message == TOO_MANY_ADDITIONS
    # The account's refusal did not spend the address's third addition ...
    add(frozen_runtime, second, "c.example.org", here)
    with pytest.raises(RateLimited):
        add(frozen_runtime, second, "d.example.org", here)
    # ... nor the address's refusal the second account's.
    add(frozen_runtime, second, "d.example.org", elsewhere)
    with pytest.raises(RateLimited):
        add(frozen_runtime, second, "e.example.org", elsewhere)
    clock.advance(600)
    add(frozen_runtime, first, "b.example.org", here)


def test_a_key_limited_to_zones_deletes_within_them_and_adds_none(runtime):
    principal = owner(runtime)
    inside = operator_adds(runtime, principal, "in.example.com")
    outside = operator_adds(runtime, principal, "out.example.com")
    created = run(
        runtime.apikeys.create(
            principal=principal,
            name="confined",
            client=CLIENT,
            settings=KeySettings(zone_ids=(inside.id,)),
        )
    )
    confined = key_principal(runtime, created.raw_key)
    with pytest.raises(ConfinedKeyCannotAddZones):
        add(runtime, confined, "new.example.com")
    assert [z.id for z in run(runtime.zones.list(principal=confined)).items] == [inside.id]
    with pytest.raises(OutsideKeyZones):
        run(runtime.zones.delete(principal=confined, zone_id=outside.id, client=CLIENT))
    run(runtime.zones.delete(principal=confined, zone_id=inside.id, client=CLIENT))
    assert stored(runtime, inside.id) is None and stored(runtime, outside.id) is not None
    (deleted,) = audit(runtime, principal.account_id, str(events.Event.ZONE_DELETED))
    assert (deleted.zone_id, deleted.detail) == (inside.id, "in.example.com")


def test_another_account_s_zone_is_not_found_and_a_viewer_manages_none(runtime):
    principal = owner(runtime)
    zone = operator_adds(runtime, principal, "mine.example.com")
    stranger = owner(runtime)
    with pytest.raises(ZoneNotFound):
        run(runtime.zones.delete(principal=stranger, zone_id=zone.id, client=CLIENT))
    viewer = join(runtime, principal, "viewer").principal
    with pytest.raises(Forbidden):
        run(runtime.zones.delete(principal=viewer, zone_id=zone.id, client=CLIENT))
    with pytest.raises(Forbidden):
        add(runtime, viewer, "theirs.example.com")
    assert stored(runtime, zone.id) is not None


def test_an_operator_activates_a_claim_drops_the_others_and_never_takes_a_held_one(runtime):
    principal, rival, third = owner(runtime), owner(runtime), owner(runtime)
    claim = add(runtime, principal, "shop.example.com")
    rivals = add(runtime, rival, "shop.example.com")
    subscribe(runtime, principal, "zone.verified")
    active = operator_adds(runtime, principal, "shop.example.com")
    assert (active.id, active.status) == (claim.id, ZoneStatus.ACTIVE)
    assert stored(runtime, rivals.id) is None  # the other account's pending claim is gone
    assert [e["hostname"] for e in queued_events(runtime, "zone.verified")] == ["shop.example.com"]
    with pytest.raises(ZoneExists):
        operator_adds(runtime, principal, "shop.example.com")
    with pytest.raises(ZoneTaken):
        operator_adds(runtime, third, "shop.example.com")
    pending = add(runtime, third, "shop.example.com")  # a pending claim blocks nobody
    with pytest.raises(ZoneTaken):
        operator_adds(runtime, third, "shop.example.com")
    assert stored(runtime, pending.id).status == "pending"
    with pytest.raises(AccountNotFound):
        run(runtime.zones.add_for(email="nobody@example.com", hostname="x.example", verified=True))
    unverified = operator_adds(runtime, third, "later.example.com", verified=False)
    assert unverified.status is ZoneStatus.PENDING and unverified.verified_at is None


def test_the_most_specific_held_zone_owns_a_hostname(runtime):
    wildcard, exact, suspended, claimant, lookalike = (owner(runtime) for _ in range(5))
    held = {
        "wildcard": operator_adds(runtime, wildcard, "*.example.com"),
        "exact": operator_adds(runtime, exact, "a.example.com"),
        "suspended": operator_adds(runtime, suspended, "*.b.example.com"),
        "lookalike": operator_adds(runtime, lookalike, "badexample.com"),
    }
    add(runtime, claimant, "c.example.com")  # pending: owns nothing
    run(
        runtime.db.write(
            lambda conn: conn.execute(
                update(zones)
                .where(zones.c.id == held["suspended"].id)
                .values(status=str(ZoneStatus.SUSPENDED))
            )
        )
    )
    names = {zone.id: label for label, zone in held.items()}
    hosts = ["a.example.com", "x.a.example.com", "y.b.example.com", "c.example.com"]
    with runtime.db.reading() as conn:
        found = zone_rules.owners(conn, [*hosts, "example.com", "other.test"])
        beneath = zone_rules.held_beneath(conn, "*.example.com")
    assert {host: names[row.id] for host, row in found.items()} == {
        "a.example.com": "exact",
        "x.a.example.com": "wildcard",
        "y.b.example.com": "suspended",
        "c.example.com": "wildcard",
    }
    assert sorted(names[row.id] for row in beneath) == ["exact", "suspended"]


def test_a_held_zone_is_rechecked_exactly_a_day_after_its_last_check(frozen_runtime, clock, dns):
    principal = owner(frozen_runtime)
    zone = operator_adds(frozen_runtime, principal, "daily.example.com")
    add(frozen_runtime, owner(frozen_runtime), "pending.example.com")  # never rechecked
    dns.set_records([(zone.challenge_name, zone.token)])
    recheck = frozen_runtime.zones.recheck_due
    assert run(recheck()) == 1  # never checked: due at once
    checked = clock()
    clock.now = checked + RECHECK_EVERY - timedelta(milliseconds=1)
    assert run(recheck()) == 0
    clock.now = checked + RECHECK_EVERY
    assert run(recheck()) == 1
    assert run(recheck()) == 0
    row = stored(frozen_runtime, zone.id)
    assert (row.status, row.missed_checks, row.checked_at) == ("active", 0, clock())


def test_dns_not_answering_leaves_the_zone_due_and_unmissed(frozen_runtime, clock, dns):
    principal = owner(frozen_runtime)
    zone = operator_adds(frozen_runtime, principal, "flaky.example.com")
    dns.set_records([])
    assert run(frozen_runtime.zones.recheck_due()) == 1
    assert stored(frozen_runtime, zone.id).missed_checks == 1
    missed_at = clock()
    dns.stop()
    clock.advance(RECHECK_EVERY.total_seconds())
    assert run(frozen_runtime.zones.recheck_due()) == 0
    row = stored(frozen_runtime, zone.id)
    assert (row.missed_checks, row.checked_at) == (1, missed_at)
    dns.set_records([(zone.challenge_name, zone.token)])
    assert run(frozen_runtime.zones.recheck_due()) == 1
    assert stored(frozen_runtime, zone.id).missed_checks == 0


def test_a_suspended_zone_whose_record_is_back_is_active_again_by_the_daily_check(
    frozen_runtime, clock, dns
):
    principal = owner(frozen_runtime)
    zone = operator_adds(frozen_runtime, principal, "back.example.com")
    subscribe(frozen_runtime, principal, "zone.verified")
    dns.set_records([])
    for _ in range(3):
        assert run(frozen_runtime.zones.recheck_due()) == 1
        clock.advance(RECHECK_EVERY.total_seconds())
    assert stored(frozen_runtime, zone.id).status == "suspended"
    assert len(audit(frozen_runtime, principal.account_id, str(events.Event.ZONE_SUSPENDED))) == 1
    dns.set_records([(zone.challenge_name, zone.token)])
    assert run(frozen_runtime.zones.recheck_due()) == 1
    row = stored(frozen_runtime, zone.id)
    assert (row.status, row.missed_checks, row.verified_at) == ("active", 0, clock())
    (verified,) = queued_events(frozen_runtime, "zone.verified")
    assert (verified["id"], verified["hostname"]) == (zone.id, "back.example.com")
