"""Second factors: TOTP, passkeys and recovery codes; the second step of a sign-in;
re-authentication (step-up).

* **TOTP** (RFC 6238: SHA-1, 6 digits, 30-second steps, ``pyotp``). The shared
  secret is sealed at rest (``paradarum.secretbox``). A code of the step before or
  after the server's is accepted (clock drift), but never a step at or before the
  last one accepted: a code seen over someone's shoulder cannot be used again.
* **Recovery codes**: ten, random (50 bits each from the CSPRNG), shown once and
  stored as SHA-256 — like API keys, they are too random to guess offline, so a
  slow password hash would add nothing but cost. Each works once.
* **Passkeys** (WebAuthn, ``webauthn``/py_webauthn for every ceremony check): the
  relying party is the host of ``PARADARUM_PUBLIC_URL``, the origin that URL's.
* **Sign-in in two steps**: the right password of a person with a second factor
  gives an opaque challenge (valid 5 minutes, once; 5 wrong answers end it). Wrong
  answers also count against the sign-in limits of the email and address, so
  fresh challenges do not give a guesser more tries.
* **Step-up**: actions that mint power need a sign-in or re-authentication at most
  10 minutes old (``Principal.require_step_up``); :meth:`reauthenticate` gives a
  fresh session after the password (and a second factor, where one is on).

The person whose factor changes is emailed on every change and every recovery-code
use, through the notification outbox, in the transaction of the change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pyotp
import segno
import webauthn
from sqlalchemy import Connection, delete, func, insert, select, update
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import (
    accounts,
    auth_challenges,
    memberships,
    passkeys,
    persons,
    recovery_codes,
    totp_factors,
)
from paradarum.db.types import as_utc
from paradarum.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from paradarum.passwords import Passwords
from paradarum.secretbox import CannotOpen, SecretBox
from paradarum.services import audit, validation
from paradarum.services.context import ClientInfo, CredentialKind, Principal
from paradarum.services.emails import Kind, enqueue, owners_of
from paradarum.services.roles import Action

if TYPE_CHECKING:  # accounts.py starts sign-ins here: only the type goes the other way
    from paradarum.services.accounts import AccountService, Session

TOTP_PERIOD = 30
TOTP_DIGITS = 6
# Steps either side of the server's that are accepted (clock drift of the phone).
TOTP_DRIFT_STEPS = 1
ISSUER_NAME = "Paradarum"
CHALLENGE_LIFETIME = timedelta(minutes=5)
MAX_FAILURES = 5
RECOVERY_CODE_COUNT = 10
# Lowercase letters and digits without the ones people misread (0/o, 1/l/i).
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
MAX_PASSKEYS = 20

WRONG_CODE = "Wrong code."
CHALLENGE_ENDED = "This sign-in has expired or ended. Sign in again with your password."
TOO_MANY_WRONG = "Too many wrong codes: this sign-in has ended. Sign in again with your password."
TOO_MANY_FAILURES = "Too many failed sign-ins. Try again later."


class Method(StrEnum):
    """How the second step of a sign-in may be answered."""

    TOTP = "totp"
    PASSKEY = "passkey"
    RECOVERY_CODE = "recoveryCode"


class Purpose(StrEnum):
    SIGN_IN = "sign-in"
    # A passkey registration, or a passkey re-authentication, under way.
    PASSKEY = "passkey"
    REAUTH = "reauth"


class Change(StrEnum):
    """What the person is emailed about."""

    TOTP_ON = "totp_on"
    TOTP_OFF = "totp_off"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    RECOVERY_CODE_USED = "recovery_code_used"
    RECOVERY_CODES_RENEWED = "recovery_codes_renewed"


# The security-log event of each change a person makes to their own second factors
# (a recovery code used is logged apart: it is a sign-in step, not a change).
_CHANGE_EVENTS = {
    Change.TOTP_ON: audit.Event.TOTP_ENABLED,
    Change.TOTP_OFF: audit.Event.TOTP_DISABLED,
    Change.PASSKEY_ADDED: audit.Event.PASSKEY_ADDED,
    Change.PASSKEY_REMOVED: audit.Event.PASSKEY_REMOVED,
    Change.RECOVERY_CODES_RENEWED: audit.Event.RECOVERY_CODES_RENEWED,
}


# -- pure helpers ----------------------------------------------------------------------


def totp_step(moment: datetime) -> int:
    return int(moment.timestamp()) // TOTP_PERIOD


def totp_code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).generate_otp(step)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The 30-second step whose code ``code`` is (this step, the one before or the one
    after), or None. Compared in constant time."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = totp_step(now)
    found = None
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp_code(secret, step), code):
            found = step
    return found


def otpauth_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=email, issuer_name=ISSUER_NAME
    )


def qr_code(uri: str) -> str:
    """The URI as a QR code, an SVG ``data:`` URI (what the panel shows)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=4, border=2))


