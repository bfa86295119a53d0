"""Email: what is sent to people, when, and its job kind on the job queue.

An event that deserves an email (a key added, a key revoked as leaked, a key about
to expire, an address to verify, a password reset link, a sign-in link) is
**enqueued in the transaction of the event** (:func:`enqueue`): a ``notifications``
row whose ``dedupe_key`` names the event, so an event is never announced twice and
never announced without having happened. The rows are jobs of the queue
(:mod:`paradarum.services.jobs`, kind ``email``): claimed with a lease, fair across
accounts, surviving restarts (the queue is the database). An attempt

* without a mail server (``PARADARUM_SMTP_URL`` unset) *records* the email: kept,
  and shown in the owner's security log, never lost;
* with one, builds the message (``messages.py``) and sends it through
  :class:`paradarum.mail.Mailer` on a thread of its own; a temporary failure (the
  relay down, a 4xx) is retried with backoff and jitter; a permanent one (a 5xx)
  ends as ``failed``;
* **at most once**: the queue marks a row ``sending`` before the relay is
  contacted. A process that dies while sending leaves it so; when its lease expires
  the row ends as ``failed`` ("outcome unknown") rather than being sent twice.

Every outcome is written to the security log (``notification.sent``) with what the
message was about, so the owner sees it in the panel either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, exists, func, select
from sqlalchemy.orm import aliased

from paradarum import messages
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.queries import usable_key
from paradarum.db.tables import accounts, api_keys, memberships, notifications, persons
from paradarum.db.types import as_utc
from paradarum.mail import Mailer, MailError
from paradarum.services import audit
from paradarum.services.context import ClientInfo
from paradarum.services.jobs import (
    Claim,
    Delivery,
    JobKind,
    Outcome,
    Result,
    RetryPolicy,
    Statuses,
)
from paradarum.services.roles import Role
from paradarum.tokens import INVITATION, RESET_PASSWORD, SIGN_IN, TokenCodec

logger = logging.getLogger("paradarum.notifications")

N = notifications
JOB_KIND = "email"
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
    # The same, to each owner of an account the person is a member of (not to an
    # owner who is that person): who it was and what changed, never a code.
    MEMBER_SECOND_FACTOR = "member_second_factor"
    # A member joined an account, left it or was removed: to its owners.
    MEMBERSHIP = "membership"
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
class Owner:
    """An owner to write to: the person, their address, the first account of theirs
    in question (the message is filed under it: its security log shows the
    outcome) and the names of all of those they own."""

    person_id: int
    email: str
    account_id: int
    account_names: tuple[str, ...]


def owners_of(
    conn: Connection, *, account_ids: Collection[int], excluding: Collection[int] = ()
) -> list[Owner]:
    """The owners of ``account_ids``, each person once (an owner of several of
    them is written to once, under the first), leaving out the persons
    ``excluding``: those who did the thing, or whom it is about, know already."""
    if not account_ids:
        return []
    query = (
        select(persons.c.id, persons.c.email, memberships.c.account_id, accounts.c.name)
        .join(memberships, memberships.c.person_id == persons.c.id)
        .join(accounts, accounts.c.id == memberships.c.account_id)
        .where(
            memberships.c.account_id.in_(list(account_ids)),
            memberships.c.role == str(Role.OWNER),
        )
        .order_by(memberships.c.account_id, memberships.c.id)
    )
    if excluding:
        query = query.where(persons.c.id.not_in(list(excluding)))
    rows = conn.execute(query).all()
    owners: dict[int, Owner] = {}
    for row in rows:
        first = owners.get(row.id)
        owners[row.id] = (
            Owner(
                person_id=row.id,
                email=row.email,
                account_id=row.account_id,
                account_names=(row.name,),
            )
            if first is None
            else replace(first, account_names=(*first.account_names, row.name))
        )
    return list(owners.values())


@dataclass(frozen=True, slots=True)
class EmailJob:
    """One email to send: to whom (None: the account has no owner left), about what."""

    account_id: int
    email: str | None
    kind: Kind
    payload: dict[str, Any]
    # The recipient person's session key, for the links bound to it (else "").
    session_key: str = ""


def load(row: Any) -> EmailJob:
    return EmailJob(
        account_id=row.job_account,
        email=row.email,
        kind=Kind(row.kind),
        payload=json.loads(row.payload),
        session_key=row.session_key or "",
    )


class Emails:
    """Builds, sends (or records) and schedules emails; :meth:`kind` is their job kind."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        tokens: TokenCodec,
        mailer: Mailer | None,
        mail_from: str,
        panel_url: str,
    ) -> None:
        self._db = db
        self._clock = clock
        self._tokens = tokens
        self._mailer = mailer
        self._from = mail_from
        self._panel = panel_url
        # SMTP is blocking: one thread of its own, so a slow relay holds nothing else.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paradarum-mail")

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def kind(
        self,
        *,
        max_attempts: int = 8,
        retry_seconds: float = 30.0,
        retry_max_seconds: float = 3600.0,
        lease_seconds: float = 120.0,
        poll_seconds: float = 2.0,
        batch_size: int = 20,
    ) -> JobKind[EmailJob]:
        """Email as a job kind: at most once, one message at a time (one SMTP thread)."""
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
        return JobKind(
            name=JOB_KIND,
            table=N,
            account=N.c.account_id,
            columns=(
                N.c.kind,
                N.c.payload,
                func.coalesce(N.c.recipient, first_owner).label("email"),
                select(persons.c.session_key)
                .where(persons.c.email == N.c.recipient)
                .scalar_subquery()
                .label("session_key"),
            ),
            load=load,
            created_at=N.c.created_at,
            policy=RetryPolicy(
                base_seconds=retry_seconds,
                max_seconds=retry_max_seconds,
                max_attempts=max_attempts,
            ),
            delivery=Delivery.AT_MOST_ONCE,
            statuses=Statuses(
                queued=str(Status.QUEUED),
                running=str(Status.SENDING),
                done=(str(Status.SENT), str(Status.RECORDED)),
                failed=str(Status.FAILED),
            ),
            perform=self.perform,
            finished=self.finished,
            values=self.values,
            lease_seconds=lease_seconds,
            concurrency=1,
            batch_size=batch_size,
            poll_seconds=poll_seconds,
        )

    async def perform(self, claim: Claim[EmailJob]) -> Outcome:
        job = claim.job
        if job.email is None:  # an account without owners: nobody to write to
            return Outcome.fail("no recipient")
        try:
            message = self.build(job, self._clock())
        except (ValueError, KeyError) as exc:  # a payload this version cannot render
            return Outcome.fail(f"not built: {exc}")
        if self._mailer is None:
            return Outcome.ok(str(Status.RECORDED))
        subject = str(message["Subject"])
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._mailer.send, message)
        except MailError as exc:
            logger.warning(
                "notification not sent",
                extra={"notification": claim.id, "attempt": claim.attempt, "reason": str(exc)},
            )
            if exc.temporary:
                return Outcome.retry(str(exc), data=subject)
            return Outcome.fail(str(exc), data=subject)
        return Outcome.ok(str(Status.SENT), data=subject)

    @staticmethod
    def values(claim: Claim[EmailJob], outcome: Outcome, now: datetime) -> dict[str, Any]:
        """Written with the outcome: when it went out, and no more of a link's
        payload than needed (what was needed to write it is no longer needed)."""
        if outcome.result is Result.RETRY:
            return {}
        values: dict[str, Any] = {"sent_at": now if outcome.result is Result.DONE else None}
        if claim.job.kind in LINK_KINDS:
            values["payload"] = "{}"
        return values

    @staticmethod
    def finished(conn: Connection, claim: Claim[EmailJob], outcome: Outcome, now: datetime) -> None:
        if outcome.result is Result.RETRY:
            return
        job = claim.job
        done = outcome.result is Result.DONE
        if outcome.status == Status.RECORDED or job.email is None:
            # Nothing went out: no mail server is configured, which is the operator's
            # business (PARADARUM_SMTP_URL), not an event of the account; or nobody
            # is left to write to.
            return
        subject = outcome.data or str(job.kind)
        detail = (
            f"Emailed to {job.email}: {subject}"
            if done
            else f"Could not be emailed to {job.email}: {subject}"
        )
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

    def build(self, job: EmailJob, now: datetime) -> EmailMessage:
        """The message ``job`` sends at ``now`` (its links are made now)."""
        payload = job.payload
        if job.email is None:
            raise ValueError("nobody to write to")
        email = job.email
        common: dict[str, Any] = {
            "to": email,
            "mail_from": self._from,
            "panel_url": self._panel,
            "date": now,
        }
        if job.kind is Kind.VERIFY_EMAIL:
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
        if job.kind in (Kind.ZONE_SUSPENDED, Kind.ZONE_MOVED):
            return messages.zone_lost(
                hostname=payload["hostname"],
                moved=job.kind is Kind.ZONE_MOVED,
                at=_time(payload["at"]),
                **common,
            )
        if job.kind is Kind.WEBHOOK_DISABLED:
            since = payload.get("failing_since")
            return messages.webhook_disabled(
                endpoint_id=payload["endpoint_id"],
                url=payload["url"],
                failing_since=_time(since) if since else None,
                at=_time(payload["at"]),
                reason=payload["reason"],
                **common,
            )
        if job.kind is Kind.SECOND_FACTOR:
            return messages.second_factor_changed(
                change=payload["change"],
                at=_time(payload["at"]),
                detail=payload.get("detail"),
                address=payload.get("address"),
                user_agent=payload.get("user_agent"),
                **common,
            )
        if job.kind is Kind.MEMBER_SECOND_FACTOR:
            return messages.member_second_factor_changed(
                member=payload["member"],
                account_names=payload["account_names"],
                change=payload["change"],
                at=_time(payload["at"]),
                address=payload.get("address"),
                user_agent=payload.get("user_agent"),
                **common,
            )
        if job.kind is Kind.MEMBERSHIP:
            return messages.membership_changed(
                member=payload["member"],
                role=payload["role"],
                account_name=payload["account_name"],
                change=payload["change"],
                by=payload.get("by"),
                at=_time(payload["at"]),
                **common,
            )
        if job.kind is Kind.INVITATION:
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
        if job.kind in BOUND_LINKS:
            if not job.session_key:
                # The person left or changed their address since: nobody to link.
                raise ValueError("the recipient is no longer a person with this email")
            # Bound to the session key the person has now: a reset replaces it, so a
            # reset link works once, and a password changed meanwhile voids either.
            purpose, lifetime = BOUND_LINKS[job.kind]
            token = self._tokens.issue_email_token(
                subject=payload["person_id"],
                email=email,
                now=now,
                lifetime=lifetime,
                purpose=purpose,
                session_key=job.session_key,
            )
            if job.kind is Kind.SIGN_IN_LINK:
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
                claimed=job.kind is Kind.ADDRESS_CLAIMED,
                **common,
            )
        key = messages.KeyRef(**payload["key"])
        if job.kind is Kind.KEY_ADDED:
            return messages.key_added(
                key=key,
                added_at=_time(payload["added_at"]),
                address=payload.get("address"),
                user_agent=payload.get("user_agent"),
                created_by_prefix=payload.get("created_by_prefix"),
                **common,
            )
        if job.kind is Kind.KEY_LEAKED:
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
        """Queue the 7-day and 1-day reminders that are due (each once per key); the
        number queued (the caller wakes the email worker)."""
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

        return await self._db.write(work)


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    return moment
