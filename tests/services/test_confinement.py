"""What a key limited to some zones reaches (services/confinement.py), on real rows of
SQLite and PostgreSQL: zones, the keys within them, the security-log entries and the
purges it may read, and the refusals for everything else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from paradarum.db.tables import audit_events, purges
from paradarum.runtime import Runtime
from paradarum.services import audit, confinement
from paradarum.services.apikeys import KeySettings
from paradarum.services.confinement import ConfinedKeyCannotAddZones, OutsideKeyZones
from paradarum.services.context import CredentialKind, Principal
from tests.services.principals import CLIENT, key_principal, owner
from tests.support import run


def confined_to(zone_ids: tuple[int, ...], account_id: int = 1) -> Principal:
    """A key's principal limited to ``zone_ids`` (for the rules that read no rows)."""
    return Principal(account_id=account_id, kind=CredentialKind.KEY, zone_ids=zone_ids)


@dataclass
class Keyed:
    """An account with zones a, b and c of a domain, and keys limited to a, to a and b,
    to b, and one without that limit ("wide")."""

    owner: Principal
    domain: str
    zones: dict[str, int]
    key_ids: dict[str, int]
    principals: dict[str, Principal]


def keyed_account(runtime: Runtime) -> Keyed:
    principal = owner(runtime)
    zones = {}
    domain = f"{uuid.uuid4().hex[:8]}.example"
    for name in "abc":
        zone = run(
            runtime.zones.add_for(
                email=str(principal.email), hostname=f"{name}.{domain}", verified=True
            )
        )
        zones[name] = zone.id
    key_ids, principals = {}, {}
    for label, names in {"a": "a", "ab": "ab", "b": "b", "wide": None}.items():
        settings = KeySettings(zone_ids=tuple(zones[n] for n in names) if names else None)
        created = run(
            runtime.apikeys.create(
                principal=principal, name=f"key {label}", client=CLIENT, settings=settings
            )
        )
        key_ids[label] = created.info.id
        principals[label] = key_principal(runtime, created.raw_key)
    return Keyed(principal, domain, zones, key_ids, principals)


def test_zone_rules_for_confined_and_account_wide_callers():
    session = Principal(account_id=1, kind=CredentialKind.SESSION)
    wide = Principal(account_id=1, kind=CredentialKind.KEY)
    confined = confined_to((3, 5))
    for caller in (session, wide):
        assert not confinement.confined(caller)
        confinement.require_account_wide(caller)
        confinement.require_zone(caller, 99)
        assert confinement.zone_filter(caller) is None
    assert confinement.confined(confined)
    with pytest.raises(ConfinedKeyCannotAddZones):
        confinement.require_account_wide(confined)
    confinement.require_zone(confined, 3)
    confinement.require_zone(confined, 5)
    with pytest.raises(OutsideKeyZones):
        confinement.require_zone(confined, 4)
    # Even an empty set is a limit: it reaches no zone at all.
    nothing = confined_to(())
    assert confinement.confined(nothing)
    with pytest.raises(OutsideKeyZones):
        confinement.require_zone(nothing, 3)


def test_a_confined_key_sees_the_keys_whose_zones_are_all_among_its_own(runtime):
    def visible(keyed: Keyed, label: str) -> set[str] | None:
        principal = keyed.principals[label]
        with runtime.db.reading() as conn:
            ids = confinement.visible_key_ids(conn, principal)
        if ids is None:
            return None
        return {name for name, key_id in keyed.key_ids.items() if key_id in ids}

    keyed = keyed_account(runtime)
    assert visible(keyed, "a") == {"a"}
    assert visible(keyed, "b") == {"b"}
    assert visible(keyed, "ab") == {"a", "ab", "b"}
    assert visible(keyed, "wide") is None
    with runtime.db.reading() as conn:
        assert confinement.visible_key_ids(conn, keyed.owner) is None
        confinement.require_key(conn, keyed.principals["ab"], keyed.key_ids["a"])
        confinement.require_key(conn, keyed.owner, keyed.key_ids["ab"])
        for outside in ("ab", "wide"):
            with pytest.raises(OutsideKeyZones):
                confinement.require_key(conn, keyed.principals["a"], keyed.key_ids[outside])


