"""Mirror of ``services/apikeys.py``: the key lifecycle called on the service itself
(no HTTP), on SQLite and PostgreSQL. The whole-app tests cover the routes; these
cover the module's own rules at their edges: the settings' bounds, the one
conditional revocation, what each revocation leaves in the security log and the
webhook queue, the limit as keys expire, rolls, and roles as committed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from paradarum.errors import (
    AlreadyRevoked,
    Forbidden,
    KeyLimitReached,
    KeyNotFound,
    NotAuthenticated,
    ValidationFailed,
)
from paradarum.services.apikeys import (
    MAX_CIDRS,
    MAX_EXPIRY,
    MAX_GRACE,
    MAX_ZONE_IDS,
    KeyInfo,
    KeySettings,
    KeyStatus,
    ListFilter,
    RevokeReason,
    key_settings,
    revoke_one,
)
from paradarum_client.models import rfc3339
from tests.services.principals import (
    CLIENT,
    WEBHOOK_SETTINGS,
    audit,
    events,
    join,
    key_principal,
    owner,
    subscribe,
)
from tests.support import run

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {**WEBHOOK_SETTINGS, "key_limit": 3}


def create(runtime, principal, name: str = "key", **settings: object):
    return run(
        runtime.apikeys.create(
            principal=principal,
            name=name,
            client=CLIENT,
            settings=KeySettings(**settings) if settings else None,
        )
    )


def listed(runtime, principal, status: ListFilter) -> list[int]:
    page = run(runtime.apikeys.list(principal=principal, status=status))
    return [info.id for info in page.items]


# -- the settings' rules (pure) ----------------------------------------------------------


def test_key_settings_takes_its_bounds_and_names_every_problem_at_once():
    assert key_settings(now=NOW, expires_at=NOW + MAX_EXPIRY).expires_at == NOW + MAX_EXPIRY
    with pytest.raises(ValidationFailed) as caught:
        key_settings(
            now=NOW,
            expires_at=NOW + MAX_EXPIRY + timedelta(microseconds=1),
            allowed_cidrs=[],
            zone_ids=list(range(1, MAX_ZONE_IDS + 2)),
        )
    assert set(caught.value.errors) == {"expiresAt", "allowedCidrs", "zoneIds"}
    # Now is not the future, and a time without a zone is refused, not guessed.
    for moment in (NOW, (NOW + timedelta(days=1)).replace(tzinfo=None)):
        with pytest.raises(ValidationFailed) as caught:
            key_settings(now=NOW, expires_at=moment)
        assert list(caught.value.errors) == ["expiresAt"]


def test_key_settings_names_each_bad_network_and_normalises_the_good_ones():
    with pytest.raises(ValidationFailed) as caught:
        key_settings(now=NOW, allowed_cidrs=["10.0.0.0/8", "nonsense", "300.1.1.1"])
    assert len(caught.value.errors["allowedCidrs"]) == 2
    assert "nonsense" in caught.value.errors["allowedCidrs"][0]
    kept = key_settings(
        now=NOW,
        allowed_cidrs=[" 10.1.2.3/8", "10.0.0.0/8", "2001:db8::1"],
        zone_ids=[5, 3, 5],
    )
    assert kept.allowed_cidrs == ("10.0.0.0/8", "2001:db8::1/128")
    assert kept.zone_ids == (3, 5)
    most = key_settings(now=NOW, allowed_cidrs=[f"10.0.0.{n}" for n in range(MAX_CIDRS)])
    assert most.allowed_cidrs is not None and len(most.allowed_cidrs) == MAX_CIDRS
    with pytest.raises(ValidationFailed):
        key_settings(now=NOW, allowed_cidrs=[f"10.0.0.{n}" for n in range(MAX_CIDRS + 1)])


# -- revoking ------------------------------------------------------------------------------


def test_revoke_one_changes_a_row_once_and_only_within_the_given_account(runtime):
    alice, bob = owner(runtime), owner(runtime)
    key = create(runtime, alice).info
    first = runtime.clock()

    def revoke(account_id: int, now: datetime, detail: str | None = None) -> bool:
        return run(
            runtime.db.write(
                lambda conn: revoke_one(
                    conn,
                    key.id,
                    now=now,
                    reason=RevokeReason.USER,
                    detail=detail,
                    account_id=account_id,
                )
            )
        )

    assert revoke(bob.account_id, first) is False
    assert listed(runtime, alice, ListFilter.ACTIVE) == [key.id]
    assert revoke(alice.account_id, first, "by hand") is True
    assert revoke(alice.account_id, first + timedelta(hours=1), "again") is False
    (info,) = run(runtime.apikeys.list(principal=alice)).items
    # The first revocation stands: neither its time nor its detail is overwritten.
    assert (info.revoked_at, info.revoked_reason, info.revoked_detail) == (
        first,
        RevokeReason.USER,
        "by hand",
    )


def test_a_revocation_is_logged_and_announced_once_naming_who_revoked(runtime):
    alice = owner(runtime)
    subscribe(runtime, alice, "api_key.revoked")
    by_session = create(runtime, alice, "by session").info
    by_key = create(runtime, alice, "by key").info
    robot = create(runtime, alice, "robot")
    robot_principal = key_principal(runtime, robot.raw_key)

    info = run(runtime.apikeys.revoke(principal=alice, key_id=by_session.id, client=CLIENT))
    assert info.id == by_session.id and info.revoked_reason is RevokeReason.USER
    assert info.status(runtime.clock()) is KeyStatus.REVOKED
    for who in (alice, robot_principal):
        with pytest.raises(AlreadyRevoked):
            run(runtime.apikeys.revoke(principal=who, key_id=by_session.id, client=CLIENT))
    run(runtime.apikeys.revoke(principal=robot_principal, key_id=by_key.id, client=CLIENT))
    with pytest.raises(KeyNotFound):
        run(runtime.apikeys.revoke(principal=owner(runtime), key_id=robot.info.id, client=CLIENT))

    entries = audit(runtime, alice.account_id, "key.revoked")
    assert [
        (e.key_id, e.key_prefix, e.actor_type, e.actor_name, e.client_address, e.detail)
        for e in entries
    ] == [
        (by_session.id, by_session.key_prefix, "session", alice.email, CLIENT.address, None),
        (by_key.id, by_key.key_prefix, "key", robot.info.key_prefix, CLIENT.address, None),
    ]
    announced = events(runtime, "api_key.revoked")
    assert announced == [
        {
            "id": by_session.id,
            "name": "by session",
            "keyPrefix": by_session.key_prefix,
            "revokedAt": rfc3339(info.revoked_at),
            "reason": "user",
            "detail": None,
            "actor": alice.email,
        },
        {
            "id": by_key.id,
            "name": "by key",
            "keyPrefix": by_key.key_prefix,
            "revokedAt": announced[1]["revokedAt"],
            "reason": "user",
            "detail": None,
            "actor": robot.info.key_prefix,
        },
    ]
    # The key that revoked the other still works; the revoked ones are gone.
    assert listed(runtime, alice, ListFilter.ACTIVE) == [robot.info.id]


def test_of_simultaneous_revokes_of_one_key_exactly_one_wins(runtime):
    alice = owner(runtime)
    subscribe(runtime, alice, "api_key.revoked")
    key = create(runtime, alice).info

    async def all_at_once() -> list[object]:
        return await asyncio.gather(
            *(
                runtime.apikeys.revoke(principal=alice, key_id=key.id, client=CLIENT)
                for _ in range(6)
            ),
            return_exceptions=True,
        )

    results = run(all_at_once())
    assert sum(isinstance(result, KeyInfo) for result in results) == 1, results
    assert sum(isinstance(result, AlreadyRevoked) for result in results) == 5, results
    assert len(audit(runtime, alice.account_id, "key.revoked")) == 1
    assert len(events(runtime, "api_key.revoked")) == 1


# -- the limit, listing ----------------------------------------------------------------------


def test_an_expiring_key_holds_its_slot_until_the_moment_it_expires(frozen_runtime, clock):
    rt = frozen_runtime
    alice = owner(rt)
    soon = create(rt, alice, "soon", expires_at=clock() + timedelta(hours=1)).info
    robot = create(rt, alice, "robot")
    gone = create(rt, alice, "gone").info
    run(rt.apikeys.revoke(principal=alice, key_id=gone.id, client=CLIENT))
    third = create(rt, alice, "third").info
    # Keys have no step-up: the robot acts for as long as the test needs.
    acting = key_principal(rt, robot.raw_key)
    clock.advance((timedelta(hours=1) - timedelta(microseconds=1)).total_seconds())
    with pytest.raises(KeyLimitReached):
        create(rt, acting, "fourth")
    clock.advance(timedelta(microseconds=1).total_seconds())
    fourth = create(rt, acting, "fourth").info

    assert set(listed(rt, acting, ListFilter.ACTIVE)) == {robot.info.id, third.id, fourth.id}
    assert listed(rt, acting, ListFilter.EXPIRED) == [soon.id]
    assert listed(rt, acting, ListFilter.REVOKED) == [gone.id]
    # Newest first; keys created at one moment, the later one first.
    assert listed(rt, acting, ListFilter.ALL) == [
        fourth.id,
        third.id,
        gone.id,
        robot.info.id,
        soon.id,
    ]


# -- rolling ---------------------------------------------------------------------------------


def test_a_roll_bounds_its_grace_and_carries_the_lifetime_over(frozen_runtime, clock):
    rt = frozen_runtime
    alice = owner(rt)
    subscribe(rt, alice, "api_key.rolled")
    old = create(rt, alice, "monthly", expires_at=clock() + timedelta(days=30)).info
    robot = key_principal(rt, create(rt, alice, "robot").raw_key)

    def roll(key_id: int, grace: timedelta):
        return run(rt.apikeys.roll(principal=robot, key_id=key_id, grace=grace, client=CLIENT))

    for grace in (timedelta(seconds=-1), MAX_GRACE + timedelta(microseconds=1)):
        with pytest.raises(ValidationFailed) as caught:
            roll(old.id, grace)
        assert list(caught.value.errors) == ["gracePeriodMinutes"]

    clock.advance(timedelta(days=10).total_seconds())
    new = roll(old.id, MAX_GRACE)
    assert new.info.replaces_id == old.id and new.info.name == "monthly"
    # The replacement lives as long as the old one did, counted from now.
    assert new.info.settings.expires_at == clock() + timedelta(days=30)
    by_id = {info.id: info for info in run(rt.apikeys.list(principal=robot)).items}
    assert by_id[old.id].settings.expires_at == clock() + MAX_GRACE
    assert by_id[old.id].revoked_at is None

    (entry,) = audit(rt, alice.account_id, "key.rolled")
    assert (entry.key_id, entry.actor_name) == (old.id, robot.key_prefix)
    assert entry.detail == (
        f"Replaced by {new.info.key_prefix}; works until the grace period ends."
    )
    (rolled,) = events(rt, "api_key.rolled")
    assert rolled == {
        "id": old.id,
        "name": "monthly",
        "keyPrefix": old.key_prefix,
        "replacedBy": {"id": new.info.id, "keyPrefix": new.info.key_prefix},
        "worksUntil": rfc3339(clock() + MAX_GRACE),
        "revokedAt": None,
        "actor": robot.key_prefix,
    }


def test_a_grace_never_outlives_the_old_key_and_an_expired_key_cannot_be_rolled(
    frozen_runtime, clock
):
    rt = frozen_runtime
    alice = owner(rt)
    robot = key_principal(rt, create(rt, alice, "robot").raw_key)
    ends = clock() + timedelta(hours=1)
    short = create(rt, alice, "short", expires_at=ends).info
    new = run(rt.apikeys.roll(principal=robot, key_id=short.id, grace=MAX_GRACE, client=CLIENT))
    by_id = {info.id: info for info in run(rt.apikeys.list(principal=robot)).items}
    assert by_id[short.id].settings.expires_at == ends
    assert new.info.settings.expires_at == ends  # the same hour, from the same moment

    clock.advance(timedelta(hours=1).total_seconds())
    with pytest.raises(ValidationFailed) as caught:
        run(rt.apikeys.roll(principal=robot, key_id=new.info.id, grace=MAX_GRACE, client=CLIENT))
    assert "expired" in caught.value.errors["id"][0]


# -- roles as committed ------------------------------------------------------------------------


def test_a_role_taken_away_meanwhile_makes_no_key(runtime):
    alice = owner(runtime)
    bob = join(runtime, alice, "admin")
    target = create(runtime, alice, "alice's").info
    create(runtime, bob.principal, "bob's")
    run(
        runtime.members.change_role(
            principal=alice, member_id=bob.principal.member_id, role="viewer", client=CLIENT
        )
    )
    # bob.principal still says "admin": the service asks the database.
    with pytest.raises(Forbidden):
        create(runtime, bob.principal, "after demotion")
    with pytest.raises(Forbidden):
        run(
            runtime.apikeys.roll(
                principal=bob.principal, key_id=target.id, grace=timedelta(0), client=CLIENT
            )
        )
    run(
        runtime.members.remove(
            principal=alice, member_id=bob.principal.member_id, keys="keep", client=CLIENT
        )
    )
    with pytest.raises(NotAuthenticated):
        create(runtime, bob.principal, "after removal")
    names = {info.name for info in run(runtime.apikeys.list(principal=alice)).items}
    assert names == {"alice's", "bob's"}
