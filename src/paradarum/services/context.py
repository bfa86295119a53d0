"""Facts about the caller that services act on and record."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from paradarum.errors import StepUpRequired
from paradarum.services.roles import Action, Role, require

#: How recent a sign-in (or re-authentication) must be for actions that mint power.
STEP_UP_SECONDS = 600


class CredentialKind(StrEnum):
    SESSION = "session"
    KEY = "key"


class Permission(StrEnum):
    """What a key may do. ``purge`` reaches the purge endpoints and
    ``GET /api/account`` only; ``full`` reaches everything account-scoped."""

    FULL = "full"
    PURGE = "purge"

    def allows(self, required: Permission) -> bool:
        return self is Permission.FULL or required is Permission.PURGE


# The two facts built on every authenticated request are msgspec structs rather
# than frozen dataclasses: as immutable, and built in a tenth of the time (a frozen
# dataclass sets each field through object.__setattr__; docs/performance.md).


class ClientInfo(msgspec.Struct, frozen=True):
    address: str | None = None
    user_agent: str | None = None

    def clipped(self) -> ClientInfo:
        """Fit for storage: within the column sizes, and without NUL (which
        PostgreSQL text cannot hold; a real HTTP server never passes one on)."""
        return ClientInfo(
            address=(self.address or None) and self.address[:64].replace("\x00", ""),
            user_agent=(self.user_agent or None) and self.user_agent[:512].replace("\x00", ""),
        )


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: a member of an account, through a panel session or through an
    API key (then the member who vouches for the key)."""

    account_id: int
    kind: CredentialKind
    # The member (and their person) acting, or vouching for the key; their current
    # role, and their email (what GET /api/account and the security log show).
    role: Role | None = None
    member_id: int | None = None
    person_id: int | None = None
    email: str | None = None
    key_id: int | None = None
    key_prefix: str | None = None
    token_id: str | None = None
    token_expires_at_epoch: int | None = None
    permission: Permission = Permission.FULL
    # A key restricted to purging some zones only (None: every zone of the account).
    zone_ids: tuple[int, ...] | None = None
    # A key usable from some addresses only.
    address_restricted: bool = False
    # A session: when the person last proved who they are (epoch seconds).
    auth_time_epoch: int | None = None
    # What GET /api/account shows, read with the key in one statement when the route
    # asked for it (db/queries.py: KEY_WITH_ACCOUNT): name, created, email verified,
    # active keys, whether the account requires two-factor.
    account_row: tuple[Any, ...] | None = None

    @property
    def restricted(self) -> bool:
        """A key limited to some zones or addresses: it may not make keys, which
        would carry no such limits."""
        return self.zone_ids is not None or self.address_restricted

    def require(self, action: Action) -> None:
        """403 unless this caller may take ``action`` (``services/roles.py``)."""
        require(
            self.role,
            action,
            key_permission=str(self.permission) if self.kind is CredentialKind.KEY else None,
        )

    def require_step_up(self, now: datetime) -> None:
        """403 ``stepUpRequired`` unless this session's sign-in or re-authentication
        is at most :data:`STEP_UP_SECONDS` old. A key has no sign-in: what it may do is
        its permission and its member's role, and keys are not subject to step-up
        (members, trust policies and second factors are session-only anyway)."""
        if self.kind is not CredentialKind.SESSION:
            return
        if self.auth_time_epoch is None or now.timestamp() - self.auth_time_epoch > STEP_UP_SECONDS:
            raise StepUpRequired

    @property
    def actor_name(self) -> str | None:
        """Who the security log names: the member's email, or the key's prefix."""
        return self.key_prefix if self.kind is CredentialKind.KEY else self.email

    @property
    def actor_id(self) -> str | None:
        return self.key_prefix if self.kind is CredentialKind.KEY else self.token_id