def new_recovery_codes() -> list[str]:
    def one() -> str:
        chars = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        return f"{chars[:5]}-{chars[5:]}"

    return [one() for _ in range(RECOVERY_CODE_COUNT)]


def hash_recovery_code(code: str) -> str:
    normalised = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(f"recovery:{normalised}".encode()).hexdigest()


def hash_challenge(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignInChallenge:
    """The answer of a right password when a second factor is on."""

    challenge: str
    methods: list[Method]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_code: str


@dataclass(frozen=True, slots=True)
class PasskeyInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Status:
    totp: bool
    passkeys: list[PasskeyInfo]
    recovery_codes_left: int

    @property
    def enabled(self) -> bool:
        return self.totp or bool(self.passkeys)


@dataclass(frozen=True, slots=True)
class NewPasskey:
    passkey: PasskeyInfo
    # Set when this passkey is the person's first second factor.
    recovery_codes: list[str] | None


@dataclass(frozen=True, slots=True)
class PasskeyOptions:
    challenge: str
    public_key: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What answers a second-factor question: one of these."""

    code: str | None = None
    recovery_code: str | None = None
    passkey: dict[str, Any] | None = None


# -- database helpers -----------------------------------------------------------------


def methods_of(conn: Connection, person_id: int) -> list[Method]:
    """The second factors a person has on (empty: none)."""
    found: list[Method] = []
    totp = conn.execute(
        select(totp_factors.c.person_id).where(
            totp_factors.c.person_id == person_id, totp_factors.c.confirmed_at.is_not(None)
        )
    ).first()
    if totp is not None:
        found.append(Method.TOTP)
    keys = conn.execute(
        select(func.count()).select_from(passkeys).where(passkeys.c.person_id == person_id)
    ).scalar_one()
    if keys:
        found.append(Method.PASSKEY)
    if found:
        found.append(Method.RECOVERY_CODE)
    return found


def forget_second_factors(conn: Connection, person_id: int) -> bool:
    """Remove every second factor of the person (authenticator app, passkeys,
    recovery codes) and their challenges under way; whether there was one."""
    had = bool(methods_of(conn, person_id))
    for table in (totp_factors, passkeys, recovery_codes, auth_challenges):
        conn.execute(delete(table).where(table.c.person_id == person_id))
    return had


def _new_challenge(
    conn: Connection,
    *,
    purpose: Purpose,
    person_id: int,
    account_id: int | None,
    now: datetime,
    webauthn_challenge: str | None = None,
) -> str:
    token = secrets.token_urlsafe(32)
    # Spent and expired challenges of the person go (few rows stay for anyone).
    conn.execute(
        delete(auth_challenges).where(
            auth_challenges.c.person_id == person_id, auth_challenges.c.expires_at <= now
        )
    )
    conn.execute(
        insert(auth_challenges).values(
            token_hash=hash_challenge(token),
            purpose=str(purpose),
            person_id=person_id,
            account_id=account_id,
            webauthn_challenge=webauthn_challenge,
            created_at=now,
            expires_at=now + CHALLENGE_LIFETIME,
            failures=0,
        )
    )
    return token


def begin_sign_in(
    conn: Connection, *, person_id: int, account_id: int, now: datetime
) -> SignInChallenge | None:
    """After the right password: a challenge for the second step when the person
    has a second factor, else None (the password is enough)."""
    methods = methods_of(conn, person_id)
    if not methods:
        return None
    token = _new_challenge(
        conn, purpose=Purpose.SIGN_IN, person_id=person_id, account_id=account_id, now=now
    )
    return SignInChallenge(challenge=token, methods=methods, expires_at=now + CHALLENGE_LIFETIME)


def _notify(
    conn: Connection,
    db: Database,
    *,
    person_id: int,
    account_id: int | None,
    change: Change,
    now: datetime,
    client: ClientInfo,
    detail: str | None = None,
) -> None:
    """Email the person about a change of their second factors (to their own
    address, logged in the account they acted on), and each owner of an account
    they are a member of: a sign-in of the team that gets weaker, or a recovery
    code that someone used, is the owners' business too. An owner is written to
    once however many of the accounts they own, and not at all when the change
    is their own (they have the mail above)."""
    row = conn.execute(select(persons.c.email).where(persons.c.id == person_id)).first()
    if row is None:
        return
    seen = client.clipped()
    # One event, one mail per recipient: the same key for all of them.
    event = secrets.token_hex(8)
    if account_id is not None:
        enqueue(
            conn,
            db,
            account_id=account_id,
            kind=Kind.SECOND_FACTOR,
            dedupe_key=f"second_factor:{person_id}:{event}",
            payload={
                "change": str(change),
                "at": now.isoformat(),
                "detail": detail,
                "address": seen.address,
                "user_agent": seen.user_agent,
            },
            now=now,
            recipient=row.email,
        )
    member_of = conn.execute(
        select(memberships.c.account_id).where(memberships.c.person_id == person_id)
    ).scalars()
    for owner in owners_of(conn, account_ids=list(member_of), excluding=(person_id,)):
        enqueue(
            conn,
            db,
            account_id=owner.account_id,
            kind=Kind.MEMBER_SECOND_FACTOR,
            dedupe_key=f"member_second_factor:{person_id}:{event}:{owner.person_id}",
            # No ``detail``: it is the person's own (a passkey's name, codes left).
            payload={
                "member": row.email,
                "account_names": list(owner.account_names),
                "change": str(change),
                "at": now.isoformat(),
                "address": seen.address,
                "user_agent": seen.user_agent,
            },
            now=now,
            recipient=owner.email,
        )


def _insert_recovery_codes(conn: Connection, person_id: int, now: datetime) -> list[str]:
    conn.execute(delete(recovery_codes).where(recovery_codes.c.person_id == person_id))
    codes = new_recovery_codes()
    conn.execute(
        insert(recovery_codes),
        [
            {"person_id": person_id, "code_hash": hash_recovery_code(code), "created_at": now}
            for code in codes
        ],
    )
    return codes


def _session_person(principal: Principal) -> int:
    if principal.kind is not CredentialKind.SESSION or principal.person_id is None:
        raise Forbidden(
            "Second factors are managed with a panel session (sign in): an API key cannot."
        )
    return principal.person_id


def _passkey_info(row: Any) -> PasskeyInfo:
    created = as_utc(row.created_at)
    assert created is not None
    return PasskeyInfo(
        id=int(row.id), name=row.name, created_at=created, last_used_at=as_utc(row.last_used_at)
    )


# -- service ---------------------------------------------------------------------------


class TwoFactorService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        box: SecretBox,
        passwords: Passwords,
        accounts: AccountService,
        public_url: str,
        on_notify: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._box = box
        self._passwords = passwords
        self._accounts = accounts
        self._on_notify = on_notify
        parts = urlsplit(public_url)
        self.rp_id = parts.hostname or "localhost"
        self.origin = f"{parts.scheme}://{parts.netloc}"

    def _notified(self) -> None:
        if self._on_notify is not None:
            self._on_notify()

    # -- status -------------------------------------------------------------------------

    async def status(self, principal: Principal) -> Status:
        person_id = _session_person(principal)

        def read(conn: Connection) -> Status:
            totp = conn.execute(
                select(totp_factors.c.confirmed_at).where(totp_factors.c.person_id == person_id)
            ).first()
            keys = conn.execute(
                select(passkeys).where(passkeys.c.person_id == person_id).order_by(passkeys.c.id)
            ).all()
            left = conn.execute(
                select(func.count())
                .select_from(recovery_codes)
                .where(recovery_codes.c.person_id == person_id, recovery_codes.c.used_at.is_(None))
            ).scalar_one()
            return Status(
                totp=totp is not None and totp.confirmed_at is not None,
                passkeys=[_passkey_info(row) for row in keys],
                recovery_codes_left=int(left),
            )

        return await self._db.read(read)

    # -- TOTP ---------------------------------------------------------------------------

    async def start_totp(self, *, principal: Principal, client: ClientInfo) -> TotpEnrolment:
        """A new secret, pending until :meth:`confirm_totp` sees a first code."""
        person_id = _session_person(principal)
        now = self._clock()
        principal.require_step_up(now)
        secret = pyotp.random_base32()

        def work(conn: Connection) -> str:
            row = conn.execute(
                select(totp_factors.c.confirmed_at, persons.c.email)
                .select_from(persons.outerjoin(totp_factors))
                .where(persons.c.id == person_id)
            ).first()
            if row is None:
                raise NotAuthenticated
            if row.confirmed_at is not None:
                raise ValidationFailed(
                    {"totp": ["An authenticator app is already on."]},
                    "An authenticator app is already on: turn it off first to use another.",
                )
            sealed = self._box.seal(secret, bound_to=str(person_id))
            conn.execute(delete(totp_factors).where(totp_factors.c.person_id == person_id))
            conn.execute(
                insert(totp_factors).values(
                    person_id=person_id, secret_sealed=sealed, created_at=now
                )
            )
            return str(row.email)

        email = await self._db.write(work)
        uri = otpauth_uri(secret, email)
        return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_code=qr_code(uri))

    def _secret(self, sealed: str, person_id: int) -> str | None:
        try:
            return self._box.open(sealed, bound_to=str(person_id))
        except CannotOpen:
            return None

    def _take_totp(self, conn: Connection, person_id: int, code: str, now: datetime) -> bool:
        """Whether ``code`` is the person's current TOTP code, of a step not used
        before; the step is spent (in the caller's transaction)."""
        row = conn.execute(
            select(totp_factors.c.secret_sealed, totp_factors.c.last_step).where(
                totp_factors.c.person_id == person_id
            )
        ).first()
        if row is None:
            return False
        secret = self._secret(row.secret_sealed, person_id)
        step = matching_step(secret, code, now) if secret is not None else None
        if step is None or (row.last_step is not None and step <= row.last_step):
            return False
        # Of two simultaneous uses of one code, one moves last_step.
        taken = conn.execute(
            update(totp_factors)
            .where(
                totp_factors.c.person_id == person_id,
                (totp_factors.c.last_step.is_(None)) | (totp_factors.c.last_step < step),
            )
            .values(last_step=step)
        ).rowcount
        return taken == 1

    async def confirm_totp(
        self, *, principal: Principal, code: str, client: ClientInfo
    ) -> list[str]:
        """Turn TOTP on with a first code; the recovery codes, shown this once (new
        ones when the person had none)."""
        person_id = _session_person(principal)
        now = self._clock()
        await self._check_limits(principal, client)

        def work(conn: Connection) -> list[str] | None:
            row = conn.execute(
                select(totp_factors.c.confirmed_at).where(totp_factors.c.person_id == person_id)
            ).first()
            if row is None:
                raise ValidationFailed(
                    {"code": ["Start with POST /api/account/two-factor/totp."]},
                    "No authenticator app is being set up: start again.",
                )
            if row.confirmed_at is not None:
                raise ValidationFailed(
                    {"code": ["An authenticator app is already on."]},
                    "An authenticator app is already on.",
                )
            if not self._take_totp(conn, person_id, code, now):
                return None
            conn.execute(
                update(totp_factors)
                .where(totp_factors.c.person_id == person_id)
                .values(confirmed_at=now)
            )
            codes = _insert_recovery_codes(conn, person_id, now)
            self._factors_changed(conn, principal, client, Change.TOTP_ON, now)
            return codes

        codes = await self._db.write(work)
        if codes is None:
            await self._failed(principal, client)
            raise ValidationFailed({"code": [WRONG_CODE]}, WRONG_CODE)
        self._notified()
        return codes

    async def disable_totp(self, *, principal: Principal, code: str, client: ClientInfo) -> None:
        """Turn TOTP off; needs a current code. Without any second factor left, the
        recovery codes go too."""
        person_id = _session_person(principal)
        now = self._clock()
        principal.require_step_up(now)
        await self._check_limits(principal, client)

        def work(conn: Connection) -> bool:
            row = conn.execute(
                select(totp_factors.c.confirmed_at).where(totp_factors.c.person_id == person_id)
            ).first()
            if row is None or row.confirmed_at is None:
                raise ValidationFailed(
                    {"totp": ["No authenticator app is on."]}, "No authenticator app is on."
                )
            if not self._take_totp(conn, person_id, code, now):
                return False
            conn.execute(delete(totp_factors).where(totp_factors.c.person_id == person_id))
            if not methods_of(conn, person_id):
                conn.execute(delete(recovery_codes).where(recovery_codes.c.person_id == person_id))
            self._factors_changed(conn, principal, client, Change.TOTP_OFF, now)
            return True

        if not await self._db.write(work):
            await self._failed(principal, client)
            raise ValidationFailed({"code": [WRONG_CODE]}, WRONG_CODE)
        self._notified()

    async def renew_recovery_codes(self, *, principal: Principal, client: ClientInfo) -> list[str]:
        """Ten new recovery codes; the old ones stop working."""
        person_id = _session_person(principal)
        now = self._clock()
        principal.require_step_up(now)

        def work(conn: Connection) -> list[str]:
            if not methods_of(conn, person_id):
                raise ValidationFailed(
                    {"recoveryCodes": ["Turn on a second factor first."]},
                    "Recovery codes come with a second factor: turn one on first.",
                )
            codes = _insert_recovery_codes(conn, person_id, now)
            self._factors_changed(conn, principal, client, Change.RECOVERY_CODES_RENEWED, now)
            return codes

        codes = await self._db.write(work)
        self._notified()
        return codes

    # -- passkeys -----------------------------------------------------------------------

    async def passkey_registration_options(self, *, principal: Principal) -> PasskeyOptions:
        person_id = _session_person(principal)
        now = self._clock()
        principal.require_step_up(now)

        def work(conn: Connection) -> PasskeyOptions:
            person = conn.execute(select(persons.c.email).where(persons.c.id == person_id)).first()
            if person is None:
                raise NotAuthenticated
            existing = conn.execute(
                select(passkeys.c.credential_id).where(passkeys.c.person_id == person_id)
            ).all()
            if len(existing) >= MAX_PASSKEYS:
                raise ValidationFailed(
                    {"passkey": [f"At most {MAX_PASSKEYS} passkeys."]},
                    f"You have {MAX_PASSKEYS} passkeys, the most allowed: remove one first.",
                )
            options = webauthn.generate_registration_options(
                rp_id=self.rp_id,
                rp_name=ISSUER_NAME,
                user_name=person.email,
                user_id=hashlib.sha256(f"paradarum-person:{person_id}".encode()).digest(),
                user_display_name=person.email,
                exclude_credentials=[
                    PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(row[0]))
                    for row in existing
                ],
                authenticator_selection=AuthenticatorSelectionCriteria(
                    resident_key=ResidentKeyRequirement.DISCOURAGED,
                    user_verification=UserVerificationRequirement.PREFERRED,
                ),
            )
            token = _new_challenge(
                conn,
                purpose=Purpose.PASSKEY,
                person_id=person_id,
                account_id=principal.account_id,
                now=now,
                webauthn_challenge=bytes_to_base64url(options.challenge),
            )
            return PasskeyOptions(
                challenge=token, public_key=json.loads(webauthn.options_to_json(options))
            )

        return await self._db.write(work)

    async def register_passkey(
        self,
        *,
        principal: Principal,
        challenge: str,
        name: str,
        credential: dict[str, Any],
        client: ClientInfo,
    ) -> NewPasskey:
        person_id = _session_person(principal)
        name = validation.key_name(name)
        now = self._clock()

        # Spent first, in a transaction of its own: a failed ceremony spends it too.
        expected = await self._db.write(
            lambda conn: self._spend(conn, challenge, Purpose.PASSKEY, person_id, now)
        )
        try:
            verified = webauthn.verify_registration_response(
                credential=credential,
                expected_challenge=webauthn.base64url_to_bytes(expected),
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
            raise ValidationFailed(
                {"credential": ["The passkey could not be verified."]},
                "The passkey could not be verified. Try again.",
            ) from exc

        def work(conn: Connection) -> NewPasskey:
            first = not methods_of(conn, person_id)
            transports = credential.get("response", {}).get("transports")
            row = conn.execute(
                self._db.insert(passkeys)
                .values(
                    person_id=person_id,
                    credential_id=bytes_to_base64url(verified.credential_id),
                    public_key=bytes_to_base64url(verified.credential_public_key),
                    sign_count=verified.sign_count,
                    name=name,
                    transports=json.dumps(transports) if isinstance(transports, list) else None,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=[passkeys.c.credential_id])
                .returning(passkeys)
            ).first()
            if row is None:
                raise ValidationFailed(
                    {"credential": ["This passkey is registered already."]},
                    "This passkey is registered already.",
                )
            codes = _insert_recovery_codes(conn, person_id, now) if first else None
            self._factors_changed(conn, principal, client, Change.PASSKEY_ADDED, now, detail=name)
            return NewPasskey(passkey=_passkey_info(row), recovery_codes=codes)

        added = await self._db.write(work)
        self._notified()
        return added

    async def rename_passkey(
        self, *, principal: Principal, passkey_id: int, name: str
    ) -> PasskeyInfo:
        person_id = _session_person(principal)
        name = validation.key_name(name)

        def work(conn: Connection) -> PasskeyInfo:
            row = conn.execute(
                update(passkeys)
                .where(passkeys.c.id == passkey_id, passkeys.c.person_id == person_id)
                .values(name=name)
                .returning(passkeys)
            ).first()
            if row is None:
                raise PasskeyNotFound
            return _passkey_info(row)

        return await self._db.write(work)

    async def remove_passkey(
        self, *, principal: Principal, passkey_id: int, client: ClientInfo
    ) -> PasskeyInfo:
        person_id = _session_person(principal)
        now = self._clock()
        principal.require_step_up(now)

        def work(conn: Connection) -> PasskeyInfo:
            row = conn.execute(
                delete(passkeys)
                .where(passkeys.c.id == passkey_id, passkeys.c.person_id == person_id)
                .returning(passkeys)
            ).first()
            if row is None:
                raise PasskeyNotFound
            if not methods_of(conn, person_id):
                conn.execute(delete(recovery_codes).where(recovery_codes.c.person_id == person_id))
            self._factors_changed(
                conn, principal, client, Change.PASSKEY_REMOVED, now, detail=row.name
            )
            return _passkey_info(row)

        removed = await self._db.write(work)
        self._notified()
        return removed

    def _authentication_options(
        self, conn: Connection, person_id: int
    ) -> tuple[dict[str, Any], str]:
        rows = conn.execute(
            select(passkeys.c.credential_id).where(passkeys.c.person_id == person_id)
        ).all()
        if not rows:
            raise ValidationFailed(
                {"passkey": ["You have no passkey."]}, "You have no passkey: use a code."
            )
        options = webauthn.generate_authentication_options(
            rp_id=self.rp_id,
            allow_credentials=[
                PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(row[0]))
                for row in rows
            ],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return json.loads(webauthn.options_to_json(options)), bytes_to_base64url(options.challenge)

    async def sign_in_passkey_options(self, *, challenge: str) -> dict[str, Any]:
        """The WebAuthn request options for the second step of a sign-in."""
        now = self._clock()

        def work(conn: Connection) -> dict[str, Any]:
            row = self._live(conn, challenge, Purpose.SIGN_IN, now)
            options, webauthn_challenge = self._authentication_options(conn, row.person_id)
            conn.execute(
                update(auth_challenges)
                .where(auth_challenges.c.token_hash == hash_challenge(challenge))
                .values(webauthn_challenge=webauthn_challenge)
            )
            return options

        return await self._db.write(work)

    async def reauthentication_passkey_options(self, *, principal: Principal) -> PasskeyOptions:
        person_id = _session_person(principal)
        now = self._clock()

        def work(conn: Connection) -> PasskeyOptions:
            options, webauthn_challenge = self._authentication_options(conn, person_id)
            token = _new_challenge(
                conn,
                purpose=Purpose.REAUTH,
                person_id=person_id,
                account_id=principal.account_id,
                now=now,
                webauthn_challenge=webauthn_challenge,
            )
            return PasskeyOptions(challenge=token, public_key=options)

        return await self._db.write(work)

    def _take_passkey(
        self,
        conn: Connection,
        person_id: int,
        credential: dict[str, Any],
        expected: str | None,
        now: datetime,
    ) -> bool:
        if expected is None:
            return False
        raw_id = credential.get("id") if isinstance(credential, dict) else None
        if not isinstance(raw_id, str):
            return False
        row = conn.execute(
            select(passkeys).where(
                passkeys.c.person_id == person_id, passkeys.c.credential_id == raw_id
            )
        ).first()
        if row is None:
            return False
        try:
            verified = webauthn.verify_authentication_response(
                credential=credential,
                expected_challenge=webauthn.base64url_to_bytes(expected),
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=webauthn.base64url_to_bytes(row.public_key),
                credential_current_sign_count=int(row.sign_count),
            )
        except (WebAuthnException, ValueError, TypeError, KeyError):
            return False
        conn.execute(
            update(passkeys)
            .where(passkeys.c.id == row.id)
            .values(sign_count=verified.new_sign_count, last_used_at=now)
        )
        return True

    # -- challenges ---------------------------------------------------------------------

    @staticmethod
    def _live(conn: Connection, token: str, purpose: Purpose, now: datetime) -> Any:
        row = conn.execute(
            select(auth_challenges).where(auth_challenges.c.token_hash == hash_challenge(token))
        ).first()
        if (
            row is None
            or row.purpose != str(purpose)
            or row.used_at is not None
            or as_utc(row.expires_at) <= now  # type: ignore[operator]
            or row.failures >= MAX_FAILURES
        ):
            raise NotAuthenticated(CHALLENGE_ENDED)
        return row

    def _spend(
        self, conn: Connection, token: str, purpose: Purpose, person_id: int, now: datetime
    ) -> str:
        """Spend a passkey ceremony's challenge of this person: its WebAuthn challenge."""
        row = conn.execute(
            update(auth_challenges)
            .where(
                auth_challenges.c.token_hash == hash_challenge(token),
                auth_challenges.c.purpose == str(purpose),
                auth_challenges.c.person_id == person_id,
                auth_challenges.c.used_at.is_(None),
                auth_challenges.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(auth_challenges.c.webauthn_challenge)
        ).first()
        if row is None or row.webauthn_challenge is None:
            raise ValidationFailed(
                {"challenge": ["This passkey request has expired. Start again."]},
                "This passkey request has expired. Start again.",
            )
        return str(row.webauthn_challenge)

    def _answer(
        self,
        conn: Connection,
        *,
        person_id: int,
        account_id: int | None,
        answer: Answer,
        webauthn_challenge: str | None,
        now: datetime,
        client: ClientInfo,
    ) -> bool:
        """Whether ``answer`` proves the second factor (spending what it uses)."""
        if answer.code is not None:
            return self._take_totp(conn, person_id, answer.code, now)
        if answer.passkey is not None:
            return self._take_passkey(conn, person_id, answer.passkey, webauthn_challenge, now)
        if answer.recovery_code is not None:
            used = conn.execute(
                update(recovery_codes)
                .where(
                    recovery_codes.c.person_id == person_id,
                    recovery_codes.c.code_hash == hash_recovery_code(answer.recovery_code),
                    recovery_codes.c.used_at.is_(None),
                )
                .values(used_at=now)
            ).rowcount
            if used != 1:
                return False
            if account_id is not None:
                audit.record(
                    conn,
                    account_id=account_id,
                    event=audit.Event.RECOVERY_CODE_USED,
                    at=now,
                    client=client,
                    actor_type=audit.Actor.SESSION,
                )
            left = conn.execute(
                select(func.count())
                .select_from(recovery_codes)
                .where(recovery_codes.c.person_id == person_id, recovery_codes.c.used_at.is_(None))
            ).scalar_one()
            _notify(
                conn,
                self._db,
                person_id=person_id,
                account_id=account_id,
                change=Change.RECOVERY_CODE_USED,
                now=now,
                client=client,
                detail=f"{left} left",
            )
            return True
        raise ValidationFailed(
            {"code": ["Give a code, a recovery code or a passkey."]},
            "Give the code of your authenticator app, a recovery code or a passkey.",
        )

    # -- the second step of a sign-in ----------------------------------------------------

    async def complete_sign_in(self, *, challenge: str, answer: Answer, client: ClientInfo) -> Any:
        """The session, when ``answer`` proves the second factor of the person the
        challenge was made for. A wrong answer is a 401 (and a 5th ends the
        challenge); each counts against the sign-in limits of the email and address."""
        now = self._clock()
        row = await self._db.read(
            lambda conn: conn.execute(
                select(auth_challenges, persons.c.email)
                .join(persons, persons.c.id == auth_challenges.c.person_id)
                .where(auth_challenges.c.token_hash == hash_challenge(challenge))
            ).first()
        )
        if row is None:
            raise NotAuthenticated(CHALLENGE_ENDED)
        limits = await self._accounts.second_factor_limits(row.email, client, row.account_id)
        token_hash = hash_challenge(challenge)

        def work(conn: Connection) -> Session | None:
            live = self._live(conn, challenge, Purpose.SIGN_IN, now)
            if not self._answer(
                conn,
                person_id=live.person_id,
                account_id=live.account_id,
                answer=answer,
                webauthn_challenge=live.webauthn_challenge,
                now=now,
                client=client,
            ):
                return None
            spent = conn.execute(
                update(auth_challenges)
                .where(
                    auth_challenges.c.token_hash == token_hash, auth_challenges.c.used_at.is_(None)
                )
                .values(used_at=now)
            ).rowcount
            if spent != 1:
                raise NotAuthenticated(CHALLENGE_ENDED)
            account_id = live.account_id
            still_member = conn.execute(
                select(memberships.c.id).where(
                    memberships.c.person_id == live.person_id,
                    memberships.c.account_id == account_id,
                )
            ).first()
            if still_member is None:
                raise NotAuthenticated(CHALLENGE_ENDED)
            return self._accounts.issue_session(
                conn,
                person_id=live.person_id,
                account_id=account_id,
                client=client,
                event=audit.Event.LOGIN_SUCCEEDED,
            )

        session = await self._db.write(work)
        if session is not None:
            if answer.recovery_code is not None:
                self._notified()
            return session
        failures = await self._db.write(
            lambda conn: conn.execute(
                update(auth_challenges)
                .where(auth_challenges.c.token_hash == token_hash)
                .values(failures=auth_challenges.c.failures + 1)
                .returning(auth_challenges.c.failures)
            ).scalar_one_or_none()
        )
        await self._accounts.second_factor_failed(limits, account_id=row.account_id, client=client)
        if failures is not None and failures >= MAX_FAILURES:
            raise NotAuthenticated(TOO_MANY_WRONG)
        raise NotAuthenticated(WRONG_CODE)

    # -- step-up ------------------------------------------------------------------------

    async def reauthenticate(
        self,
        *,
        principal: Principal,
        password: str,
        answer: Answer,
        challenge: str | None,
        client: ClientInfo,
    ) -> Session:
        """A fresh session (sign-in time now) for the same person and account, after
        the password and, where a second factor is on, one of them. Wrong answers
        are 400s on their field (the session itself is fine) and count against the
        sign-in limits."""
        person_id = _session_person(principal)
        row = await self._db.read(
            lambda conn: conn.execute(
                select(persons.c.email, persons.c.password_hash).where(persons.c.id == person_id)
            ).first()
        )
        if row is None:
            raise NotAuthenticated
        limits = await self._accounts.second_factor_limits(row.email, client, principal.account_id)
        if not await self._passwords.verify(row.password_hash, password):
            await self._accounts.second_factor_failed(
                limits, account_id=principal.account_id, client=client
            )
            raise ValidationFailed(
                {"password": ["The password is wrong."]}, "The password is wrong."
            )
        now = self._clock()

        def work(conn: Connection) -> Session | None:
            if methods_of(conn, person_id):
                expected = None
                if answer.passkey is not None:
                    if challenge is None:
                        raise ValidationFailed(
                            {"challenge": ["Required with a passkey."]},
                            "A passkey answer needs the challenge of its options.",
                        )
                    expected = self._spend(conn, challenge, Purpose.REAUTH, person_id, now)
                if not self._answer(
                    conn,
                    person_id=person_id,
                    account_id=principal.account_id,
                    answer=answer,
                    webauthn_challenge=expected,
                    now=now,
                    client=client,
                ):
                    return None
            return self._accounts.issue_session(
                conn,
                person_id=person_id,
                account_id=principal.account_id,
                client=client,
                event=audit.Event.REAUTHENTICATED,
            )

        session = await self._db.write(work)
        if session is None:
            await self._accounts.second_factor_failed(
                limits, account_id=principal.account_id, client=client
            )
            field = "recoveryCode" if answer.recovery_code is not None else "code"
            raise ValidationFailed({field: [WRONG_CODE]}, WRONG_CODE)
        if answer.recovery_code is not None:
            self._notified()
        return session

    # -- the account's rule ----------------------------------------------------------------

    async def set_required(
        self, *, principal: Principal, required: bool, client: ClientInfo
    ) -> bool:
        """Require (or stop requiring) a second factor of every member (owners)."""
        principal.require(Action.MANAGE_OWNERS)
        if principal.kind is not CredentialKind.SESSION or principal.person_id is None:
            raise Forbidden("This is set with a panel session (sign in): an API key cannot.")
        now = self._clock()
        principal.require_step_up(now)
        person_id = principal.person_id

        def work(conn: Connection) -> bool:
            if required and not methods_of(conn, person_id):
                raise ValidationFailed(
                    {"requireTwoFactor": ["Turn on a second factor for yourself first."]},
                    "Turn on a second factor for yourself before requiring one of everyone.",
                )
            conn.execute(
                update(accounts)
                .where(accounts.c.id == principal.account_id)
                .values(require_two_factor=required)
            )
            self._record(
                conn,
                principal,
                client,
                audit.Event.TWO_FACTOR_REQUIREMENT,
                now,
                detail="required of every member" if required else "no longer required",
            )
            return required

        return await self._db.write(work)

    async def required(self, account_id: int) -> bool:
        return bool(
            await self._db.read(
                lambda conn: conn.execute(
                    select(accounts.c.require_two_factor).where(accounts.c.id == account_id)
                ).scalar_one_or_none()
            )
        )

    # -- shared -----------------------------------------------------------------------------

    async def _check_limits(self, principal: Principal, client: ClientInfo) -> None:
        email = principal.email or ""
        await self._accounts.second_factor_limits(email, client, principal.account_id)

    async def _failed(self, principal: Principal, client: ClientInfo) -> None:
        limits = await self._accounts.second_factor_limits(
            principal.email or "", client, principal.account_id
        )
        await self._accounts.second_factor_failed(
            limits, account_id=principal.account_id, client=client
        )

    @staticmethod
    def _record(
        conn: Connection,
        principal: Principal,
        client: ClientInfo,
        event: audit.Event,
        now: datetime,
        *,
        detail: str | None = None,
    ) -> None:
        audit.record(
            conn,
            account_id=principal.account_id,
            event=event,
            at=now,
            client=client,
            actor=principal,
            detail=detail,
        )

    def _factors_changed(
        self,
        conn: Connection,
        principal: Principal,
        client: ClientInfo,
        change: Change,
        now: datetime,
        *,
        detail: str | None = None,
    ) -> None:
        """A change of the signed-in person's second factors, told both ways in its
        transaction: the security log of the account they acted on, and an email to
        them."""
        self._record(conn, principal, client, _CHANGE_EVENTS[change], now, detail=detail)
        _notify(
            conn,
            self._db,
            person_id=_session_person(principal),
            account_id=principal.account_id,
            change=change,
            now=now,
            client=client,
            detail=detail,
        )


class PasskeyNotFound(NotFound):
    message = "No passkey with that ID."
