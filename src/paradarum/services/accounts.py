"""Persons, accounts and panel sessions: sign-up, sign-in, sign-out, password change,
deletion.

A person signs in (email, password); an account is what keys, zones and purges
belong to; memberships join them, each with a role (``services/members.py``).
Signing up makes a person and their own account, where they are ``owner``.

Sign-in limits (docs/security.md explains the trade-offs):

* per email **and** address, with backoff: a few failures per 15 minutes, twice as
  many per hour, four times as many per day — then that address waits, for that
  email only;
* per address, whatever the email: a password sprayer is stopped;
* per email, from anywhere: past a threshold the account counts as under attack.
  Addresses that signed in to it successfully before are not slowed. Any other
  address gets one answer whatever the password (429): where mail is configured,
  the right password mails the person a one-time link that finishes the sign-in,
  so the flood learns nothing and the owner still gets in from a new address;
  without mail, those addresses share one attempt per ``login_throttle_seconds``.

Everything about a password runs on the password hasher's own bounded threads
(``paradarum.passwords``); a full queue is a 503 at once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from paradarum.background import Background
from paradarum.clock import Clock
from paradarum.config import Settings
from paradarum.db import queries
from paradarum.db.engine import Database
from paradarum.db.tables import accounts, audit_events, memberships, persons, revoked_sessions
from paradarum.db.types import as_utc
from paradarum.errors import (
    AccountNotFound,
    EmailNotVerified,
    EmailTaken,
    Forbidden,
    NotASession,
    NotAuthenticated,
    RateLimited,
    SignupDisabled,
    ValidationFailed,
)
from paradarum.passwords import Passwords
from paradarum.ratelimit import Limit, RateLimiter, address_bucket
from paradarum.services import audit, validation
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.emails import SIGN_IN_TOKEN_LIFETIME, Kind, enqueue
from paradarum.services.roles import Role
from paradarum.services.twofactor import SignInChallenge, begin_sign_in, forget_second_factors
from paradarum.tokens import (
    RESET_PASSWORD,
    SIGN_IN,
    EmailClaims,
    InvalidToken,
    SessionClaims,
    TokenCodec,
    session_key_fingerprint,
)

WRONG_CREDENTIALS = "Wrong email or password."
TOO_MANY_FAILURES = "Too many failed sign-ins. Try again later."
THROTTLED = "This account is seeing many failed sign-ins. Try again in a few seconds."
CONFIRM_BY_EMAIL = (
    "This account is seeing many failed sign-ins, so a sign-in from a new address needs "
    "its email too: if the password was right, a link to finish signing in is on its way "
    "to the account's email address."
)
INVALID_SIGN_IN_LINK = (
    "This sign-in link is invalid, has expired or was used already. Sign in again."
)
TOO_MANY_SIGNUPS = "Too many sign-ups from your address. Try again later."
# An address counts as the owner's when it signed in successfully this recently.
KNOWN_ADDRESS_DAYS = 30
logger = logging.getLogger("paradarum.accounts")
INVALID_LINK = "This verification link is invalid or has expired. Ask for a new one."
TOO_MANY_LINKS = "A verification link was sent a moment ago. Try again later."
INVALID_RESET_LINK = (
    "This password reset link is invalid, has expired or was used already. Ask for a new one."
)
TOO_MANY_RESETS = "Too many password reset requests. Try again later."
# In the security log, when a reset hands an address back to its owner.
FACTORS_OF_AN_UNVERIFIED_ADDRESS = (
    "the second factors added before the address was verified were removed"
)
NO_ACCOUNT = (
    "You are not a member of any account any more. Ask an owner of one to invite you again."
)


# Built on every GET /api/account: msgspec structs, immutable like the frozen
# dataclasses elsewhere and several times cheaper to build (services/context.py).
class Account(msgspec.Struct, frozen=True):
    id: int
    email: str
    created_at: datetime


class AccountSummary(msgspec.Struct, frozen=True):
    account: Account
    active_keys: int
    key_limit: int
    email_verified: bool
    name: str
    role: Role | None
    require_two_factor: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    claims: SessionClaims


def new_session_key() -> str:
    return secrets.token_hex(16)


def require_verified(conn: Connection, person_id: int | None) -> None:
    """Refuse (403) a person whose email address is not verified yet, where the
    server asks for verification: they cannot create keys or zones until then."""
    verified = conn.execute(
        select(persons.c.email_verified_at).where(persons.c.id == person_id)
    ).first()
    if verified is not None and verified.email_verified_at is None:
        raise EmailNotVerified


def home_account(conn: Connection, person_id: int) -> int | None:
    """The account a sign-in acts on: the person's own (the first they own), else
    the first they joined; None when they belong to none."""
    row = conn.execute(
        select(memberships.c.account_id)
        .where(memberships.c.person_id == person_id)
        .order_by((memberships.c.role == str(Role.OWNER)).desc(), memberships.c.id)
        .limit(1)
    ).first()
    return None if row is None else int(row.account_id)


def create_person(
    conn: Connection,
    *,
    email: str,
    password_hash: str,
    now: datetime,
    verified: bool,
) -> tuple[int, int]:
    """A new person and their own account, where they are owner: (person, account).
    The caller has checked the email is free (a race ends in IntegrityError)."""
    person_id = int(
        conn.execute(
            insert(persons)
            .values(
                email=email,
                password_hash=password_hash,
                created_at=now,
                session_key=new_session_key(),
                email_verified_at=now if verified else None,
            )
            .returning(persons.c.id)
        ).scalar_one()
    )
    account_id = int(
        conn.execute(
            insert(accounts).values(name=email, created_at=now).returning(accounts.c.id)
        ).scalar_one()
    )
    conn.execute(
        insert(memberships).values(
            account_id=account_id, person_id=person_id, role=str(Role.OWNER), created_at=now
        )
    )
    return person_id, account_id


def _linked_person(
    conn: Connection, claims: EmailClaims, invalid: ValidationFailed
) -> Row[Any, Any, Any]:
    """The person an emailed reset or sign-in link is for: their address, and only
    while nothing has replaced the session key the link was made with (a reset, a
    password change). Raises ``invalid`` otherwise."""
    row = conn.execute(
        select(persons.c.email, persons.c.session_key, persons.c.email_verified_at).where(
            persons.c.id == claims.subject
        )
    ).first()
    if (
        row is None
        or row.email != claims.email
        or session_key_fingerprint(row.session_key) != claims.fingerprint
    ):
        raise invalid
    return row


def _queue_link(
    conn: Connection,
    db: Database,
    *,
    person_id: int,
    email: str,
    kind: Kind,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Queue a link bound to the person's session key (a reset or sign-in link) to
    their address, in the log of their own account; False when they have none."""
    account_id = home_account(conn, person_id)
    if account_id is None:
        return False
    enqueue(
        conn,
        db,
        account_id=account_id,
        kind=kind,
        dedupe_key=f"{kind}:{person_id}:{secrets.token_hex(8)}",
        payload={"person_id": person_id, **(payload or {})},
        now=now,
        recipient=email,
    )
    return True


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
        background: Background,
        on_notify: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._background = background
        self._on_notify = on_notify
        self._passwords = passwords
        self._tokens = tokens
        self._limiter = limiter
        self._clock = clock
        self._settings = settings

    # -- limits -------------------------------------------------------------------------

    def _login_limits(self, email: str, address: str | None) -> tuple[list[Limit], Limit]:
        """The hard limits (per email and address with backoff, per address) and
        the per-email guard."""
        s = self._settings
        window = s.login_failure_window_seconds
        where = address_bucket(address)
        pair = f"login-pair:{where}:{email}"
        per_pair = s.login_failures_per_email_and_address
        hard = [
            Limit(pair, per_pair, window),
            Limit(pair, per_pair * 2, window * 4),
            Limit(pair, per_pair * 4, window * 96),
            Limit(f"login-address:{where}", s.login_failures_per_address, window),
        ]
        return hard, Limit(f"login-email:{email}", s.login_failures_per_email, window)

    async def _check_login_limits(
        self, email: str, client: ClientInfo, account_id: int | None
    ) -> tuple[list[Limit], bool]:
        """Refuse (429) an address past a hard limit; else the limits a failure
        counts against, and whether this is a stranger to an email under attack (the
        per-email guard holds and the address never signed in to the account)."""
        hard, guard = self._login_limits(email, client.address)
        waits = await self._limiter.waits([*hard, guard])
        if max(waits[:-1]):
            raise RateLimited(max(waits[:-1]), TOO_MANY_FAILURES)
        stranger = bool(waits[-1]) and not (
            account_id is not None and await self._known_address(account_id, client.address)
        )
        return [*hard, guard], stranger

    async def _throttle(self, email: str) -> None:
        """One attempt per ``login_throttle_seconds`` for all the strangers to an
        email under attack, between them (without mail: see ``login``)."""
        throttle = Limit(f"login-throttle:{email}", 1, self._settings.login_throttle_seconds)
        retry = await self._limiter.consume(throttle)
        if retry:
            raise RateLimited(retry, THROTTLED)

    async def _known_address(self, account_id: int, address: str | None) -> bool:
        if not address:
            return False
        since = self._clock() - timedelta(days=KNOWN_ADDRESS_DAYS)

        def read(conn: Connection) -> bool:
            found = conn.execute(
                select(audit_events.c.id)
                .where(
                    audit_events.c.account_id == account_id,
                    audit_events.c.occurred_at >= since,
                    audit_events.c.event == str(audit.Event.LOGIN_SUCCEEDED),
                    audit_events.c.client_address == address,
                )
                .limit(1)
            ).first()
            return found is not None

        return await self._db.read(read)

    async def second_factor_limits(
        self, email: str, client: ClientInfo, account_id: int | None
    ) -> list[Limit]:
        """The sign-in limits a second-factor answer (or a re-authentication) counts
        against: refused (429) while the email and address are past them."""
        hard, guard = self._login_limits(email, client.address)
        waits = await self._limiter.waits(hard)
        if max(waits):
            raise RateLimited(max(waits), TOO_MANY_FAILURES)
        return [*hard, guard]

    async def second_factor_failed(
        self, limits: list[Limit], *, account_id: int | None, client: ClientInfo
    ) -> None:
        """Count a wrong second-factor answer, and log it in the account."""
        await self._limiter.hit(limits)
        if account_id is not None:
            await self._db.write(
                audit.record,
                account_id=account_id,
                event=audit.Event.LOGIN_FAILED,
                at=self._clock(),
                client=client,
                actor_type=audit.Actor.ANONYMOUS,
                detail="Wrong second factor",
            )

    # -- sign-up --------------------------------------------------------------------------

    @property
    def verifies_email(self) -> bool:
        return self._settings.verifies_email

    async def signup(
        self, *, email: str, password: str, client: ClientInfo, force: bool = False
    ) -> Account | None:
        """Create an account. ``force`` is for operators (CLI): sign-up may be off, no
        per-address limit applies, and the address counts as verified.

        Where email addresses are verified, the answer does not tell whether the
        email was already registered (None either way, after the same password
        hash): only the address's owner learns it, from the email. Otherwise an email
        that is taken is a 409 (see docs/security.md for why).
        """
        if not force and not self._settings.signup_enabled:
            raise SignupDisabled
        problems: dict[str, list[str]] = {}
        try:
            email = validation.email(email)
        except ValidationFailed as exc:
            problems.update(exc.errors)
        try:
            validation.password(password, email=email if not problems else None)
        except ValidationFailed as exc:
            problems.update(exc.errors)
        if problems:
            raise ValidationFailed(problems)
        self._passwords.refuse_if_busy()  # before the sign-up counts against the address
        if not force:
            s = self._settings
            retry = await self._limiter.consume(
                Limit(
                    f"signup:{address_bucket(client.address)}",
                    s.signups_per_address,
                    s.signup_window_seconds,
                )
            )
            if retry:
                raise RateLimited(retry, TOO_MANY_SIGNUPS)
        password_hash = await self._passwords.hash(password)
        now = self._clock()
        verify = self.verifies_email and not force
        # Where the address turns out to be held by an unverified person, they get a
        # reset link, as many an hour as the email may ask for. Counted for every
        # sign-up, and apart from the requests' count, so that neither the answer
        # nor a later request's limit tells whether the email was taken.
        may_claim = verify and not await self._limiter.consume(
            Limit(
                f"reset-claim:{email}",
                self._settings.password_resets_per_email,
                self._settings.password_reset_window_seconds,
            )
        )
        try:
            account_id = await self._db.write(
                self._insert_account,
                email=email,
                password_hash=password_hash,
                now=now,
                client=client,
                verified=not verify,
                quiet_if_taken=verify,
                may_claim=may_claim,
            )
        except IntegrityError as exc:  # two sign-ups racing on PostgreSQL
            if verify:
                return None
            raise EmailTaken from exc
        if verify:
            if account_id is not None and self._on_notify is not None:
                self._on_notify()
            return None
        assert account_id is not None
        return Account(id=account_id, email=email, created_at=now)

    def _insert_account(
        self,
        conn: Connection,
        *,
        email: str,
        password_hash: str,
        now: datetime,
        client: ClientInfo,
        verified: bool,
        quiet_if_taken: bool,
        may_claim: bool = False,
    ) -> int | None:
        """The new account's id; where the email is taken, a 409, or (``quiet_if_taken``)
        the id of the unverified person's account when they were sent a reset link
        (``may_claim``), else None."""
        taken = conn.execute(
            select(persons.c.id, persons.c.email_verified_at).where(persons.c.email == email)
        ).first()
        if taken is not None:
            if not quiet_if_taken:
                raise EmailTaken
            if taken.email_verified_at is not None or not may_claim:
                return None
            # The first sign-up may be a squatter's: the address gets a link to set
            # the password, never a link that would verify the first one's password.
            claimed = _queue_link(
                conn, self._db, person_id=taken.id, email=email, kind=Kind.ADDRESS_CLAIMED, now=now
            )
            return home_account(conn, taken.id) if claimed else None
        person_id, account_id = create_person(
            conn, email=email, password_hash=password_hash, now=now, verified=verified
        )
        audit.record(
            conn,
            account_id=account_id,
            event=audit.Event.SIGNUP,
            at=now,
            client=client,
            actor_type=audit.Actor.ANONYMOUS,
            actor_name=email,
        )
        if not verified:
            self._queue_verification(
                conn, account_id=account_id, person_id=person_id, email=email, now=now
            )
        return account_id

    def _queue_verification(
        self, conn: Connection, *, account_id: int, person_id: int, email: str, now: datetime
    ) -> None:
        enqueue(
            conn,
            self._db,
            account_id=account_id,
            kind=Kind.VERIFY_EMAIL,
            # Each request for a link is its own event (the resend limit bounds them).
            dedupe_key=f"verify_email:{person_id}:{secrets.token_hex(8)}",
            payload={"person_id": person_id},
            now=now,
            recipient=email,
        )

    async def verify_email(self, *, token: str, client: ClientInfo) -> None:
        """Follow a verification link: the account's address is verified."""
        now = self._clock()
        try:
            claims = self._tokens.read_email_token(token, now=now)
        except InvalidToken:
            raise ValidationFailed({"token": [INVALID_LINK]}, INVALID_LINK) from None

        def work(conn: Connection) -> None:
            row = conn.execute(
                select(persons.c.email, persons.c.email_verified_at).where(
                    persons.c.id == claims.subject
                )
            ).first()
            # The link is for this address of this person, and only while it is.
            if row is None or row.email != claims.email:
                raise ValidationFailed({"token": [INVALID_LINK]}, INVALID_LINK)
            if row.email_verified_at is not None:
                return  # followed twice: already done
            conn.execute(
                update(persons).where(persons.c.id == claims.subject).values(email_verified_at=now)
            )
            account_id = home_account(conn, claims.subject)
            if account_id is not None:
                audit.record(
                    conn,
                    account_id=account_id,
                    event=audit.Event.EMAIL_VERIFIED,
                    at=now,
                    client=client,
                    actor_type=audit.Actor.ANONYMOUS,
                    actor_name=claims.email,
                    detail=claims.email,
                )

        await self._db.write(work)

    async def resend_verification(self, *, principal: Principal) -> None:
        """Send a new verification link (rate limited per account)."""
        if not self.verifies_email:
            raise ValidationFailed(
                {"email": ["This server does not verify email addresses."]},
                "This server does not verify email addresses.",
            )
        retry = await self._limiter.consume(Limit(f"verify-email:{principal.person_id}", 3, 3600))
        if retry:
            raise RateLimited(retry, TOO_MANY_LINKS)
        now = self._clock()

        def work(conn: Connection) -> None:
            row = conn.execute(
                select(persons.c.email, persons.c.email_verified_at).where(
                    persons.c.id == principal.person_id
                )
            ).first()
            if row is None:
                raise NotAuthenticated
            if row.email_verified_at is not None:
                raise ValidationFailed(
                    {"email": ["This address is already verified."]},
                    "This address is already verified.",
                )
            self._queue_verification(
                conn,
                account_id=principal.account_id,
                person_id=int(principal.person_id or 0),
                email=row.email,
                now=now,
            )

        await self._db.write(work)
        if self._on_notify is not None:
            self._on_notify()

    # -- sign-in --------------------------------------------------------------------------

    async def login(
        self, *, email: str, password: str, client: ClientInfo
    ) -> Session | SignInChallenge:
        """A session for the right password; where the person has a second factor
        on, a :class:`SignInChallenge` for the second step instead
        (``services/twofactor.py``)."""
        normalised = email.strip().lower()[: validation.EMAIL_MAX]
        self._passwords.refuse_if_busy()  # before the read: a burst costs no database work
        row = None
        home: int | None = None
        # Sign-up refuses control characters, so such an email names no person
        # (and PostgreSQL cannot even compare a string holding NUL).
        if not validation.has_control_characters(normalised):

            def read(conn: Connection) -> tuple[Any, int | None]:
                found = conn.execute(
                    select(persons.c.id, persons.c.password_hash, persons.c.session_key).where(
                        persons.c.email == normalised
                    )
                ).first()
                return found, home_account(conn, found.id) if found else None

            row, home = await self._db.read(read)
        limits, stranger = await self._check_login_limits(normalised, client, home)
        # A stranger to an email under attack. With mail, the answer is the same
        # whatever the password, so the flood learns nothing from it, and the right
        # password mails the person a one-time link that finishes this sign-in (and
        # makes the address a known one). Without mail, strangers share the throttle.
        confirm = stranger and self._settings.smtp_url is not None
        if stranger and not confirm:
            await self._throttle(normalised)
        # Exactly one Argon2 verification whether or not the email exists.
        ok = await self._passwords.verify(row.password_hash if row else None, password)
        now = self._clock()
        if confirm and ok and row is not None:
            # Everything after the answer, as for a wrong password below: the time
            # of the answer must not tell the flood that a guess was right either.
            self._background.spawn(
                self._send_sign_in_link(row.id, normalised, client, now), name="sign-in-link"
            )
            raise RateLimited(self._settings.login_throttle_seconds, CONFIRM_BY_EMAIL)
        if not ok or row is None:
            if confirm:
                self._background.spawn(self._limiter.hit(limits), name="failed-sign-in-count")
            else:
                await self._limiter.hit(limits)
            if home is not None:
                # Recorded after the answer: a write (and its fsync) before the 401
                # would make a wrong password slower than an unknown email, and so
                # tell which emails have accounts.
                self._background.spawn(
                    self._db.write(
                        audit.record,
                        account_id=home,
                        event=audit.Event.LOGIN_FAILED,
                        at=now,
                        client=client,
                        actor_type=audit.Actor.ANONYMOUS,
                    ),
                    name="failed-sign-in",
                )
            if confirm:
                raise RateLimited(self._settings.login_throttle_seconds, CONFIRM_BY_EMAIL)
            raise NotAuthenticated(WRONG_CREDENTIALS)
        if home is None:
            raise Forbidden(NO_ACCOUNT)
        # Hashes made with weaker parameters than today's are replaced on the way in.
        new_hash = (
            await self._passwords.hash(password)
            if self._passwords.needs_rehash(row.password_hash)
            else None
        )
        person_id = int(row.id)

        def work(conn: Connection) -> Session | SignInChallenge:
            # With a second factor on, the password alone gives a challenge, not a session.
            challenge = begin_sign_in(conn, person_id=person_id, account_id=home, now=now)
            if challenge is not None:
                if new_hash is not None:
                    conn.execute(
                        update(persons)
                        .where(persons.c.id == person_id)
                        .values(password_hash=new_hash)
                    )
                return challenge
            token, claims = self._tokens.issue(
                account_id=home, person_id=person_id, session_key=row.session_key, now=now
            )
            self._record_login(
                conn, claims, now, client, new_hash, normalised, audit.Event.LOGIN_SUCCEEDED
            )
            return Session(token=token, claims=claims)

        return await self._db.write(work)

    async def _send_sign_in_link(
        self, person_id: int, email: str, client: ClientInfo, now: datetime
    ) -> None:
        """Queue a one-time sign-in link for the person (at most a few per window:
        every one of them means that someone has the password)."""
        window = self._settings.login_failure_window_seconds
        if await self._limiter.consume(Limit(f"sign-in-link:{person_id}", 3, window)):
            return
        seen = client.clipped()
        queued = await self._db.write(
            lambda conn: _queue_link(
                conn,
                self._db,
                person_id=person_id,
                email=email,
                kind=Kind.SIGN_IN_LINK,
                now=now,
                payload={"address": seen.address, "user_agent": seen.user_agent},
            )
        )
        if queued and self._on_notify is not None:
            self._on_notify()

    async def login_with_link(self, *, token: str, client: ClientInfo) -> Session | SignInChallenge:
        """Finish a sign-in with the emailed one-time link: a session, and this
        address counts as a known one from now on (it signed in successfully)."""
        now = self._clock()
        invalid = ValidationFailed({"token": [INVALID_SIGN_IN_LINK]}, INVALID_SIGN_IN_LINK)
        try:
            claims = self._tokens.read_email_token(token, now=now, purpose=SIGN_IN)
        except InvalidToken:
            raise invalid from None
        # A link expires at most this long after it is used: its id is kept as long.
        expires = now + SIGN_IN_TOKEN_LIFETIME

        def work(conn: Connection) -> Session | SignInChallenge:
            row = _linked_person(conn, claims, invalid)
            home = home_account(conn, claims.subject)
            if home is None:
                raise Forbidden(NO_ACCOUNT)
            # Spent by recording its id as ended, like a signed-out session's.
            spent = conn.execute(
                self._db.insert(revoked_sessions)
                .values(token_id=claims.token_id, account_id=home, expires_at=expires)
                .on_conflict_do_nothing(index_elements=[revoked_sessions.c.token_id])
                .returning(revoked_sessions.c.token_id)
            ).first()
            if spent is None:
                raise invalid
            challenge = begin_sign_in(conn, person_id=claims.subject, account_id=home, now=now)
            if challenge is not None:
                return challenge
            issued, session_claims = self._tokens.issue(
                account_id=home, person_id=claims.subject, session_key=row.session_key, now=now
            )
            self._record_login(
                conn, session_claims, now, client, None, row.email, audit.Event.LOGIN_SUCCEEDED
            )
            return Session(token=issued, claims=session_claims)

        return await self._db.write(work)

    def issue_session(
        self,
        conn: Connection,
        *,
        person_id: int,
        account_id: int,
        client: ClientInfo,
        auth_time_epoch: int | None = None,
        event: audit.Event = audit.Event.ACCOUNT_SWITCHED,
    ) -> Session:
        """A new session of a person (already signed in, at ``auth_time_epoch``;
        None: now) for one of their accounts, recorded in that account's log as
        ``event``; in the caller's transaction."""
        row = conn.execute(
            select(persons.c.session_key, persons.c.email).where(persons.c.id == person_id)
        ).first()
        if row is None:
            raise NotAuthenticated
        now = self._clock()
        token, claims = self._tokens.issue(
            account_id=account_id,
            person_id=person_id,
            session_key=row.session_key,
            now=now,
            auth_time=None
            if auth_time_epoch is None
            else datetime.fromtimestamp(auth_time_epoch, tz=UTC),
        )
        self._record_login(conn, claims, now, client, None, row.email, event)
        return Session(token=token, claims=claims)

    @staticmethod
    def _record_login(
        conn: Connection,
        claims: SessionClaims,
        now: datetime,
        client: ClientInfo,
        new_hash: str | None,
        email: str,
        event: audit.Event,
    ) -> None:
        if new_hash is not None:
            conn.execute(
                update(persons)
                .where(persons.c.id == claims.person_id)
                .values(password_hash=new_hash)
            )
        audit.record(
            conn,
            account_id=claims.account_id,
            event=event,
            at=now,
            client=client,
            actor_type=audit.Actor.SESSION,
            actor_id=claims.token_id,
            actor_name=email,
        )

    # -- sign-out -------------------------------------------------------------------------

    async def logout(self, *, principal: Principal, client: ClientInfo) -> None:
        """End the calling session (by token id, until it would have expired).

        Simultaneous sign-outs of one token are harmless: the insert ignores a
        conflict, and only the one that inserted writes the audit event.
        """
        if principal.token_id is None:
            raise NotASession
        now = self._clock()
        expires = datetime.fromtimestamp(principal.token_expires_at_epoch or 0, tz=UTC)

        def work(conn: Connection) -> None:
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
                    event=audit.Event.LOGOUT,
                    at=now,
                    client=client,
                    actor=principal,
                )

        await self._db.write(work)

    async def clean_up_sessions(self) -> int:
        """Forget signed-out tokens that have expired anyway (their JWT is refused
        by its ``exp`` now). Run periodically by the runtime."""
        now = self._clock()
        return await self._db.write(
            lambda conn: int(
                conn.execute(
                    delete(revoked_sessions).where(revoked_sessions.c.expires_at < now)
                ).rowcount
            )
        )

    # -- password -------------------------------------------------------------------------

    async def change_password(
        self, *, principal: Principal, current: str, new: str, client: ClientInfo
    ) -> None:
        """Change the password and end every session of the account.

        Wrong current passwords count against the sign-in limits of the account's
        email from this address: a stolen session token or key must not become an
        unlimited password-guessing oracle. Needs a recent sign-in (step-up).
        """
        if principal.token_id is None:
            raise Forbidden(
                "A password is changed with a panel session (sign in), not with an API key."
            )
        principal.require_step_up(self._clock())
        row = await self._db.read(
            lambda conn: conn.execute(
                select(persons.c.email, persons.c.password_hash).where(
                    persons.c.id == principal.person_id
                )
            ).first()
        )
        if row is None:
            raise NotAuthenticated
        validation.password(new, email=row.email, field="newPassword")
        limits, stranger = await self._check_login_limits(row.email, client, principal.account_id)
        if stranger:
            await self._throttle(row.email)
        if not await self._passwords.verify(row.password_hash, current):
            await self._limiter.hit(limits)
            raise ValidationFailed(
                {"currentPassword": ["The current password is wrong."]},
                "The current password is wrong.",
            )
        new_hash = await self._passwords.hash(new)
        now = self._clock()

        def work(conn: Connection) -> None:
            changed = conn.execute(
                update(persons)
                .where(
                    persons.c.id == principal.person_id,
                    # Unchanged since verified: of two simultaneous changes, one wins.
                    persons.c.password_hash == row.password_hash,
                )
                .values(password_hash=new_hash, session_key=new_session_key())
            ).rowcount
            if changed != 1:
                raise NotAuthenticated
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.PASSWORD_CHANGED,
                at=now,
                client=client,
                actor=principal,
            )

        await self._db.write(work)

    # -- forgotten passwords ------------------------------------------------------------

    def _reset_limits(self, email: str, address: str | None) -> tuple[Limit, Limit]:
        s = self._settings
        window = s.password_reset_window_seconds
        return (
            Limit(
                f"reset-address:{address_bucket(address)}", s.password_resets_per_address, window
            ),
            Limit(f"reset-email:{email}", s.password_resets_per_email, window),
        )

    async def forgot_password(self, *, email: str, client: ClientInfo) -> None:
        """Send a reset link to ``email`` if it is a person's. The caller learns
        nothing either way: the same answer, and the lookup and the write happen
        after it. Limited per address and per email (registered or not)."""
        normalised = email.strip().lower()[: validation.EMAIL_MAX]
        for limit in self._reset_limits(normalised, client.address):
            retry = await self._limiter.consume(limit)
            if retry:
                raise RateLimited(retry, TOO_MANY_RESETS)
        if validation.has_control_characters(normalised):
            return  # names nobody (and PostgreSQL cannot compare a NUL)
        self._background.spawn(self.send_reset_link(normalised), name="password-reset-link")

    async def send_reset_link(self, email: str) -> Account | None:
        """Queue a reset link for the person with ``email``; None when there is none.
        Also what operators use (``paradarum accounts reset-password``)."""
        now = self._clock()

        def work(conn: Connection) -> Account | None:
            row = conn.execute(
                select(persons.c.id, persons.c.email, persons.c.created_at).where(
                    persons.c.email == email
                )
            ).first()
            if row is None or not _queue_link(
                conn, self._db, person_id=row.id, email=row.email, kind=Kind.PASSWORD_RESET, now=now
            ):
                return None
            return Account(id=row.id, email=row.email, created_at=as_utc(row.created_at) or now)

        person = await self._db.write(work)
        if person is not None and self._on_notify is not None:
            self._on_notify()
        return person

    async def reset_password(self, *, token: str, password: str, client: ClientInfo) -> None:
        """Follow a reset link: the new password is set, every session of the person
        ends (a new session key, which also voids the link and any other one sent
        before), and the address counts as verified (the link went to it)."""
        now = self._clock()
        invalid = ValidationFailed({"token": [INVALID_RESET_LINK]}, INVALID_RESET_LINK)
        try:
            claims = self._tokens.read_email_token(token, now=now, purpose=RESET_PASSWORD)
        except InvalidToken:
            raise invalid from None
        validation.password(password, email=claims.email)
        self._passwords.refuse_if_busy()
        new_hash = await self._passwords.hash(password)

        def work(conn: Connection) -> None:
            row = _linked_person(conn, claims, invalid)
            changed = conn.execute(
                update(persons)
                .where(
                    persons.c.id == claims.subject,
                    # Of two simultaneous resets with one link, one wins.
                    persons.c.session_key == row.session_key,
                )
                .values(
                    password_hash=new_hash,
                    session_key=new_session_key(),
                    email_verified_at=row.email_verified_at or now,
                )
            ).rowcount
            if changed != 1:
                raise invalid
            # Until now nobody had proved the address: a second factor added meanwhile
            # may be a squatter's (who knew the first password), and would lock the
            # address's owner out of the account this link hands back to them.
            forgot_factors = row.email_verified_at is None and forget_second_factors(
                conn, claims.subject
            )
            account_id = home_account(conn, claims.subject)
            if account_id is None:
                return
            events = [audit.Event.PASSWORD_RESET]
            if row.email_verified_at is None:
                events.append(audit.Event.EMAIL_VERIFIED)
            for event in events:
                detail = claims.email
                if event is audit.Event.PASSWORD_RESET and forgot_factors:
                    detail += f"; {FACTORS_OF_AN_UNVERIFIED_ADDRESS}"
                audit.record(
                    conn,
                    account_id=account_id,
                    event=event,
                    at=now,
                    client=client,
                    actor_type=audit.Actor.ANONYMOUS,
                    actor_name=claims.email,
                    detail=detail,
                )

        await self._db.write(work)

    # -- who am I ------------------------------------------------------------------------

    async def summary(self, principal: Principal) -> AccountSummary:
        """Who the caller is, for ``GET /api/account`` (a hot path, like authentication):
        read with a key's check (``Principal.account_row``), or one indexed read
        (``queries.SUMMARY``). The email and role are the member's the credential
        acts for (read with the credential)."""
        if principal.account_row is not None:
            name, created_at, verified, active_keys, require_two_factor = principal.account_row
        else:
            row = await self._db.hot_read(
                queries.SUMMARY,
                (principal.person_id, principal.account_id),
                at=self._clock(),
                keep=True,
            )
            if row is None:  # deleted since the caller authenticated: its credential is void
                raise NotAuthenticated
            _, name, created_at, verified, active_keys, require_two_factor = row
        created = as_utc(created_at)
        assert created is not None
        return AccountSummary(
            account=Account(
                id=principal.account_id, email=str(principal.email or ""), created_at=created
            ),
            active_keys=int(active_keys),
            key_limit=self._settings.key_limit,
            email_verified=bool(verified) or not self.verifies_email,
            name=str(name),
            role=principal.role,
            require_two_factor=bool(require_two_factor),
        )

    # -- operators ----------------------------------------------------------------------

    async def delete(self, email: str) -> Account:
        """Remove a person, and every account they are the only owner of with all it
        holds (operators only, via the CLI).

        Those accounts' keys and zones go with them (foreign keys cascade); the
        person's memberships of other accounts end, and so do the keys they vouch
        for there; their sessions fail from the next request.
        """
        normalised = email.strip().lower()

        def work(conn: Connection) -> Account:
            person = self._person(conn, normalised)
            owned = select(memberships.c.account_id).where(
                memberships.c.person_id == person.id, memberships.c.role == str(Role.OWNER)
            )
            other_owners = select(memberships.c.account_id).where(
                memberships.c.person_id != person.id, memberships.c.role == str(Role.OWNER)
            )
            conn.execute(
                delete(accounts).where(accounts.c.id.in_(owned), accounts.c.id.not_in(other_owners))
            )
            conn.execute(delete(persons).where(persons.c.id == person.id))
            return person

        return await self._db.write(work)

    @staticmethod
    def _person(conn: Connection, email: str) -> Account:
        """The person with this email, as an :class:`Account` of their own account's
        id (what operator commands act on)."""
        row = conn.execute(
            select(persons.c.id, persons.c.email, persons.c.created_at).where(
                persons.c.email == email
            )
        ).first()
        account_id = home_account(conn, row.id) if row is not None else None
        if row is None or account_id is None:
            raise AccountNotFound(f"No account with the email {email}.")
        return Account(id=account_id, email=row.email, created_at=row.created_at)

    async def find(self, email: str) -> Account:
        normalised = email.strip().lower()
        return await self._db.read(lambda conn: self._person(conn, normalised))
