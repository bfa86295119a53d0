"""Telling account owners what happened: the notification outbox and its sender.

An event that deserves an email (a key added, a key revoked as leaked, a key about
to expire, an address to verify, a password reset link, a sign-in link) is
**enqueued in the transaction of the event**: a ``notifications`` row whose
``dedupe_key`` names the event, so an event is never announced twice and never
announced without having happened. A background loop of
the runtime sends what is queued:

* without a mail server (``PARADARUM_SMTP_URL`` unset) a notification is
  *recorded*: kept, and shown in the owner's security log, never lost;
* with one, it is sent through :class:`paradarum.mail.Mailer` on a thread of its
  own; a temporary failure (the relay down, a 4xx) is retried with exponential
  backoff (rows survive restarts: the queue is the database); a permanent one
  (a 5xx) ends as ``failed``;
* **at most once**: a row is marked ``sending`` before the relay is contacted. A
  process that dies while sending leaves it so; when its claim expires the row
  ends as ``failed`` ("outcome unknown") rather than being sent a second time.

Every outcome is written to the security log (``notification.sent``) with what the
message was about, so the owner sees it in the panel either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, exists, func, select, update
from sqlalchemy.orm import aliased

from paradarum import messages
from paradarum.background import wait_for_any, wait_for_event
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.queries import usable_key
from paradarum.db.tables import api_keys, memberships, notifications, persons
from paradarum.db.types import as_utc
from paradarum.mail import Mailer, MailError
from paradarum.services import audit
from paradarum.services.context import ClientInfo
from paradarum.services.roles import Role
from paradarum.tokens import INVITATION, RESET_PASSWORD, SIGN_IN, TokenCodec

logger = logging.getLogger("paradarum.notifications")

N = notifications
EMAIL_TOKEN_LIFETIME = timedelta(hours=24)
RESET_TOKEN_LIFETIME = timedelta(hours=1)
SIGN_IN_TOKEN_LIFETIME = timedelta(minutes=15)
REMINDER_DAYS = (7, 1)


class Kind(StrEnum):
    KEY_ADDED = "key_added"
    KEY_LEAKED = "key_leaked"
    KEY_EXPIRING = "key_expiring"
    VERIFY_EMAIL = "verify_email"
    ZONE_SUSPENDED = "zone_suspended"
    ZONE_MOVED = "zone_moved"
    INVITATION = "invitation"
    # A link to choose a new password: asked for, or sent because a second sign-up
    # met an address that an unverified person holds.
    PASSWORD_RESET = "password_reset"
    ADDRESS_CLAIMED = "address_claimed"
    # The right password from a new address while the email is under attack.
    SIGN_IN_LINK = "sign_in_link"
    # A second factor turned on or off, a passkey added or removed, a recovery code
    # used: to the person whose factor it is.
    SECOND_FACTOR = "second_factor"
    # Paradarum stopped sending to a webhook endpoint whose deliveries kept failing.
    WEBHOOK_DISABLED = "webhook_disabled"


# Kinds whose link is bound to the person's session key: its purpose and lifetime.
# They are queued with the person's email as recipient and ``person_id`` in the payload.
BOUND_LINKS = {
    Kind.PASSWORD_RESET: (RESET_PASSWORD, RESET_TOKEN_LIFETIME),
    Kind.ADDRESS_CLAIMED: (RESET_PASSWORD, RESET_TOKEN_LIFETIME),
    Kind.SIGN_IN_LINK: (SIGN_IN, SIGN_IN_TOKEN_LIFETIME),
}
# Kinds whose message carries a link made at send time: nothing to keep afterwards.
LINK_KINDS = frozenset({Kind.VERIFY_EMAIL, *BOUND_LINKS})


class Status(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    RECORDED = "recorded"


def key_ref(row: Any) -> dict[str, Any]:
    """A key as messages name it: never more than its 8-character prefix."""
    return {"id": row.id, "name": row.name, "prefix": row.key_prefix}


def enqueue(
    conn: Connection,
    db: Database,
    *,
    account_id: int,
    kind: Kind,
    dedupe_key: str,
    payload: Mapping[str, Any],
    now: datetime,
    recipient: str | None = None,
) -> bool:
    """Queue a notification in the caller's transaction; False if that event was
    already queued (``dedupe_key``). It goes to ``recipient``, or by default to
    the account's first owner."""
    inserted = conn.execute(
        db.insert(N)
        .values(
            account_id=account_id,
            recipient=recipient,
            kind=str(kind),
            dedupe_key=dedupe_key[:200],
            payload=json.dumps(payload, default=str),
            status=str(Status.QUEUED),
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[N.c.dedupe_key])
        .returning(N.c.id)
    ).first()
    return inserted is not None


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    account_id: int
    email: str
    kind: Kind
    payload: dict[str, Any]
    attempt: int
    # The recipient person's session key, for the links bound to it (else "").
    session_key: str = ""


