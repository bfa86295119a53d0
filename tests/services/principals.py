"""People, sessions and keys for the service mirror tests, made through the services
themselves (sign-up, sign-in, invitation, authentication) on the test's runtime;
and what an action leaves behind: security-log entries, queued webhook payloads,
queued emails."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from paradarum.db.tables import audit_events, notifications, webhook_deliveries
from paradarum.runtime import Runtime
from paradarum.services.accounts import Session
from paradarum.services.context import ClientInfo, Principal
from paradarum.tokens import INVITATION
from tests.support import PASSWORD, run

CLIENT = ClientInfo(address="192.0.2.10", user_agent="service-test/1")
# A receiver on an address the tests' settings admit (nothing is sent: the
# runtime's background is not started, so deliveries stay queued).
RECEIVER = "http://127.0.0.1:9/hooks"
WEBHOOK_SETTINGS: dict[str, object] = {"webhook_allowed_networks": ["127.0.0.1/32"]}


def new_email(label: str = "user") -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


def authenticate(runtime: Runtime, credential: str) -> Principal:
    """The principal behind a session token or a raw key, as a request would get it.
    On PostgreSQL, authentication reads through the hot-read pool: opened here as the
    app's lifespan would (idempotent); each ``run`` is a loop of its own, so each
    read takes a connection of its own (``HotPool.fetchrow_once``)."""
    run(runtime.db.start())
    return run(runtime.authenticator.authenticate(credential, CLIENT))


def session_of(runtime: Runtime, session: Any) -> Principal:
    assert isinstance(session, Session), session
    return authenticate(runtime, session.token)


def signed_in(runtime: Runtime, email: str) -> Principal:
    """A fresh session of the person with ``email`` (for their home account)."""
    return session_of(
        runtime, run(runtime.accounts.login(email=email, password=PASSWORD, client=CLIENT))
    )


def owner(runtime: Runtime, email: str | None = None) -> Principal:
    """A new account's owner, signed in with a fresh session."""
    email = email or new_email("owner")
    run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT, force=True))
    return signed_in(runtime, email)


def key_principal(runtime: Runtime, raw_key: str) -> Principal:
    return authenticate(runtime, raw_key)


@dataclass(frozen=True)
class Joined:
    """A person who accepted an invitation: their session for the inviting account."""

    principal: Principal
    email: str


def join(runtime: Runtime, inviter: Principal, role: str) -> Joined:
    email = new_email(role)
    invitation = run(
        runtime.members.invite(principal=inviter, email=email, role=role, client=CLIENT)
    )
    person = owner(runtime, email)
    token = runtime.tokens.issue_email_token(
        subject=invitation.id,
        email=email,
        now=runtime.clock(),
        lifetime=timedelta(days=1),
        purpose=INVITATION,
    )
    run(runtime.members.accept(principal=person, token=token, client=CLIENT))
    switched = run(
        runtime.members.switch(principal=person, account_id=inviter.account_id, client=CLIENT)
    )
    return Joined(principal=session_of(runtime, switched), email=email)


def subscribe(runtime: Runtime, principal: Principal, *events: str) -> int:
    """An enabled webhook endpoint of the principal's account for ``events``."""
    created = run(
        runtime.webhooks.create(
            principal=principal, url=RECEIVER, events=list(events), client=CLIENT
        )
    )
    return int(created.endpoint.id)


def events(runtime: Runtime, event: str) -> list[dict[str, Any]]:
    """The ``data`` of every queued webhook message of type ``event``, oldest first."""
    with runtime.db.reading() as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.payload)
            .where(webhook_deliveries.c.event == event)
            .order_by(webhook_deliveries.c.id)
        ).all()
    return [json.loads(row.payload)["data"] for row in rows]


def audit(runtime: Runtime, account_id: int, event: str) -> list[Any]:
    """The account's security-log entries of ``event``, oldest first."""
    with runtime.db.reading() as conn:
        return list(
            conn.execute(
                select(audit_events)
                .where(audit_events.c.account_id == account_id, audit_events.c.event == event)
                .order_by(audit_events.c.id)
            ).all()
        )


def mails(runtime: Runtime, account_id: int, kind: str) -> list[dict[str, Any]]:
    """The payloads of the account's queued emails of ``kind``."""
    with runtime.db.reading() as conn:
        rows = conn.execute(
            select(notifications.c.payload)
            .where(notifications.c.account_id == account_id, notifications.c.kind == kind)
            .order_by(notifications.c.id)
        ).all()
    return [json.loads(row.payload) for row in rows]
