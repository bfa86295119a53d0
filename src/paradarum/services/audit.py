"""The security log: one row per event, written in the transaction of the action."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert

from paradarum.db.tables import audit_events
from paradarum.services.context import ClientInfo, Principal

SIGNUP = "account.signup"
LOGIN_SUCCEEDED = "session.login_succeeded"
LOGIN_FAILED = "session.login_failed"
LOGOUT = "session.logout"
PASSWORD_CHANGED = "account.password_changed"
KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
KEY_FIRST_USED = "key.first_used"
PURGE_REQUESTED = "purge.requested"


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
