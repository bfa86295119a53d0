"""The one table of who may do what (services/roles.py)."""

from __future__ import annotations

import itertools

import pytest

from paradarum.errors import Forbidden
from paradarum.services.roles import (
    ALLOWED,
    ORDER,
    Action,
    Role,
    RoleForbidden,
    SessionOnly,
    least_role,
    may,
    require,
)


def test_each_role_may_do_everything_the_one_below_it_may():
    for lower, higher in itertools.pairwise(ORDER):
        assert ALLOWED[lower] < ALLOWED[higher], (lower, higher)
    assert ALLOWED[Role.OWNER] == frozenset(Action)


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (Role.VIEWER, {Action.READ}, {Action.PURGE, Action.CREATE_PURGE_KEY}),
        (Role.PURGER, {Action.PURGE, Action.CREATE_PURGE_KEY}, {Action.MANAGE_KEYS}),
        (
            Role.DEVELOPER,
            {Action.MANAGE_KEYS, Action.MANAGE_ZONES, Action.MANAGE_TRUST_POLICIES},
            {Action.MANAGE_MEMBERS},
        ),
        (Role.ADMIN, {Action.MANAGE_MEMBERS}, {Action.MANAGE_OWNERS, Action.DELETE_ACCOUNT}),
    ],
)
def test_what_each_role_may_and_may_not_do(role, allowed, refused):
    assert all(may(role, action) for action in allowed)
    assert not any(may(role, action) for action in refused)


def test_a_refusal_names_the_least_role_that_may():
    assert least_role(Action.MANAGE_TRUST_POLICIES) is Role.DEVELOPER
    with pytest.raises(RoleForbidden) as refused:
        require(Role.PURGER, Action.MANAGE_KEYS)
    assert refused.value.message == (
        "This needs the developer role or above in this account; your role is purger."
    )
    with pytest.raises(RoleForbidden) as owners:
        require(Role.ADMIN, Action.MANAGE_OWNERS)
    assert "needs the owner role in" in owners.value.message


def test_a_key_never_manages_members_whatever_its_member_s_role():
    with pytest.raises(SessionOnly):
        require(Role.OWNER, Action.MANAGE_MEMBERS, key_permission="full")
    require(Role.OWNER, Action.MANAGE_KEYS, key_permission="full")


def test_a_purge_key_purges_only_and_its_member_s_role_caps_it():
    require(Role.PURGER, Action.PURGE, key_permission="purge")
    with pytest.raises(Forbidden):
        require(Role.OWNER, Action.MANAGE_ZONES, key_permission="purge")
    with pytest.raises(RoleForbidden):
        require(Role.VIEWER, Action.PURGE, key_permission="purge")
    with pytest.raises(RoleForbidden):
        require(None, Action.READ, key_permission="full")
