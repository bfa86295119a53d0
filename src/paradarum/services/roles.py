"""Who may do what: the one table of roles and actions, for sessions and keys alike.

A member of an account has one :class:`Role`. Every rule about permissions is a
lookup in :data:`ALLOWED` through :func:`require`, called by the services (never by
a route). A key acts for the member who vouches for it (at first the member who
made it): what it may do is what its own permission allows (``full`` or
``purge``) *and* what that member's **current** role allows, read with the key on
every request. So a key never holds more than a current member vouches for, and a
demotion takes effect on the member's keys at once.

Roles are nested: each may do everything the one below it may.
"""

from __future__ import annotations

from enum import StrEnum

from paradarum.errors import Forbidden


class Role(StrEnum):
    """From the most to the least powerful (the order :data:`ORDER` keeps)."""

    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    PURGER = "purger"
    VIEWER = "viewer"


class Action(StrEnum):
    # Read keys, zones, purges, usage and the security log; list the members.
    READ = "read"
    PURGE = "purge"
    CREATE_PURGE_KEY = "create_purge_key"
    # Keys with full access; revoking and rolling keys.
    MANAGE_KEYS = "manage_keys"
    MANAGE_ZONES = "manage_zones"
    MANAGE_TRUST_POLICIES = "manage_trust_policies"
    # Invite, change the role of and remove members who are not owners.
    MANAGE_MEMBERS = "manage_members"
    # See, pause, re-subscribe, delete webhook endpoints; their delivery logs, resend.
    MANAGE_WEBHOOKS = "manage_webhooks"
    # Where events go and what signs them: add an endpoint, change its URL, roll its
    # secret. A panel session only: a leaked key must not be able to send the
    # account's events to a server of its choosing, or learn a signing secret.
    DIRECT_WEBHOOKS = "direct_webhooks"
    # The same for owners (making someone an owner included).
    MANAGE_OWNERS = "manage_owners"
    DELETE_ACCOUNT = "delete_account"


ORDER: tuple[Role, ...] = (Role.VIEWER, Role.PURGER, Role.DEVELOPER, Role.ADMIN, Role.OWNER)

# What each role adds to the one below it.
_ADDS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.PURGER: frozenset({Action.PURGE, Action.CREATE_PURGE_KEY}),
    Role.DEVELOPER: frozenset(
        {Action.MANAGE_KEYS, Action.MANAGE_ZONES, Action.MANAGE_TRUST_POLICIES}
    ),
    Role.ADMIN: frozenset({Action.MANAGE_MEMBERS, Action.MANAGE_WEBHOOKS, Action.DIRECT_WEBHOOKS}),
    Role.OWNER: frozenset({Action.MANAGE_OWNERS, Action.DELETE_ACCOUNT}),
}


def _build() -> dict[Role, frozenset[Action]]:
    allowed: dict[Role, frozenset[Action]] = {}
    below: frozenset[Action] = frozenset()
    for role in ORDER:
        below = allowed[role] = below | _ADDS[role]
    return allowed


#: The table: every action each role may take.
ALLOWED: dict[Role, frozenset[Action]] = _build()

#: Managed with a panel session only, so no key has these: members and invitations,
#: trust policies (a key that could add one could mint keys that outlive it), and
#: webhook URLs and signing secrets.
SESSION_ONLY: dict[Action, str] = {
    Action.MANAGE_MEMBERS: "Members and invitations are",
    Action.MANAGE_OWNERS: "Members and invitations are",
    Action.MANAGE_TRUST_POLICIES: "Trust policies are",
    Action.DIRECT_WEBHOOKS: "Webhook URLs and signing secrets are",
}

#: What a key may do by its own permission (before its member's role caps it).
KEY_ACTIONS: dict[str, frozenset[Action]] = {
    "full": frozenset(Action) - set(SESSION_ONLY),
    "purge": frozenset({Action.PURGE}),
}


def may(role: Role | None, action: Action) -> bool:
    return role is not None and action in ALLOWED[role]


def least_role(action: Action) -> Role:
    """The least powerful role that may take ``action``."""
    return next(role for role in ORDER if action in ALLOWED[role])


def at_least(role: Role, other: Role) -> bool:
    """Whether ``role`` is ``other`` or above it."""
    return ORDER.index(role) >= ORDER.index(other)


class RoleForbidden(Forbidden):
    """The caller's role does not allow the action (403, naming the role it needs)."""

    def __init__(self, action: Action, role: Role | None) -> None:
        needed = least_role(action)
        above = "" if needed is Role.OWNER else " or above"
        yours = f"; your role is {role}" if role is not None else ""
        super().__init__(f"This needs the {needed} role{above} in this account{yours}.")
        self.needed = needed


class SessionOnly(Forbidden):
    message = (
        "Members and invitations are managed with a panel session (sign in): "
        "an API key cannot do that."
    )

    def __init__(self, action: Action = Action.MANAGE_MEMBERS) -> None:
        super().__init__(
            f"{SESSION_ONLY.get(action, 'This is')} managed with a panel session (sign in): "
            "an API key cannot do that."
        )


def require(role: Role | None, action: Action, *, key_permission: str | None = None) -> None:
    """Refuse (403) unless ``role`` may take ``action``; for a key (``key_permission``
    is its permission) the key's own permission must allow it too."""
    if key_permission is not None and action not in KEY_ACTIONS[key_permission]:
        if action in SESSION_ONLY:
            raise SessionOnly(action)
        raise Forbidden("This key's permissions do not allow that.")
    if not may(role, action):
        raise RoleForbidden(action, role)