class Notifier:
    """Sends (or records) queued notifications; :meth:`run` is the loop."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        tokens: TokenCodec,
        mailer: Mailer | None,
        mail_from: str,
        panel_url: str,
        max_attempts: int = 8,
        retry_seconds: float = 30.0,
        retry_max_seconds: float = 3600.0,
        lease_seconds: float = 120.0,
        poll_seconds: float = 2.0,
        batch_size: int = 20,
    ) -> None:
        self._db = db
        self._clock = clock
        self._tokens = tokens
        self._mailer = mailer
        self._from = mail_from
        self._panel = panel_url
        self.max_attempts = max_attempts
        self._retry = retry_seconds
        self._retry_max = retry_max_seconds
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._batch = batch_size
        self._wake: asyncio.Event | None = None
        # SMTP is blocking: one thread of its own, so a slow relay holds nothing else.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paradarum-mail")

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    # -- the loop --------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        self._wake = asyncio.Event()
        try:
            while not stopping.is_set():
                self._wake.clear()
                try:
                    handled = await self.run_once()
                except Exception:
                    logger.exception("notification pass failed")
                    await wait_for_event(stopping, 10.0)
                    continue
                if handled == 0:
                    await wait_for_any(stopping, self._wake, seconds=self._poll)
        finally:
            self._wake = None

    async def run_once(self) -> int:
        """Give up on rows whose sender died; then, up to a batch, claim one due row
        and send it, one at a time: a row's lease starts when its own send does, so
        a slow relay never lets another process give up on rows still waiting."""
        handled = 0
        while handled < self._batch:
            claims = await self._db.write(self._claim, self._clock(), 1)
            if not claims:
                break
            for claim in claims:
                await self._deliver(claim)
            handled += len(claims)
        return handled

    def _claim(self, conn: Connection, now: datetime, limit: int) -> list[Claim]:
        # A claim that expired while "sending": its process died mid-send. Whether the
        # relay got the message is unknown, and sending again could make it twice.
        conn.execute(
            update(N)
            .where(N.c.status == str(Status.SENDING), N.c.claimed_until <= now)
            .values(
                status=str(Status.FAILED),
                last_error="the sending process stopped; not sent again (at most once)",
                claimed_until=None,
            )
        )
        first_owner = (
            select(persons.c.email)
            .join(memberships, memberships.c.person_id == persons.c.id)
            .where(
                memberships.c.account_id == N.c.account_id, memberships.c.role == str(Role.OWNER)
            )
            .order_by(memberships.c.id)
            .limit(1)
            .scalar_subquery()
        )
        rows = conn.execute(
            select(
                N.c.id,
                N.c.account_id,
                N.c.kind,
                N.c.payload,
                N.c.attempts,
                func.coalesce(N.c.recipient, first_owner).label("email"),
                select(persons.c.session_key)
                .where(persons.c.email == N.c.recipient)
                .scalar_subquery()
                .label("session_key"),
            )
            .where(N.c.status == str(Status.QUEUED), N.c.next_attempt_at <= now)
            .order_by(N.c.next_attempt_at, N.c.id)
            .limit(limit)
        ).all()
        claims = []
        for row in rows:
            if row.email is None:  # an account without owners: nobody to write to
                conn.execute(
                    update(N)
                    .where(N.c.id == row.id)
                    .values(status=str(Status.FAILED), last_error="no recipient")
                )
                continue
            changed = conn.execute(
                update(N)
                .where(N.c.id == row.id, N.c.status == str(Status.QUEUED))
                .values(
                    status=str(Status.SENDING),
                    attempts=row.attempts + 1,
                    claimed_until=now + timedelta(seconds=self._lease),
                )
            ).rowcount
            if changed == 1:
                claims.append(
                    Claim(
                        id=row.id,
                        account_id=row.account_id,
                        email=row.email,
                        kind=Kind(row.kind),
                        payload=json.loads(row.payload),
                        attempt=row.attempts + 1,
                        session_key=row.session_key or "",
                    )
                )
        return claims

    async def _deliver(self, claim: Claim) -> None:
        now = self._clock()
        try:
            message = self.build(claim, now)
        except (ValueError, KeyError) as exc:  # a payload this version cannot render
            await self._db.write(self._finish, claim, Status.FAILED, f"not built: {exc}", None, now)
            return
        if self._mailer is None:
            await self._db.write(self._finish, claim, Status.RECORDED, None, message, now)
            return
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._mailer.send, message)
        except MailError as exc:
            logger.warning(
                "notification not sent",
                extra={"notification": claim.id, "attempt": claim.attempt, "reason": str(exc)},
            )
            if exc.temporary and claim.attempt < self.max_attempts:
                delay = min(self._retry_max, self._retry * 2 ** (claim.attempt - 1))
                await self._db.write(self._retry_later, claim, str(exc), now, delay)
            else:
                await self._db.write(self._finish, claim, Status.FAILED, str(exc), message, now)
            return
        await self._db.write(self._finish, claim, Status.SENT, None, message, self._clock())

    @staticmethod
    def _retry_later(
        conn: Connection, claim: Claim, error: str, now: datetime, delay: float
    ) -> None:
        conn.execute(
            update(N)
            .where(N.c.id == claim.id, N.c.status == str(Status.SENDING))
            .values(
                status=str(Status.QUEUED),
                claimed_until=None,
                last_error=error[:500],
                next_attempt_at=now + timedelta(seconds=delay),
            )
        )

    def _finish(
        self,
        conn: Connection,
        claim: Claim,
        status: Status,
        error: str | None,
        message: EmailMessage | None,
        now: datetime,
    ) -> None:
        changed = conn.execute(
            update(N)
            .where(N.c.id == claim.id, N.c.status == str(Status.SENDING))
            .values(
                status=str(status),
                claimed_until=None,
                sent_at=now if status in (Status.SENT, Status.RECORDED) else None,
                last_error=error[:500] if error else None,
                # What was needed to write it is no longer needed.
                payload="{}" if claim.kind in LINK_KINDS else N.c.payload,
            )
        ).rowcount
        if changed != 1 or status is Status.RECORDED:
            # Nothing went out: no mail server is configured, which is the operator's
            # business (PARADARUM_SMTP_URL), not an event of the account.
            return
        subject = str(message["Subject"]) if message is not None else str(claim.kind)
        detail = {
            Status.SENT: f"Emailed to {claim.email}: {subject}",
            Status.FAILED: f"Could not be emailed to {claim.email}: {subject}",
        }[status]
        audit.record(
            conn,
            account_id=claim.account_id,
            event=audit.Event.NOTIFICATION,
            at=now,
            client=ClientInfo(),
            actor_type=audit.Actor.SYSTEM,
            detail=detail,
        )

    # -- what is sent ------------------------------------------------------------------

    def build(self, claim: Claim, now: datetime) -> EmailMessage:
        payload = claim.payload
        common: dict[str, Any] = {
            "to": claim.email,
            "mail_from": self._from,
            "panel_url": self._panel,
            "date": now,
        }
        if claim.kind is Kind.VERIFY_EMAIL:
            token = self._tokens.issue_email_token(
                # Queued before teams: the account's person has the account's id.
                subject=payload.get("person_id", claim.account_id),
                email=claim.email,
                now=now,
                lifetime=EMAIL_TOKEN_LIFETIME,
            )
            return messages.email_verification(
                token=token, valid_for=EMAIL_TOKEN_LIFETIME, **common
            )
        if claim.kind in (Kind.ZONE_SUSPENDED, Kind.ZONE_MOVED):
            return messages.zone_lost(
                hostname=payload["hostname"],
                moved=claim.kind is Kind.ZONE_MOVED,
                at=_time(payload["at"]),
                **common,
            )
        if claim.kind is Kind.WEBHOOK_DISABLED:
            since = payload.get("failing_since")
            return messages.webhook_disabled(
                endpoint_id=payload["endpoint_id"],
                url=payload["url"],
                failing_since=_time(since) if since else None,
                at=_time(payload["at"]),
                reason=payload["reason"],
                **common,
            )
        if claim.kind is Kind.SECOND_FACTOR:
            return messages.second_factor_changed(
                change=payload["change"],
                at=_time(payload["at"]),
                detail=payload.get("detail"),
                address=payload.get("address"),
                user_agent=payload.get("user_agent"),
                **common,
            )
        if claim.kind is Kind.INVITATION:
            expires_at = _time(payload["expires_at"])
            token = self._tokens.issue_email_token(
                subject=payload["invitation_id"],
                email=claim.email,
                now=now,
                lifetime=max(expires_at - now, timedelta(seconds=1)),
                purpose=INVITATION,
            )
            return messages.invitation(
                token=token,
                account_name=payload["account_name"],
                role=payload["role"],
                invited_by=payload.get("invited_by"),
                expires_at=expires_at,
                **common,
            )
        if claim.kind in BOUND_LINKS:
            if not claim.session_key:
                # The person left or changed their address since: nobody to link.
                raise ValueError("the recipient is no longer a person with this email")
            # Bound to the session key the person has now: a reset replaces it, so a
            # reset link works once, and a password changed meanwhile voids either.
            purpose, lifetime = BOUND_LINKS[claim.kind]
            token = self._tokens.issue_email_token(
                subject=payload["person_id"],
                email=claim.email,
                now=now,
                lifetime=lifetime,
                purpose=purpose,
                session_key=claim.session_key,
            )
            if claim.kind is Kind.SIGN_IN_LINK:
                return messages.sign_in_link(
                    token=token,
                    valid_for=lifetime,
                    address=payload.get("address"),
                    user_agent=payload.get("user_agent"),
                    **common,
                )
            return messages.password_reset(
                token=token,
                valid_for=lifetime,
                claimed=claim.kind is Kind.ADDRESS_CLAIMED,
                **common,
            )
        key = messages.KeyRef(**payload["key"])
        if claim.kind is Kind.KEY_ADDED:
            return messages.key_added(
                key=key,
                added_at=_time(payload["added_at"]),
                address=payload.get("address"),
                user_agent=payload.get("user_agent"),
                created_by_prefix=payload.get("created_by_prefix"),
                **common,
            )
        if claim.kind is Kind.KEY_LEAKED:
            return messages.key_revoked_as_leaked(
                key=key,
                found_at=payload["found_at"],
                revoked_at=_time(payload["revoked_at"]),
                also_revoked=[messages.KeyRef(**other) for other in payload["also_revoked"]],
                **common,
            )
        return messages.key_expiring(key=key, expires_at=_time(payload["expires_at"]), **common)

    # -- reminders -------------------------------------------------------------------------

    async def remind_expiring(self) -> int:
        """Queue the 7-day and 1-day reminders that are due (each once per key)."""
        now = self._clock()

        replacement = aliased(api_keys)

        def work(conn: Connection) -> int:
            queued = 0
            rows = conn.execute(
                select(
                    api_keys.c.id,
                    api_keys.c.account_id,
                    api_keys.c.name,
                    api_keys.c.key_prefix,
                    api_keys.c.expires_at,
                ).where(
                    usable_key(now),
                    api_keys.c.expires_at <= now + timedelta(days=max(REMINDER_DAYS)),
                    # A rolled key in its grace period has its replacement already.
                    ~exists().where(replacement.c.replaces_id == api_keys.c.id),
                )
            ).all()
            for row in rows:
                expires = as_utc(row.expires_at)
                assert expires is not None
                # The closest reminder only: a key made to expire in 12 hours gets the
                # one-day reminder, not the seven-day one as well.
                days = min(d for d in REMINDER_DAYS if expires - now <= timedelta(days=d))
                if enqueue(
                    conn,
                    self._db,
                    account_id=row.account_id,
                    kind=Kind.KEY_EXPIRING,
                    dedupe_key=f"key_expiring:{row.id}:{days}d",
                    payload={"key": key_ref(row), "expires_at": expires.isoformat()},
                    now=now,
                ):
                    queued += 1
            return queued

        queued = await self._db.write(work)
        if queued:
            self.wake()
        return queued


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    return moment
