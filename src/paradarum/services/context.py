"""Facts about the caller that services act on and record."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CredentialKind(StrEnum):
    SESSION = "session"
    KEY = "key"
    # An OpenID Connect ID token traded for a key (POST /api/oidc/token): never a
    # principal's kind, only what created such a key.
    OIDC = "oidc"


class Permission(StrEnum):
    """What a key may do. ``purge`` reaches the purge endpoints and
    ``GET /api/account`` only; ``full`` reaches everything account-scoped."""

    FULL = "full"
    PURGE = "purge"

    def allows(self, required: Permission) -> bool:
        return self is Permission.FULL or required is Permission.PURGE


@dataclass(frozen=True, slots=True)
class ClientInfo:
    address: str | None = None
    user_agent: str | None = None

    def clipped(self) -> ClientInfo:
        """Fit for storage: within the column sizes, and without NUL (which
        PostgreSQL text cannot hold; a real HTTP server never passes one on)."""
        return ClientInfo(
            address=(self.address or None) and self.address[:64].replace("\x00", ""),
            user_agent=(self.user_agent or None) and self.user_agent[:512].replace("\x00", ""),
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an account, through a panel session or through an API key."""

    account_id: int
    kind: CredentialKind
    key_id: int | None = None
    key_prefix: str | None = None
    token_id: str | None = None
    token_expires_at_epoch: int | None = None
    permission: Permission = Permission.FULL
    # A key restricted to purging some zones only (None: every zone of the account).
    zone_ids: tuple[int, ...] | None = None
    # A key usable from some addresses only.
    address_restricted: bool = False

    @property
    def restricted(self) -> bool:
        """A key limited to some zones or addresses: it may not make keys, which
        would carry no such limits."""
        return self.zone_ids is not None or self.address_restricted

    @property
    def actor_id(self) -> str | None:
        return self.key_prefix if self.kind is CredentialKind.KEY else self.token_id
