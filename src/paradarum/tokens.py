"""Panel session tokens: HS256 JWTs.

Exactly one algorithm is accepted on decode, and ``exp``, ``iat``, ``sub``, ``jti``
and ``sk`` are required, so ``alg: none``, algorithm confusion and tokens without an
expiry are all refused by PyJWT before any claim is trusted.

``sub`` is the person signed in and ``acc`` the account the session acts on (a
person may belong to several; switching accounts issues a new token). A token
without ``acc`` was issued before people and accounts were separate: its ``sub``
names both, since every account of that time became a person with the same id.

``sk`` is the person's session key: a random value stored with the person and
compared on every request (``services/auth.py``). A password change gives the
person a new one, which ends every session at once; and since a new person
gets a fresh random value, a token can never be taken for a session of another
person that happens to get the same id.

``aut`` is when the person last proved who they are (a sign-in or a
re-authentication, RFC 9470's ``auth_time``): switching accounts issues a new token
but keeps it, so that step-up (actions that mint power need a proof at most 10
minutes old) cannot be refreshed without the password. A token without it counts
from its ``iat``.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

ALGORITHM = "HS256"
ISSUER = "paradarum"
# The purpose of a token that is not a session: it cannot be used as one (it has no
# session key), and a session cannot be used as one of these (no purpose).
VERIFY_EMAIL = "verify-email"
INVITATION = "invitation"
RESET_PASSWORD = "reset-password"
# A one-time sign-in link, mailed when the right password came from a new address
# while the person's email is under attack (services/accounts.py).
SIGN_IN = "sign-in"
# Purposes whose links are bound to the person's session key, and so void once the
# password changes.
_BOUND = (RESET_PASSWORD, SIGN_IN)


@dataclass(frozen=True, slots=True)
class SessionClaims:
    account_id: int
    token_id: str
    issued_at: datetime
    expires_at: datetime
    session_key: str
    person_id: int
    # When the person last proved who they are (sign-in or re-authentication).
    auth_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmailClaims:
    # What the link is about: the person whose address it verifies, the invitation.
    subject: int
    email: str
    # For a reset or sign-in link: a fingerprint of the session key the person had
    # when the link was made (see ``session_key_fingerprint``).
    fingerprint: str | None = None
    # The link's own id (``jti``): a single-use link is spent by recording it.
    token_id: str | None = None


def session_key_fingerprint(session_key: str) -> str:
    """What a reset or sign-in link carries of the person's session key: a reset
    gives them a new one, so a reset link works once, and a password changed since
    voids either. A hash, so that a link never shows the key itself."""
    return hashlib.sha256(f"email-link:{session_key}".encode()).hexdigest()[:32]


class InvalidToken(Exception):
    """The token is not one we issued, or it is no longer valid."""


class TokenCodec:
    """Issues and checks session tokens with one secret, loaded once per process.

    Checking a signature and parsing the claims costs tens of microseconds on
    every panel request, so the outcome is remembered per token string (at most
    ``verified_cache_size`` tokens, oldest dropped first). That is safe because it
    depends on nothing but the string and this codec's secret: expiry is still
    checked on every call against the clock, and whether the session was ended
    is the database's answer, asked on every request by the authenticator.
    """

    def __init__(
        self, *, secret: str, lifetime_seconds: int, verified_cache_size: int = 4096
    ) -> None:
        self._secret = secret
        self._lifetime = timedelta(seconds=lifetime_seconds)
        self._verified: dict[str, SessionClaims] = {}
        self._verified_max = verified_cache_size
        self._lock = threading.Lock()

    def issue(
        self,
        *,
        account_id: int,
        session_key: str,
        now: datetime,
        person_id: int | None = None,
        auth_time: datetime | None = None,
    ) -> tuple[str, SessionClaims]:
        """A session of ``person_id`` (by default the person of the same id, as
        for accounts from before teams) acting on ``account_id``. ``auth_time``:
        when the person proved who they are (by default now: a sign-in)."""
        person = account_id if person_id is None else person_id
        proved = now if auth_time is None else auth_time
        claims = SessionClaims(
            account_id=account_id,
            token_id=secrets.token_urlsafe(16),
            issued_at=now,
            expires_at=now + self._lifetime,
            session_key=session_key,
            person_id=person,
            auth_time=proved,
        )
        payload = {
            "sub": str(person),
            "acc": account_id,
            "jti": claims.token_id,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "iss": ISSUER,
            "sk": session_key,
            "aut": int(proved.timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def decode(self, token: str, *, now: datetime) -> SessionClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token, now=now)
            if claims.expires_at > now:
                with self._lock:
                    if len(self._verified) >= self._verified_max:
                        del self._verified[next(iter(self._verified))]  # the oldest
                    self._verified[token] = claims
        if claims.expires_at <= now:
            raise InvalidToken
        return claims

    def issue_email_token(
        self,
        *,
        subject: int,
        email: str,
        now: datetime,
        lifetime: timedelta,
        purpose: str = VERIFY_EMAIL,
        session_key: str | None = None,
    ) -> str:
        """A link token that proves its holder received mail at ``email`` (the
        sign-up address check, an invitation, a password reset or sign-in link with
        the person's current ``session_key``): signed like a session token, but for
        ``purpose`` only, and valid for ``lifetime``. Nothing about it is stored."""
        payload = {
            "sub": str(subject),
            "eml": email,
            "pur": purpose,
            "jti": secrets.token_urlsafe(16),
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "iss": ISSUER,
        }
        if session_key is not None:
            payload["skf"] = session_key_fingerprint(session_key)
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def _decode(self, token: str, required: list[str]) -> dict[str, Any]:
        """Signature, algorithm, issuer and the ``required`` claims. Expiry is left to
        the caller, against the service's (injectable) clock. Raises PyJWT's errors."""
        payload: dict[str, Any] = jwt.decode(
            token,
            self._secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": required, "verify_exp": False, "verify_iat": False},
        )
        return payload

    def read_email_token(
        self, token: str, *, now: datetime, purpose: str = VERIFY_EMAIL
    ) -> EmailClaims:
        required = ["exp", "iat", "sub", "eml", "pur", "iss"]
        if purpose in _BOUND:
            required += ["skf", "jti"]
        try:
            payload = self._decode(token, required)
            if payload["pur"] != purpose or int(payload["exp"]) <= now.timestamp():
                raise InvalidToken
            fingerprint, token_id = payload.get("skf"), payload.get("jti")
            return EmailClaims(
                subject=int(payload["sub"]),
                email=str(payload["eml"]),
                fingerprint=str(fingerprint) if fingerprint is not None else None,
                token_id=str(token_id) if token_id is not None else None,
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
            raise InvalidToken from exc

    def _verify(self, token: str, *, now: datetime) -> SessionClaims:
        """Signature, algorithm and claims; not expiry (checked on every use)."""
        try:
            payload = self._decode(token, ["exp", "iat", "sub", "jti", "iss", "sk"])
            person_id = int(payload["sub"])
            account_id = payload.get("acc", person_id)
            if type(account_id) is not int:
                raise ValueError("bad account")
            token_id = str(payload["jti"])
            issued_at = datetime.fromtimestamp(int(payload["iat"]), tz=now.tzinfo)
            expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=now.tzinfo)
            session_key = payload["sk"]
            if not isinstance(session_key, str) or not session_key:
                raise ValueError("bad session key")
            proved = int(payload.get("aut", payload["iat"]))
            auth_time = datetime.fromtimestamp(proved, tz=now.tzinfo)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
            raise InvalidToken from exc
        if account_id <= 0 or person_id <= 0:
            raise InvalidToken
        return SessionClaims(
            account_id, token_id, issued_at, expires_at, session_key, person_id, auth_time
        )
