"""Mirror of ``services/members.py``: roles, removal and invitations called on the
service itself (no HTTP), on SQLite and PostgreSQL. The whole-app tests cover the
routes and the everyday paths; these cover what the module decides at its edges:
what a demotion or a removal leaves in the security log and the webhook queue for
each key it revokes, no-op changes, leaving without step-up, the invitations' limit
and lifetime, and a key made while its member is being demoted."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from paradarum.errors import (
    Forbidden,
    RateLimited,
    StepUpRequired,
    ValidationFailed,
)
from paradarum.services.apikeys import KeySettings, ListFilter, RevokeReason
from paradarum.services.context import Permission
from paradarum.services.members import (
    INVITATION_LIFETIME,
    INVITATIONS_PER_HOUR,
    KeysChoice,
    parse_keys_choice,
    parse_role,
)
from paradarum.services.roles import Role
from tests.services.principals import (
    CLIENT,
    WEBHOOK_SETTINGS,
    audit,
    events,
    join,
    key_principal,
    new_email,
    owner,
    subscribe,
)
from tests.support import run


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return dict(WEBHOOK_SETTINGS)


def create(runtime, principal, name: str, permission: Permission = Permission.FULL):
    return run(
        runtime.apikeys.create(
            principal=principal,
            name=name,
            client=CLIENT,
            settings=KeySettings(permission=permission),
        )
    ).info


def keys_by_id(runtime, principal) -> dict[int, Any]:
    return {info.id: info for info in run(runtime.apikeys.list(principal=principal)).items}


def test_roles_and_keys_choices_are_parsed_with_the_field_named():
    assert parse_role("purger") is Role.PURGER
    assert parse_keys_choice("keep") is KeysChoice.KEEP
    with pytest.raises(ValidationFailed) as role:
        parse_role("boss", "newRole")
    assert list(role.value.errors) == ["newRole"]
    assert all(str(each) in role.value.errors["newRole"][0] for each in Role)
    with pytest.raises(ValidationFailed) as choice:
        parse_keys_choice("maybe")
    assert list(choice.value.errors) == ["keys"]


def test_each_key_a_demotion_or_removal_revokes_is_logged_and_announced_once(runtime):
    alice = owner(runtime)
    subscribe(runtime, alice, "api_key.revoked", "member.removed")
    dev = join(runtime, alice, "developer")
    full = create(runtime, dev.principal, "deploy")
    purge = create(runtime, dev.principal, "ci", Permission.PURGE)
    done = create(runtime, dev.principal, "revoked already")
    run(runtime.apikeys.revoke(principal=dev.principal, key_id=done.id, client=CLIENT))
    member_id = dev.principal.member_id

    changed = run(
        runtime.members.change_role(
            principal=alice, member_id=member_id, role="purger", client=CLIENT
        )
    )
    assert changed.role is Role.PURGER
    (role_changed,) = audit(runtime, alice.account_id, "member.role_changed")
    assert role_changed.detail == (
        f"{dev.email}: developer → purger. "
        f"Revoked their keys the new role could not create: {full.key_prefix}."
    )
    assert role_changed.actor_name == alice.email

    removed = run(
        runtime.members.remove(principal=alice, member_id=member_id, keys="revoke", client=CLIENT)
    )
    assert removed.email == dev.email
    (entry,) = audit(runtime, alice.account_id, "member.removed")
    assert entry.detail == (
        f"{dev.email} (purger) removed. Revoked their keys: {purge.key_prefix}."
    )

    keys = keys_by_id(runtime, alice)
    for key in (full, purge):
        assert keys[key.id].revoked_reason is RevokeReason.MEMBER
        assert keys[key.id].revoked_detail == f"{dev.email} is no longer allowed to create it."
    assert keys[done.id].revoked_reason is RevokeReason.USER
    revoked = [e for e in audit(runtime, alice.account_id, "key.revoked") if e.key_id != done.id]
    assert [(e.key_id, e.actor_name, e.detail) for e in revoked] == [
        (key.id, alice.email, f"Revoked with {dev.email}'s change of role or removal.")
        for key in (full, purge)
    ]
    announced = [e for e in events(runtime, "api_key.revoked") if e["id"] != done.id]
    assert [
        (e["id"], e["name"], e["keyPrefix"], e["reason"], e["detail"], e["actor"])
        for e in announced
    ] == [
        (
            key.id,
            key.name,
            key.key_prefix,
            "member",
            f"{dev.email} is no longer allowed to create it.",
            alice.email,
        )
        for key in (full, purge)
    ]
    (gone,) = events(runtime, "member.removed")
    assert (gone["memberId"], gone["email"], gone["role"], gone["left"], gone["keys"]) == (
        member_id,
        dev.email,
        "purger",
        False,
        "revoke",
    )


def test_a_change_to_the_same_role_changes_and_logs_nothing(runtime):
    alice = owner(runtime)
    dev = join(runtime, alice, "developer")
    key = create(runtime, dev.principal, "deploy")
    same = run(
        runtime.members.change_role(
            principal=alice, member_id=dev.principal.member_id, role="developer", client=CLIENT
        )
    )
    assert same.role is Role.DEVELOPER
    assert audit(runtime, alice.account_id, "member.role_changed") == []
    assert keys_by_id(runtime, alice)[key.id].revoked_at is None


def test_leaving_needs_no_step_up_and_hands_kept_keys_to_the_first_owner(frozen_runtime, clock):
    rt = frozen_runtime
    alice = owner(rt)
    viewer = join(rt, alice, "viewer")
    dev = join(rt, alice, "developer")
    made = run(rt.apikeys.create(principal=dev.principal, name="deploy", client=CLIENT))
    clock.advance(3600)  # every session above is past step-up now
    with pytest.raises(StepUpRequired):
        run(
            rt.members.remove(
                principal=dev.principal,
                member_id=viewer.principal.member_id,
                keys="keep",
                client=CLIENT,
            )
        )
    left = run(
        rt.members.remove(
            principal=dev.principal, member_id=dev.principal.member_id, keys="keep", client=CLIENT
        )
    )
    assert left.email == dev.email
    (entry,) = audit(rt, alice.account_id, "member.left")
    assert entry.detail == f"{dev.email} (developer) left. Their keys are kept (1)."
    # The key still works, vouched for by the first owner now; who made it stays.
    vouched = key_principal(rt, made.raw_key)
    assert (vouched.member_id, vouched.email) == (alice.member_id, alice.email)
    active = run(rt.apikeys.list(principal=alice, status=ListFilter.ACTIVE)).items
    assert [info.created_by_member_id for info in active] == [dev.principal.member_id]


def test_invitations_are_limited_per_account_and_hour(runtime):
    alice = owner(runtime)
    for _ in range(INVITATIONS_PER_HOUR):
        run(
            runtime.members.invite(
                principal=alice, email=new_email("guest"), role="viewer", client=CLIENT
            )
        )
    with pytest.raises(RateLimited) as caught:
        run(
            runtime.members.invite(
                principal=alice, email=new_email("guest"), role="viewer", client=CLIENT
            )
        )
    assert caught.value.retry_after >= 1
    # Another account has its own allowance.
    run(
        runtime.members.invite(
            principal=owner(runtime), email=new_email("guest"), role="viewer", client=CLIENT
        )
    )
    assert len(run(runtime.members.invitations(alice))) == INVITATIONS_PER_HOUR


def test_pending_invitations_end_at_their_lifetime_and_withdraw_once(frozen_runtime, clock):
    rt = frozen_runtime
    alice = owner(rt)
    admin = join(rt, alice, "admin")
    first = run(rt.members.invite(principal=alice, email=new_email(), role="viewer", client=CLIENT))
    clock.advance(60)
    boss = run(rt.members.invite(principal=alice, email=new_email(), role="owner", client=CLIENT))
    assert [i.id for i in run(rt.members.invitations(alice))] == [boss.id, first.id]
    assert boss.expires_at == boss.created_at + INVITATION_LIFETIME
    # Only an owner withdraws an owner's invitation.
    with pytest.raises(Forbidden):
        run(rt.members.withdraw(principal=admin.principal, invitation_id=boss.id, client=CLIENT))
    run(rt.members.withdraw(principal=alice, invitation_id=boss.id, client=CLIENT))
    with pytest.raises(ValidationFailed):
        run(rt.members.withdraw(principal=alice, invitation_id=boss.id, client=CLIENT))
    (entry,) = audit(rt, alice.account_id, "member.invitation_withdrawn")
    assert entry.detail == f"The invitation of {boss.email} as owner was withdrawn."

    # Pending up to the last instant before expires_at; not at it.
    clock.advance((INVITATION_LIFETIME - timedelta(seconds=60, microseconds=1)).total_seconds())
    assert [i.id for i in run(rt.members.invitations(alice))] == [first.id]
    clock.advance(timedelta(microseconds=1).total_seconds())
    assert run(rt.members.invitations(alice)) == []


def test_a_key_made_while_its_member_is_demoted_does_not_outlive_the_demotion(runtime):
    alice = owner(runtime)
    for _ in range(3):
        dev = join(runtime, alice, "developer")

        async def at_once() -> list[object]:
            return await asyncio.gather(
                runtime.apikeys.create(principal=dev.principal, name="racing", client=CLIENT),
                runtime.members.change_role(
                    principal=alice,
                    member_id=dev.principal.member_id,
                    role="viewer",
                    client=CLIENT,
                ),
                return_exceptions=True,
            )

        made, demoted = run(at_once())
        assert not isinstance(demoted, BaseException), demoted
        # Either the create came first (and the demotion revoked its key) or it was
        # refused with the role as committed.
        assert isinstance(made, Forbidden) or not isinstance(made, BaseException), made
        racing = [
            info
            for info in run(runtime.apikeys.list(principal=alice)).items
            if info.created_by_member_id == dev.principal.member_id
        ]
        assert all(info.revoked_reason is RevokeReason.MEMBER for info in racing), racing
