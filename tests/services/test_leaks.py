"""Mirror of ``services/leaks.py``: reports of keys found in public, called on the
service itself (no HTTP), on SQLite and PostgreSQL. The whole-app tests cover
GitHub's signed reports, the public endpoint and the owner's email; these cover
what the module decides: what is looked up at all, what a report answers, what the
leaked key and each key of its cascade leave in the security log, the webhook
queue and the outbox, the cascade's depth, and reports that race."""

from __future__ import annotations

import asyncio

import pytest

from paradarum import keys
from paradarum.services.apikeys import (
    CreatorKind,
    KeySettings,
    ListFilter,
    RevokeReason,
    insert_key,
)
from paradarum.services.leaks import MAX_CASCADE_DEPTH, PUBLIC_FOUND_AT, Leak, LeakReport
from tests.services.principals import (
    CLIENT,
    WEBHOOK_SETTINGS,
    audit,
    events,
    key_principal,
    mails,
    owner,
    subscribe,
)
from tests.support import run

FOUND_AT = "https://github.com/someone/repo/blob/main/.env"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return dict(WEBHOOK_SETTINGS)


def create(runtime, principal, name: str):
    return run(runtime.apikeys.create(principal=principal, name=name, client=CLIENT))


def report(runtime, *leaks: Leak, reporter: str = "github") -> LeakReport:
    return run(runtime.leaks.report(list(leaks), client=CLIENT, reporter=reporter))


def by_id(runtime, principal) -> dict:
    return {info.id: info for info in run(runtime.apikeys.list(principal=principal)).items}


def test_only_well_formed_keys_are_looked_up_and_the_first_place_reported_wins(runtime):
    alice = owner(runtime)
    key = create(runtime, alice, "deploy")
    nothing = report(runtime, Leak("not a key", FOUND_AT), Leak(keys.generate(), FOUND_AT))
    assert nothing == LeakReport(known_hashes=set(), revoked=0)

    far_away = "x" * 3000
    found = report(
        runtime,
        Leak(key.raw_key, far_away),
        Leak(key.raw_key, "https://example.com/second"),
    )
    assert found == LeakReport(known_hashes={keys.hash_key(key.raw_key)}, revoked=1)
    leaked = by_id(runtime, alice)[key.info.id]
    assert leaked.revoked_reason is RevokeReason.LEAKED
    # Where it was found, as first reported, kept to the column's size.
    assert leaked.revoked_detail == far_away[:2048]


def test_a_key_revoked_already_is_known_and_nothing_more(runtime):
    alice = owner(runtime)
    subscribe(runtime, alice, "api_key.leaked", "api_key.revoked")
    key = create(runtime, alice, "old")
    run(runtime.apikeys.revoke(principal=alice, key_id=key.info.id, client=CLIENT))
    answer = report(runtime, Leak(key.raw_key, FOUND_AT))
    assert answer == LeakReport(known_hashes={keys.hash_key(key.raw_key)}, revoked=0)
    assert by_id(runtime, alice)[key.info.id].revoked_reason is RevokeReason.USER
    assert audit(runtime, alice.account_id, "key.leaked") == []
    assert events(runtime, "api_key.leaked") == []
    assert mails(runtime, alice.account_id, "key_leaked") == []


def test_a_leak_and_its_cascade_leave_one_entry_per_key_and_one_notice(runtime):
    alice = owner(runtime)
    subscribe(runtime, alice, "api_key.leaked", "api_key.revoked")
    leaked = create(runtime, alice, "ci")
    child = create(runtime, key_principal(runtime, leaked.raw_key), "made by ci")
    grandchild = create(runtime, key_principal(runtime, child.raw_key), "made by that one")
    panel = create(runtime, alice, "from the panel")
    bob = owner(runtime)
    elsewhere = create(runtime, bob, "bob's")

    answer = report(runtime, Leak(leaked.raw_key, FOUND_AT), Leak(elsewhere.raw_key, FOUND_AT))
    assert answer.revoked == 4
    keys_now = by_id(runtime, alice)
    assert keys_now[panel.info.id].revoked_at is None
    cascade = (child.info, grandchild.info)
    parents = (leaked.info, child.info)
    for key, parent in zip(cascade, parents, strict=True):
        assert keys_now[key.id].revoked_reason is RevokeReason.LEAKED
        assert keys_now[key.id].revoked_detail == (
            f"Created by the leaked key {parent.key_prefix}; revoked with it."
        )

    entries = audit(runtime, alice.account_id, "key.leaked")
    assert [(e.key_id, e.actor_type, e.actor_name) for e in entries] == [
        (child.info.id, "system", "system"),
        (grandchild.info.id, "system", "system"),
        (leaked.info.id, "system", "github"),
    ]
    assert [e.detail for e in entries[:2]] == [keys_now[key.id].revoked_detail for key in cascade]
    assert entries[2].detail == (
        f"Found in public at {FOUND_AT}; revoked automatically, with the keys it had "
        f"created: {child.info.key_prefix}, {grandchild.info.key_prefix}."
    )
    assert entries[2].client_address == CLIENT.address
    # Bob's account has its own entry, and nothing of Alice's.
    (bobs,) = audit(runtime, bob.account_id, "key.leaked")
    assert bobs.detail == f"Found in public at {FOUND_AT}; revoked automatically."

    def named(key) -> dict:
        return {"id": key.id, "name": key.name, "keyPrefix": key.key_prefix}

    revoked_events = events(runtime, "api_key.revoked")
    assert [{k: e[k] for k in ("id", "name", "keyPrefix")} for e in revoked_events] == [
        named(key) for key in cascade
    ]
    assert all(
        (e["reason"], e["actor"], e["detail"])
        == ("leaked", "system", keys_now[e["id"]].revoked_detail)
        for e in revoked_events
    )
    (leak_event,) = events(runtime, "api_key.leaked")
    assert leak_event == {
        **named(leaked.info),
        "foundAt": FOUND_AT,
        "revokedAt": revoked_events[0]["revokedAt"],
        "alsoRevoked": [named(key) for key in cascade],
    }
    (notice,) = mails(runtime, alice.account_id, "key_leaked")
    assert notice["key"]["id"] == leaked.info.id and notice["found_at"] == FOUND_AT
    assert [ref["id"] for ref in notice["also_revoked"]] == [key.id for key in cascade]

    # Reported again: known, nothing more happens.
    again = report(runtime, Leak(leaked.raw_key, FOUND_AT))
    assert again.revoked == 0 and again.known_hashes == {keys.hash_key(leaked.raw_key)}
    assert len(audit(runtime, alice.account_id, "key.leaked")) == 3
    assert len(events(runtime, "api_key.revoked")) == 2
    assert len(mails(runtime, alice.account_id, "key_leaked")) == 1


