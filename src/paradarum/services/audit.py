"""The security log: one row per event, written in the transaction of the action,
and read back newest first by the account it belongs to.

What a row may hold is chosen so that the log can be shown to the owner as it
is: the actor is a session's token id (``jti``, useless without the signed token)
or a key's 8-character prefix, never a credential, a hash or a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from paradarum.db.engine import Database
from paradarum.db.tables import audit_events
from paradarum.errors import ValidationFailed
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.pagination import MAX_LIMIT, newest_first_page, next_cursor

SIGNUP = "account.signup"
LOGIN_SUCCEEDED = "session.login_succeeded"
LOGIN_FAILED = "session.login_failed"
LOGOUT = "session.logout"
PASSWORD_CHANGED = "account.password_changed"
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
KEY_FIRST_USED = "key.first_used"
PURGE_REQUESTED = "purge.requested"

EVENTS = (
    SIGNUP,
    LOGIN_SUCCEEDED,
    LOGIN_FAILED,
    LOGOUT,
    PASSWORD_CHANGED,
    KEY_CREATED,
    KEY_REVOKED,
    KEY_FIRST_USED,
    PURGE_REQUESTED,
)


def record(
    conn: Connection,
    *,
    account_id: int,
    event: str,
    at: datetime,
    client: ClientInfo,
    actor: Principal | None = None,
    actor_type: str | None = None,
    actor_id: str | None = None,
    key_id: int | None = None,
    key_prefix: str | None = None,
) -> None:
    client = client.clipped()
    conn.execute(
        insert(audit_events).values(
            account_id=account_id,
            occurred_at=at,
            event=event,
            actor_type=actor.kind if actor else (actor_type or "anonymous"),
            actor_id=actor.actor_id if actor else actor_id,
            key_id=key_id,
            key_prefix=key_prefix,
            client_address=client.address,
            user_agent=client.user_agent,
        )
    )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    event: str
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    key_id: int | None
    key_prefix: str | None
    client_address: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditEvent]
    next_cursor: str | None


_COLUMNS = (
    audit_events.c.id,
    audit_events.c.event,
    audit_events.c.occurred_at,
    audit_events.c.actor_type,
    audit_events.c.actor_id,
    audit_events.c.key_id,
    audit_events.c.key_prefix,
    audit_events.c.client_address,
    audit_events.c.user_agent,
)


class AuditLog:
    def __init__(self, *, db: Database) -> None:
        self._db = db

    def list(self, *, account_id: int, limit: int = 100, cursor: str | None = None) -> AuditPage:
        """The account's events, newest first (``occurred_at``, then ``id``)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed({"limit": [f"Use 1 to {MAX_LIMIT}."]})
        query = newest_first_page(
            select(*_COLUMNS).where(audit_events.c.account_id == account_id),
            moment=audit_events.c.occurred_at,
            row_id=audit_events.c.id,
            limit=limit,
            cursor=cursor,
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        items = [
            AuditEvent(
                id=row.id,
                event=row.event,
                occurred_at=row.occurred_at,
                actor_type=row.actor_type,
                actor_id=row.actor_id,
                key_id=row.key_id,
                key_prefix=row.key_prefix,
                client_address=row.client_address,
                user_agent=row.user_agent,
            )
            for row in rows[:limit]
        ]
        return AuditPage(
            items=items, next_cursor=next_cursor(rows, limit=limit, moment="occurred_at")
        )
