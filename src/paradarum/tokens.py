"""Panel session tokens: HS256 JWTs.

Exactly one algorithm is accepted on decode, and ``exp``, ``iat``, ``sub`` and
``jti`` are required, so ``alg: none``, algorithm confusion and tokens without an
expiry are all refused by PyJWT before any claim is trusted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "paradarum"


@dataclass(frozen=True, slots=True)
class SessionClaims:
    account_id: int
    token_id: str
    issued_at: datetime
    expires_at: datetime
    # The account's session epoch when issued; a password change bumps the
    # account's epoch and so ends every older session at once.
    epoch: int = 0


class InvalidToken(Exception):
    """The token is not one we issued, or it is no longer valid."""


class TokenCodec:
    def __init__(self, *, secret: str, lifetime_seconds: int) -> None:
        self._secret = secret
        self._lifetime = timedelta(seconds=lifetime_seconds)

    def issue(self, *, account_id: int, epoch: int, now: datetime) -> tuple[str, SessionClaims]:
        claims = SessionClaims(
            account_id=account_id,
            token_id=secrets.token_urlsafe(16),
            issued_at=now,
            expires_at=now + self._lifetime,
            epoch=epoch,
        )
        payload = {
            "sub": str(account_id),
            "jti": claims.token_id,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "iss": ISSUER,
            "sep": epoch,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def decode(self, token: str, *, now: datetime) -> SessionClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                # Expiry is checked below against the service's (injectable) clock.
                options={
                    "require": ["exp", "iat", "sub", "jti", "iss", "sep"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
            account_id = int(payload["sub"])
            token_id = str(payload["jti"])
            issued_at = datetime.fromtimestamp(int(payload["iat"]), tz=now.tzinfo)
            expires_at = datetime.fromtimestamp(int(payload["exp"]), tz=now.tzinfo)
            epoch = payload["sep"]
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise ValueError("bad session epoch")
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError) as exc:
            raise InvalidToken from exc
        if account_id <= 0 or expires_at <= now:
            raise InvalidToken
        return SessionClaims(account_id, token_id, issued_at, expires_at, epoch)