def test_the_cascade_follows_the_chain_to_its_depth_and_no_further(runtime):
    alice = owner(runtime)
    leaked = create(runtime, alice, "root")
    now = runtime.clock()

    def chain(conn) -> list[int]:
        made: list[int] = []
        parent_id, parent_raw = leaked.info.id, leaked.raw_key
        for generation in range(1, MAX_CASCADE_DEPTH + 2):
            raw = keys.generate()
            parent_id = insert_key(
                conn,
                account_id=alice.account_id,
                name=f"generation {generation}",
                raw=raw,
                settings=KeySettings(),
                now=now,
                created_by_kind=CreatorKind.KEY,
                created_by_key_id=parent_id,
                created_by_key_prefix=keys.display_prefix(parent_raw),
                member_id=alice.member_id,
            )
            parent_raw = raw
            made.append(parent_id)
        return made

    descendants = run(runtime.db.write(chain))
    answer = report(runtime, Leak(leaked.raw_key, FOUND_AT))
    assert answer.revoked == 1 + MAX_CASCADE_DEPTH
    page = run(runtime.apikeys.list(principal=alice, status=ListFilter.ACTIVE, limit=100))
    assert [info.id for info in page.items] == [descendants[-1]]


def test_the_cascade_passes_through_a_key_revoked_before_to_what_that_key_created(runtime):
    alice = owner(runtime)
    leaked = create(runtime, alice, "leaked")
    # With the leaked key: a key, and with that one, another; then the middle one
    # is revoked by its owner. The last was still made, in the end, with the leak.
    middle = create(runtime, key_principal(runtime, leaked.raw_key), "middle")
    last = create(runtime, key_principal(runtime, middle.raw_key), "last")
    run(runtime.apikeys.revoke(principal=alice, key_id=middle.info.id, client=CLIENT))

    answer = report(runtime, Leak(leaked.raw_key, FOUND_AT))

    keys_now = by_id(runtime, alice)
    assert answer.revoked == 2  # the leaked key and the last one; the middle was already
    assert keys_now[last.info.id].revoked_reason is RevokeReason.LEAKED
    assert keys_now[middle.info.id].revoked_reason is RevokeReason.USER


def test_simultaneous_reports_of_one_key_revoke_it_once(runtime):
    alice = owner(runtime)
    key = create(runtime, alice, "deploy")

    async def at_once() -> list[LeakReport]:
        return await asyncio.gather(
            runtime.leaks.report_found([f"  {key.raw_key}\n"], client=CLIENT),
            *(runtime.leaks.report([Leak(key.raw_key, FOUND_AT)], client=CLIENT) for _ in range(3)),
        )

    public, *reports = run(at_once())
    assert public is None  # the public endpoint's answer says nothing
    (entry,) = audit(runtime, alice.account_id, "key.leaked")
    assert entry.actor_name == "system"
    assert len(mails(runtime, alice.account_id, "key_leaked")) == 1
    # Whichever report won says where it was found (the public one, stripped of its
    # white space, names the public endpoint); it alone counts a revocation.
    detail = by_id(runtime, alice)[key.info.id].revoked_detail
    assert detail in (FOUND_AT, PUBLIC_FOUND_AT)
    won_publicly = detail == PUBLIC_FOUND_AT
    assert sum(answer.revoked for answer in reports) == (0 if won_publicly else 1)
