"""Accounts and panel sessions: sign-up, sign-in, sign-out, password change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from paradarum.clock import Clock
from paradarum.config import Settings
from paradarum.db.engine import Database
from paradarum.db.tables import accounts, revoked_sessions
from paradarum.db.types import as_utc
from paradarum.errors import (
    AccountNotFound,
    EmailTaken,
    NotAuthenticated,
    RateLimited,
    SignupDisabled,
    ValidationFailed,
)
from paradarum.passwords import Passwords
from paradarum.ratelimit import RateLimiter
from paradarum.services import audit, validation
from paradarum.services.context import ClientInfo, Principal
from paradarum.tokens import SessionClaims, TokenCodec

WRONG_CREDENTIALS = "Wrong email or password."
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
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._tokens = tokens
        self._limiter = limiter
        self._clock = clock
        self._settings = settings

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
        email_bucket = f"login-email:{normalised}"
        address_bucket = f"login-address:{client.address or '-'}"
        window = s.login_failure_window_seconds
        retry = max(
            self._limiter.peek(email_bucket, limit=s.login_failures_per_email, window=window),
            self._limiter.peek(address_bucket, limit=s.login_failures_per_address, window=window),
        )
        if retry:
            raise RateLimited(retry, "Too many failed sign-ins. Try again later.")
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
            self._limiter.hit(address_bucket, window=window)
            if row is not None:
                with self._db.write() as conn:
                    audit.record(
                        conn,
                        account_id=row.id,
                        event=audit.LOGIN_FAILED,
                        at=now,
                        client=client,
                        actor_type="anonymous",
                    )
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

    def logout(self, *, principal: Principal, client: ClientInfo) -> None:
        """End the calling session (by token id, until it would have expired)."""
        if principal.kind != "session" or principal.token_id is None:
            return
        now = self._clock()
        expires = datetime.fromtimestamp(principal.token_expires_at_epoch or 0, tz=UTC)
        with self._db.write() as conn:
            exists = conn.execute(
                select(revoked_sessions.c.token_id).where(
                    revoked_sessions.c.token_id == principal.token_id
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(revoked_sessions).values(
                        token_id=principal.token_id,
                        account_id=principal.account_id,
                        expires_at=max(expires, now),
                    )
                )
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.LOGOUT,
                at=now,
                client=client,
                actor=principal,
            )

    def change_password(
        self, *, principal: Principal, current: str, new: str, client: ClientInfo
    ) -> None:
        """Change the password and end every session of the account."""
        validation.password(new, field="newPassword")
        with self._db.read() as conn:
            stored = conn.execute(
                select(accounts.c.password_hash).where(accounts.c.id == principal.account_id)
            ).scalar_one_or_none()
        if stored is None:
            raise NotAuthenticated
        if not self._passwords.verify(stored, current):
            raise ValidationFailed(
                {"currentPassword": ["The current password is wrong."]},
                "The current password is wrong.",
            )
        new_hash = self._passwords.hash(new)
        now = self._clock()
        with self._db.write() as conn:
            conn.execute(
                update(accounts)
                .where(accounts.c.id == principal.account_id)
                .values(password_hash=new_hash, session_epoch=accounts.c.session_epoch + 1)
            )
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.PASSWORD_CHANGED,
                at=now,
                client=client,
                actor=principal,
            )

    def summary(self, account_id: int) -> AccountSummary:
        """Who the caller is, for ``GET /api/account`` (a hot path, like authentication).

        One hand-written indexed read through ``Database.hot_read``: on SQLite it
        runs inline on the caller's thread in microseconds, where the SQLAlchemy
        statement path costs an order of magnitude more than the read itself.
        """
        return self._summary(self._db.hot_read(SUMMARY_SQL, (account_id,)))

    async def summary_async(self, account_id: int) -> AccountSummary:
        """The same, awaited on the event loop (see ``Database.hot_read_async``)."""
        row = await self._db.hot_read_async(SUMMARY_SQL, (account_id,))
        return self._summary(row)

    def _summary(self, row: tuple[Any, ...] | None) -> AccountSummary:
        if row is None:
            raise AccountNotFound
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