def test_another_account_s_confined_keys_are_never_visible(runtime):
    first, second = keyed_account(runtime), keyed_account(runtime)
    with runtime.db.reading() as conn:
        seen = confinement.visible_key_ids(conn, first.principals["ab"])
    assert seen is not None
    assert set(seen) == {first.key_ids["a"], first.key_ids["ab"], first.key_ids["b"]}
    assert not set(seen) & set(second.key_ids.values())


def test_a_confined_key_reads_the_log_of_its_zones_and_visible_keys_only(runtime):
    keyed = keyed_account(runtime)

    def entries(principal: Principal) -> list[Any]:
        with runtime.db.reading() as conn:
            query = select(audit_events).where(audit_events.c.account_id == principal.account_id)
            within = confinement.audit_filter(conn, principal)
            if within is not None:
                query = query.where(within)
            return list(conn.execute(query).all())

    everything = entries(keyed.owner)
    assert {row.event for row in everything} >= {
        str(audit.Event.SIGNUP),
        str(audit.Event.LOGIN_SUCCEEDED),
        str(audit.Event.ZONE_VERIFIED),
        str(audit.Event.KEY_CREATED),
    }
    only_a = entries(keyed.principals["a"])
    assert only_a
    assert {row.zone_id for row in only_a if row.zone_id is not None} == {keyed.zones["a"]}
    assert {row.key_id for row in only_a if row.key_id is not None} == {keyed.key_ids["a"]}
    assert all(row.zone_id is not None or row.key_id is not None for row in only_a)
    assert len(entries(keyed.principals["wide"])) == len(everything)
    # A caller limited to zones with no key within them sees the zones' entries only.
    lone = confined_to((keyed.zones["c"],), account_id=keyed.owner.account_id)
    assert {(row.event, row.zone_id) for row in entries(lone)} == {
        (str(audit.Event.ZONE_VERIFIED), keyed.zones["c"])
    }


def test_a_confined_key_reads_the_purges_made_with_the_keys_it_sees(runtime):
    keyed = keyed_account(runtime)
    made = {}
    for label, principal in [("session", keyed.owner), *keyed.principals.items()]:
        zone = "b" if label == "b" else "a"
        purge = run(
            runtime.purges.request(
                principal=principal, client=CLIENT, urls=[f"https://{zone}.{keyed.domain}/{label}"]
            )
        )
        made[label] = purge.id

    def listed(principal: Principal) -> set[str]:
        with runtime.db.reading() as conn:
            query = select(purges.c.id).where(purges.c.account_id == principal.account_id)
            within = confinement.purge_filter(conn, principal)
            if within is not None:
                query = query.where(within)
            ids = set(conn.execute(query).scalars())
        return {label for label, purge_id in made.items() if purge_id in ids}

    assert listed(keyed.owner) == set(made)
    assert listed(keyed.principals["wide"]) == set(made)
    assert listed(keyed.principals["a"]) == {"a"}
    assert listed(keyed.principals["ab"]) == {"a", "ab", "b"}
    lone = confined_to((keyed.zones["c"],), account_id=keyed.owner.account_id)
    assert listed(lone) == set()
    with runtime.db.reading() as conn:
        confinement.require_purge(conn, keyed.principals["ab"], keyed.key_ids["b"])
        confinement.require_purge(conn, keyed.owner, None)
        for key_id in (None, keyed.key_ids["wide"], keyed.key_ids["b"]):
            with pytest.raises(OutsideKeyZones):
                confinement.require_purge(conn, keyed.principals["a"], key_id)
