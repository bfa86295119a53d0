"""Accounts and panel sessions: sign-up, sign-in, sign-out, password change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from paradarum.clock import Clock
from paradarum.config import Settings
from paradarum.db.engine import Database
from paradarum.db.tables import accounts, revoked_sessions
from paradarum.db.types import as_utc
from paradarum.errors import (
    AccountNotFound,
    EmailTaken,
    NotASession,
    NotAuthenticated,
    RateLimited,
    SignupDisabled,
    ValidationFailed,
)
from paradarum.passwords import Passwords
from paradarum.ratelimit import RateLimiter, address_bucket
from paradarum.services import audit, validation
from paradarum.services.context import ClientInfo, Principal
from paradarum.tokens import SessionClaims, TokenCodec

WRONG_CREDENTIALS = "Wrong email or password."
TOO_MANY_FAILURES = "Too many failed sign-ins. Try again later."
# Signed-out token ids are kept until the token would have expired anyway; rows
# past that are deleted by the next sign-out, at most this often per process.
SESSION_CLEANUP_INTERVAL = timedelta(minutes=10)
logger = logging.getLogger("paradarum.accounts")
# The active-key count uses the (account_id, created_at, id) index of api_keys.
SUMMARY_SQL = (
    "SELECT a.id, a.email, a.created_at, "
    "(SELECT count(*) FROM api_keys k WHERE k.account_id = a.id AND k.revoked_at IS NULL) "
    "FROM accounts a WHERE a.id = ?"
)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccountSummary:
    account: Account
    active_keys: int
    key_limit: int


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    claims: SessionClaims


class AccountService:
    def __init__(
        self,
        *,
        db: Database,
        passwords: Passwords,
        tokens: TokenCodec,
        limiter: RateLimiter,
        clock: Clock,
        settings: Settings,
        deferred: Executor | None = None,
    ) -> None:
        self._db = db
        self._deferred = deferred
        self._passwords = passwords
        self._tokens = tokens
        self._limiter = limiter
        self._clock = clock
        self._settings = settings
        self._next_session_cleanup: datetime | None = None
        self._cleanup_lock = threading.Lock()

    def _email_bucket(self, normalised_email: str) -> str:
        return f"login-email:{normalised_email}"

    def _check_password_guessing(self, bucket: str) -> None:
        s = self._settings
        retry = self._limiter.peek(
            bucket, limit=s.login_failures_per_email, window=s.login_failure_window_seconds
        )
        if retry:
            raise RateLimited(retry, TOO_MANY_FAILURES)

    def signup(
        self, *, email: str, password: str, client: ClientInfo, force: bool = False
    ) -> Account:
        """Create an account. ``force`` is for operators (CLI), ignoring the setting."""
        if not force and not self._settings.signup_enabled:
            raise SignupDisabled
        problems: dict[str, list[str]] = {}
        try:
            email = validation.email(email)
        except ValidationFailed as exc:
            problems.update(exc.errors)
        try:
            validation.password(password)
        except ValidationFailed as exc:
            problems.update(exc.errors)
        if problems:
            raise ValidationFailed(problems)
        password_hash = self._passwords.hash(password)
        now = self._clock()
        try:
            with self._db.write() as conn:
                if conn.execute(select(accounts.c.id).where(accounts.c.email == email)).first():
                    raise EmailTaken
                account_id = conn.execute(
                    insert(accounts)
                    .values(email=email, password_hash=password_hash, created_at=now)
                    .returning(accounts.c.id)
                ).scalar_one()
                audit.record(
                    conn,
                    account_id=account_id,
                    event=audit.SIGNUP,
                    at=now,
                    client=client,
                    actor_type="anonymous",
                )
        except IntegrityError as exc:  # two sign-ups racing on PostgreSQL
            raise EmailTaken from exc
        return Account(id=account_id, email=email, created_at=now)

    def login(self, *, email: str, password: str, client: ClientInfo) -> Session:
        normalised = email.strip().lower()[: validation.EMAIL_MAX]
        s = self._settings
        email_bucket = self._email_bucket(normalised)
        from_bucket = f"login-address:{address_bucket(client.address)}"
        window = s.login_failure_window_seconds
        retry = max(
            self._limiter.peek(email_bucket, limit=s.login_failures_per_email, window=window),
            self._limiter.peek(from_bucket, limit=s.login_failures_per_address, window=window),
        )
        if retry:
            raise RateLimited(retry, TOO_MANY_FAILURES)
        row = None
        # Sign-up refuses control characters, so such an email names no account
        # (and PostgreSQL cannot even compare a string holding NUL).
        if not validation.has_control_characters(normalised):
            with self._db.read() as conn:
                row = conn.execute(
                    select(accounts.c.id, accounts.c.password_hash, accounts.c.session_epoch).where(
                        accounts.c.email == normalised
                    )
                ).first()
        # Exactly one Argon2 verification whether or not the email exists.
        ok = self._passwords.verify(row.password_hash if row else None, password)
        now = self._clock()
        if not ok or row is None:
            self._limiter.hit(email_bucket, window=window)
            self._limiter.hit(from_bucket, window=window)
            if row is not None:
                # Recorded after the answer: a write (and its fsync) before the 401
                # would make a wrong password slower than an unknown email, and so
                # tell which emails have accounts.
                self._after_answer(self._record_failed_login, row.id, now, client)
            raise NotAuthenticated(WRONG_CREDENTIALS)
        token, claims = self._tokens.issue(account_id=row.id, epoch=row.session_epoch, now=now)
        with self._db.write() as conn:
            audit.record(
                conn,
                account_id=row.id,
                event=audit.LOGIN_SUCCEEDED,
                at=now,
                client=client,
                actor_type="session",
                actor_id=claims.token_id,
            )
        return Session(token=token, claims=claims)

    def _after_answer(self, work: Callable[..., None], *args: Any) -> None:
        if self._deferred is None:
            work(*args)
        else:
            self._deferred.submit(work, *args)

    def _record_failed_login(self, account_id: int, at: datetime, client: ClientInfo) -> None:
        try:
            with self._db.write() as conn:
                audit.record(
                    conn,
                    account_id=account_id,
                    event=audit.LOGIN_FAILED,
                    at=at,
                    client=client,
                    actor_type="anonymous",
                )
        except Exception:  # detached from the request: log, never raise
            logger.warning("failed sign-in not recorded", exc_info=True)

    def logout(self, *, principal: Principal, client: ClientInfo) -> None:
        """End the calling session (by token id, until it would have expired).

        Simultaneous sign-outs of one token are harmless: the insert ignores a
        conflict, and only the one that inserted writes the audit event.
        """
        if principal.kind != "session" or principal.token_id is None:
            raise NotASession
        now = self._clock()
        expires = datetime.fromtimestamp(principal.token_expires_at_epoch or 0, tz=UTC)
        with self._db.write() as conn:
            inserted = conn.execute(
                self._db.insert(revoked_sessions)
                .values(
                    token_id=principal.token_id,
                    account_id=principal.account_id,
                    expires_at=max(expires, now),
                )
                .on_conflict_do_nothing(index_elements=[revoked_sessions.c.token_id])
                # RETURNING, not rowcount: psycopg reports -1 for this statement.
                .returning(revoked_sessions.c.token_id)
            ).first()
            if inserted is not None:
                audit.record(
                    conn,
                    account_id=principal.account_id,
                    event=audit.LOGOUT,
                    at=now,
                    client=client,
                    actor=principal,
                )
        self._maybe_clean_up_sessions(now)

    def _maybe_clean_up_sessions(self, now: datetime) -> None:
        with self._cleanup_lock:
            if self._next_session_cleanup is not None and now < self._next_session_cleanup:
                return
            self._next_session_cleanup = now + SESSION_CLEANUP_INTERVAL
        self.clean_up_sessions(now)

    def clean_up_sessions(self, now: datetime | None = None) -> int:
        """Forget signed-out tokens that have expired anyway (their JWT is refused
        by its ``exp`` now). Best effort: never fails the caller."""
        now = now or self._clock()
        try:
            with self._db.write() as conn:
                return int(
                    conn.execute(
                        delete(revoked_sessions).where(revoked_sessions.c.expires_at < now)
                    ).rowcount
                )
        except SQLAlchemyError as exc:
            logger.warning("revoked-session cleanup skipped: %s", type(exc).__name__)
            return 0

    def change_password(
        self, *, principal: Principal, current: str, new: str, client: ClientInfo
    ) -> None:
        """Change the password and end every session of the account.

        Wrong current passwords count against the account's sign-in limit (the
        same bucket as failed sign-ins for its email): a stolen session token or
        key must not become an unlimited password-guessing oracle.
        """
        validation.password(new, field="newPassword")
        with self._db.read() as conn:
            row = conn.execute(
                select(accounts.c.email, accounts.c.password_hash).where(
                    accounts.c.id == principal.account_id
                )
            ).first()
        if row is None:
            raise NotAuthenticated
        bucket = self._email_bucket(row.email)
        self._check_password_guessing(bucket)
        if not self._passwords.verify(row.password_hash, current):
            self._limiter.hit(bucket, window=self._settings.login_failure_window_seconds)
            raise ValidationFailed(
                {"currentPassword": ["The current password is wrong."]},
                "The current password is wrong.",
            )
        new_hash = self._passwords.hash(new)
        now = self._clock()
        with self._db.write() as conn:
            changed = conn.execute(
                update(accounts)
                .where(
                    accounts.c.id == principal.account_id,
                    # Unchanged since verified: of two simultaneous changes, one wins.
                    accounts.c.password_hash == row.password_hash,
                )
                .values(password_hash=new_hash, session_epoch=accounts.c.session_epoch + 1)
            ).rowcount
            if changed != 1:
                raise NotAuthenticated
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.PASSWORD_CHANGED,
                at=now,
                client=client,
                actor=principal,
            )

    async def summary(self, account_id: int) -> AccountSummary:
        """Who the caller is, for ``GET /api/account`` (a hot path, like authentication).

        One hand-written indexed read awaited through ``Database.hot_read_async``:
        on SQLite it runs inline in microseconds, where the SQLAlchemy statement
        path costs an order of magnitude more than the read itself.
        """
        row = await self._db.hot_read_async(SUMMARY_SQL, (account_id,))
        if row is None:  # deleted since the caller authenticated: its credential is void
            raise NotAuthenticated
        account_row_id, email, created_at, active_keys = row
        created = as_utc(created_at)
        assert created is not None
        return AccountSummary(
            account=Account(id=int(account_row_id), email=str(email), created_at=created),
            active_keys=int(active_keys),
            key_limit=self._settings.key_limit,
        )

    def delete(self, account_id: int) -> None:
        """Remove an account and everything it owns (operators only, via the CLI)."""
        with self._db.write() as conn:
            result = conn.execute(accounts.delete().where(accounts.c.id == account_id))
            if result.rowcount == 0:
                raise AccountNotFound
