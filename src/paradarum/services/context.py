"""Facts about the caller that services record (audit, last-used-from)."""

from __future__ import annotations

from dataclasses import dataclass


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
    kind: str  # "session" | "key"
    key_id: int | None = None
    key_prefix: str | None = None
    token_id: str | None = None
    token_expires_at_epoch: int | None = None

    @property
    def actor_id(self) -> str | None:
        return self.key_prefix if self.kind == "key" else self.token_id
