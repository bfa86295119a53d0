"""The security log: one row per event, written in the transaction of the action,
and read back newest first by the account it belongs to.

What a row may hold is chosen so that the log can be shown to the owner as it
is: the actor is a session's token id (``jti``, useless without the signed token)
or a key's 8-character prefix, never a credential, a hash or a password; and every
entry names who acted (``actor_name``): the member's email, the key's prefix,
``github`` or ``system``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, tuple_

from paradarum.db.engine import Database
from paradarum.db.tables import audit_events
from paradarum.errors import ValidationFailed
from paradarum.services import confinement
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.pagination import DEFAULT_LIMIT, Page, newest_first


class Event(StrEnum):
    SIGNUP = "account.signup"
    EMAIL_VERIFIED = "account.email_verified"
    PASSWORD_CHANGED = "account.password_changed"
    PASSWORD_RESET = "account.password_reset"
    LOGIN_SUCCEEDED = "session.login_succeeded"
    LOGIN_FAILED = "session.login_failed"
    LOGOUT = "session.logout"
    KEY_CREATED = "key.created"
    KEY_FIRST_USED = "key.first_used"
    KEY_REVOKED = "key.revoked"
    KEY_ROLLED = "key.rolled"
    KEY_LEAKED = "key.leaked"
    KEY_REFUSED = "key.refused"
    PURGE_REQUESTED = "purge.requested"
    ZONE_ADDED = "zone.added"
    ZONE_VERIFIED = "zone.verified"
    ZONE_DELETED = "zone.deleted"
    ZONE_SUSPENDED = "zone.suspended"
    ZONE_MOVED = "zone.moved"
    NOTIFICATION = "notification.sent"
    ACCOUNT_SWITCHED = "session.account_switched"
    MEMBER_INVITED = "member.invited"
    INVITATION_WITHDRAWN = "member.invitation_withdrawn"
    MEMBER_JOINED = "member.joined"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    MEMBER_LEFT = "member.left"
    TRUST_POLICY_CREATED = "trust_policy.created"
    TRUST_POLICY_DELETED = "trust_policy.deleted"
    OIDC_KEY_MINTED = "oidc.key_minted"
    OIDC_TOKEN_REFUSED = "oidc.token_refused"
    REAUTHENTICATED = "session.reauthenticated"
    TOTP_ENABLED = "two_factor.totp_enabled"
    TOTP_DISABLED = "two_factor.totp_disabled"
    PASSKEY_ADDED = "two_factor.passkey_added"
    PASSKEY_REMOVED = "two_factor.passkey_removed"
    RECOVERY_CODE_USED = "two_factor.recovery_code_used"
    RECOVERY_CODES_RENEWED = "two_factor.recovery_codes_renewed"
    TWO_FACTOR_REQUIREMENT = "two_factor.requirement_changed"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROLLED = "webhook.secret_rolled"
    WEBHOOK_RESENT = "webhook.resent"
    WEBHOOK_DISABLED = "webhook.disabled"


class Actor(StrEnum):
    SESSION = "session"
    KEY = "key"
    ANONYMOUS = "anonymous"
    # Paradarum itself: an operator command, secret scanning, an expiry.
    SYSTEM = "system"
    # A CI job, by its OpenID Connect token's subject.
    OIDC = "oidc"


def record(
    conn: Connection,
    *,
    account_id: int,
    event: Event,
    at: datetime,
    client: ClientInfo,
    actor: Principal | None = None,
    actor_type: Actor | None = None,
    actor_id: str | None = None,
    actor_name: str | None = None,
    key_id: int | None = None,
    key_prefix: str | None = None,
    detail: str | None = None,
    zone_id: int | None = None,
) -> None:
    """Add one entry, in the caller's transaction (so it commits with the action).
    Who acted is ``actor`` (a member's session or a key), or else ``actor_name``
    (``system`` by default for :attr:`Actor.SYSTEM`)."""
    client = client.clipped()
    if actor is not None:
        actor_name = actor.actor_name
    elif actor_type is Actor.SYSTEM and actor_name is None:
        actor_name = "system"
    conn.execute(
        insert(audit_events).values(
            account_id=account_id,
            occurred_at=at,
            event=str(event),
            actor_type=str(actor.kind) if actor else str(actor_type or Actor.ANONYMOUS),
            actor_id=actor.actor_id if actor else actor_id,
            actor_name=actor_name[:320] if actor_name else None,
            key_id=key_id,
            key_prefix=key_prefix,
            client_address=client.address,
            user_agent=client.user_agent,
            detail=detail[:2048] if detail else None,
            zone_id=zone_id,
        )
    )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    event: str
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    actor_name: str | None
    key_id: int | None
    key_prefix: str | None
    client_address: str | None
    user_agent: str | None
    detail: str | None


_COLUMNS = (
    audit_events.c.id,
    audit_events.c.event,
    audit_events.c.occurred_at,
    audit_events.c.actor_type,
    audit_events.c.actor_id,
    audit_events.c.actor_name,
    audit_events.c.key_id,
    audit_events.c.key_prefix,
    audit_events.c.client_address,
    audit_events.c.user_agent,
    audit_events.c.detail,
)


#: One page of an export.
Events = list[AuditEvent]

#: Rows read per database round trip while exporting.
EXPORT_PAGE = 500


def parse_since(value: str | None) -> datetime | None:
    """``since`` of an export: RFC 3339 with a time zone (``Z`` or an offset)."""
    if value is None:
        return None
    problem = "Give an RFC 3339 time with a time zone, such as 2026-11-01T00:00:00Z."
    text = value.strip()
    if len(text) < 11 or text[10] not in "Tt ":
        raise ValidationFailed({"since": [problem]}, "The since parameter is invalid.")
    try:
        moment = datetime.fromisoformat(text[:10] + "T" + text[11:].upper().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed({"since": [problem]}, "The since parameter is invalid.") from None


class AuditLog:
    def __init__(self, *, db: Database) -> None:
        self._db = db

    async def list(
        self, *, principal: Principal, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[AuditEvent]:
        """The account's events, newest first (``occurred_at``, then ``id``); for a key
        limited to some zones, only those about its zones and keys."""
        query = select(*_COLUMNS).where(audit_events.c.account_id == principal.account_id)
        within = await self._db.read(lambda conn: confinement.audit_filter(conn, principal))
        return await newest_first(
            self._db,
            query if within is None else query.where(within),
            moment=audit_events.c.occurred_at,
            row_id=audit_events.c.id,
            limit=limit,
            cursor=cursor,
            item=lambda row: AuditEvent(**row._asdict()),
        )

    async def export(
        self, *, principal: Principal, since: str | None = None
    ) -> AsyncIterator[Events]:
        """The account's events oldest first (``occurred_at``, then ``id``), from
        ``since`` on, as pages read one after another (never the whole log in memory):
        SIEM tools take the log as a stream. Checks ``since`` before anything is read,
        so a bad one is a 400, not a broken stream."""
        start = parse_since(since)
        query = select(*_COLUMNS).where(audit_events.c.account_id == principal.account_id)
        within = await self._db.read(lambda conn: confinement.audit_filter(conn, principal))
        if within is not None:
            query = query.where(within)
        if start is not None:
            query = query.where(audit_events.c.occurred_at >= start)
        return self._pages(query)

    async def _pages(self, query: Any) -> AsyncIterator[Events]:
        after: tuple[datetime, int] | None = None
        while True:
            page = query
            if after is not None:
                page = page.where(
                    tuple_(audit_events.c.occurred_at, audit_events.c.id) > tuple_(*after)
                )
            page = page.order_by(audit_events.c.occurred_at, audit_events.c.id).limit(EXPORT_PAGE)
            rows = await self._db.read(_all, page)
            if not rows:
                return
            yield [AuditEvent(**row._asdict()) for row in rows]
            if len(rows) < EXPORT_PAGE:
                return
            after = (rows[-1].occurred_at, rows[-1].id)


def _all(conn: Connection, query: Any) -> Any:
    return conn.execute(query).all()
