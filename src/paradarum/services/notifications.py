"""Telling account owners what happened: emails, on the job queue.

An event that deserves an email (a key added, a key revoked as leaked, a key about
to expire, an address to verify, a password reset link, a sign-in link, a zone
lost) is **enqueued in the transaction of the event** (:func:`enqueue`): a job of
kind ``email`` (``services/queue.py``) whose ``dedupe_key`` names the event, so an
event is never announced twice and never announced without having happened.
:class:`Notifier` is that kind's handler:

* without a mail server (``PARADARUM_SMTP_URL`` unset) a notification is
  *recorded*: kept, and shown in the owner's security log, never lost;
* with one, it is sent through :class:`paradarum.mail.Mailer` on a thread of its
  own; a temporary failure (the relay down, a 4xx) is retried with exponential
  backoff and jitter (jobs survive restarts: the queue is the database); a
  permanent one (a 5xx) ends as ``failed``;
* **at most once**: a job is ``running`` before the relay is contacted. A process
  that dies while sending leaves it so; when its lease runs out the job ends as
  ``failed`` rather than being sent a second time.

Every outcome is written to the security log (``notification.sent``) with what the
message was about, so the owner sees it in the panel either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, exists, select, update
from sqlalchemy.orm import aliased

from paradarum import messages
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys, jobs, memberships, persons
from paradarum.db.types import as_utc
from paradarum.mail import Mailer, MailError
from paradarum.services import audit
from paradarum.services.context import ClientInfo
from paradarum.services.queue import Job, JobKind, JobStatus, Outcome, Policy
from paradarum.services.queue import enqueue as enqueue_job
from paradarum.services.roles import Role
from paradarum.tokens import INVITATION, RESET_PASSWORD, SIGN_IN, TokenCodec

logger = logging.getLogger("paradarum.notifications")

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
    WEBHOOK_DISABLED = "webhook_disabled"
    # A link to choose a new password: asked for, or sent because a second sign-up
    # met an address that an unverified person holds.
    PASSWORD_RESET = "password_reset"
    ADDRESS_CLAIMED = "address_claimed"
    # The right password from a new address while the email is under attack.
    SIGN_IN_LINK = "sign_in_link"


# Kinds whose link is bound to the person's session key: its purpose and lifetime.
# They are queued with the person's email as recipient and ``person_id`` in the payload.
BOUND_LINKS = {
    Kind.PASSWORD_RESET: (RESET_PASSWORD, RESET_TOKEN_LIFETIME),
    Kind.ADDRESS_CLAIMED: (RESET_PASSWORD, RESET_TOKEN_LIFETIME),
    Kind.SIGN_IN_LINK: (SIGN_IN, SIGN_IN_TOKEN_LIFETIME),
}
# Kinds whose message carries a link made at send time: nothing to keep afterwards.
LINK_KINDS = frozenset({Kind.VERIFY_EMAIL, *BOUND_LINKS})


class Sent(StrEnum):
    """What became of an email that was not refused (a job's ``result``)."""

    SENT = "sent"
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
    return (
        enqueue_job(
            conn,
            db,
            kind=JobKind.EMAIL,
            account_id=account_id,
            payload={"message": str(kind), "data": dict(payload), "recipient": recipient},
            dedupe_key=dedupe_key,
            now=now,
        )
        is not None
    )


class Notifier:
    """The ``email`` kind of job: builds the message and sends (or records) it."""

    kind = JobKind.EMAIL

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
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._tokens = tokens
        self._mailer = mailer
        self._from = mail_from
        self._panel = panel_url
        # One at a time: SMTP is blocking and has a thread of its own, and a job's
        # lease starts when its own send does, so a slow relay never lets another
        # process give up on jobs still waiting.
        self.policy = Policy(
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            retry_max_seconds=retry_max_seconds,
            lease_seconds=lease_seconds,
            concurrency=1,
            at_most_once=True,
        )
        self._on_queued = on_queued
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paradarum-mail")
        # What each job in hand is about, and to whom, for its security-log entry.
        self._subjects: dict[int, str] = {}
        self._recipients: dict[int, str] = {}

    def wake(self) -> None:
        """Send now rather than at the next poll (an email was just queued)."""
        if self._on_queued is not None:
            self._on_queued()

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    # -- the job ----------------------------------------------------------------------

    def claimed(self, conn: Connection, jobs: Sequence[Job], now: datetime) -> None:
        return None

    async def perform(self, job: Job) -> Outcome:
        now = self._clock()
        email = job.payload.get("recipient") or await self._db.read(
            lambda conn: conn.execute(_first_owner(job.account_id)).scalar_one_or_none()
        )
        if email is None:  # an account without owners: nobody to write to
            return Outcome.fail("no recipient")
        self._recipients[job.id] = email
        session_key: str | None = None
        if job.payload.get("message") in BOUND_LINKS:
            # The recipient person's key now: the link is bound to it.
            session_key = await self._db.read(
                lambda conn: conn.execute(
                    select(persons.c.session_key).where(persons.c.email == email)
                ).scalar_one_or_none()
            )
        try:
            message = self.build(job, now, email=email, session_key=session_key or "")
        except (ValueError, KeyError, LookupError) as exc:  # a payload this version cannot render
            return Outcome.fail(f"not built: {exc}")
        self._subjects[job.id] = str(message["Subject"])
        if self._mailer is None:
            return Outcome.done(str(Sent.RECORDED))
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._mailer.send, message)
        except MailError as exc:
            logger.warning(
                "notification not sent",
                extra={"notification": job.id, "attempt": job.attempt, "reason": str(exc)},
            )
            if exc.temporary:
                return Outcome.retry(str(exc))
            return Outcome.fail(str(exc))
        return Outcome.done(str(Sent.SENT))

    def finished(
        self, conn: Connection, job: Job, status: JobStatus, outcome: Outcome, now: datetime
    ) -> None:
        if status is JobStatus.QUEUED:
            return  # tried again later
        if job.payload.get("message") in LINK_KINDS:
            # What was needed to write it is no longer needed.
            conn.execute(update(jobs).where(jobs.c.id == job.id).values(payload="{}"))
        email = self._recipients.pop(job.id, None) or "the account's owner"
        subject = self._subjects.pop(job.id, None) or str(job.payload.get("message", "a message"))
        if status is JobStatus.DONE and outcome.result == Sent.RECORDED:
            # Nothing went out: no mail server is configured, which is the operator's
            # business (PARADARUM_SMTP_URL), not an event of the account.
            return
        if status is JobStatus.FAILED:
            detail = f"Could not be emailed to {email}: {subject}"
        else:
            detail = f"Emailed to {email}: {subject}"
        audit.record(
            conn,
            account_id=job.account_id,
            event=audit.Event.NOTIFICATION,
            at=now,
            client=ClientInfo(),
            actor_type=audit.Actor.SYSTEM,
            detail=detail,
        )

    # -- what is sent ------------------------------------------------------------------

    def build(self, job: Job, now: datetime, *, email: str, session_key: str = "") -> EmailMessage:
        """The message ``job`` sends to ``email``; ``session_key``: the recipient
        person's, for the links bound to it."""
        kind = Kind(job.payload["message"])
        payload = job.payload["data"]
        common: dict[str, Any] = {
            "to": email,
            "mail_from": self._from,
            "panel_url": self._panel,
            "date": now,
        }
        if kind is Kind.VERIFY_EMAIL:
            token = self._tokens.issue_email_token(
                # Queued before teams: the account's person has the account's id.
                subject=payload.get("person_id", job.account_id),
                email=email,
                now=now,
                lifetime=EMAIL_TOKEN_LIFETIME,
            )
            return messages.email_verification(
                token=token, valid_for=EMAIL_TOKEN_LIFETIME, **common
            )
        if kind in (Kind.ZONE_SUSPENDED, Kind.ZONE_MOVED):
            return messages.zone_lost(
                hostname=payload["hostname"],
                moved=kind is Kind.ZONE_MOVED,
                at=_time(payload["at"]),
                **common,
            )
        if kind is Kind.INVITATION:
            expires_at = _time(payload["expires_at"])
            token = self._tokens.issue_email_token(
                subject=payload["invitation_id"],
                email=email,
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
        if kind is Kind.WEBHOOK_DISABLED:
            return messages.webhook_disabled(
                url=payload["url"], failing_since=_time(payload["failing_since"]), **common
            )
        if kind in BOUND_LINKS:
            if not session_key:
                # The person left or changed their address since: nobody to link.
                raise ValueError("the recipient is no longer a person with this email")
            # Bound to the session key the person has now: a reset replaces it, so a
            # reset link works once, and a password changed meanwhile voids either.
            purpose, lifetime = BOUND_LINKS[kind]
            token = self._tokens.issue_email_token(
                subject=payload["person_id"],
                email=email,
                now=now,
                lifetime=lifetime,
                purpose=purpose,
                session_key=session_key,
            )
            if kind is Kind.SIGN_IN_LINK:
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
                claimed=kind is Kind.ADDRESS_CLAIMED,
                **common,
            )
        key = messages.KeyRef(**payload["key"])
        if kind is Kind.KEY_ADDED:
            return messages.key_added(
                key=key,
                added_at=_time(payload["added_at"]),
                address=payload.get("address"),
                user_agent=payload.get("user_agent"),
                created_by_prefix=payload.get("created_by_prefix"),
                **common,
            )
        if kind is Kind.KEY_LEAKED:
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
                    api_keys.c.revoked_at.is_(None),
                    and_(
                        api_keys.c.expires_at > now,
                        api_keys.c.expires_at <= now + timedelta(days=max(REMINDER_DAYS)),
                    ),
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


def _first_owner(account_id: int) -> Any:
    """The email of the account's first owner (who account-wide mail goes to)."""
    return (
        select(persons.c.email)
        .join(memberships, memberships.c.person_id == persons.c.id)
        .where(memberships.c.account_id == account_id, memberships.c.role == str(Role.OWNER))
        .order_by(memberships.c.id)
        .limit(1)
    )


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    return moment


def notify_webhook_disabled(
    conn: Connection, db: Database, *, endpoint: Any, now: datetime
) -> None:
    """Tell the owner, in the transaction that turned the endpoint off."""
    failing_since = as_utc(endpoint.failing_since) or now
    enqueue(
        conn,
        db,
        account_id=endpoint.account_id,
        kind=Kind.WEBHOOK_DISABLED,
        dedupe_key=f"webhook_disabled:{endpoint.id}:{int(now.timestamp())}",
        payload={"url": endpoint.url, "failing_since": failing_since.isoformat()},
        now=now,
    )
