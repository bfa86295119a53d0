"""Who is calling: turn a credential into a :class:`Principal`, or refuse it.

Every rule about credentials lives here; the web side only reads headers. The key
path is built to cost almost nothing per request:

* format and checksum are checked first, so mistyped or invented keys never
  reach the database;
* a valid-looking key costs one SHA-256 and one lookup through the unique index
  on ``key_hash`` — no password hasher (see ``paradarum.keys`` for why) — in one
  round trip (``Database.hot_read``: inline on SQLite, awaited on PostgreSQL);
* a revoke committed by any process or instance is seen by the very next request
  everywhere: on PostgreSQL nothing is kept in the process; on SQLite a row is
  kept only while SQLite says no connection has committed since
  (``db/hotrows.py``);
* restrictions (expiry, addresses, permissions) are checked on the row just read;
* usage is counted in memory and ``lastUsedAt`` written at most once a minute
  (``services/usage.py``), so a successful request writes nothing most of the time.

Failed authentications are counted per client address and, past a limit, refused
with 429 before any lookup (``ratelimit.FailureMirror``: no round trip).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import time
from datetime import datetime

from paradarum import keys
from paradarum.background import Background
from paradarum.clock import Clock
from paradarum.config import Settings
from paradarum.db import queries
from paradarum.db.engine import Database
from paradarum.db.types import as_utc
from paradarum.errors import (
    Forbidden,
    NotAuthenticated,
    RateLimited,
    TwoFactorEnrolmentRequired,
    Unavailable,
)
from paradarum.ratelimit import FailureMirror, Limit, address_bucket
from paradarum.services import audit
from paradarum.services.context import ClientInfo, CredentialKind, Permission, Principal
from paradarum.services.roles import Role
from paradarum.services.usage import KeyUsage
from paradarum.tokens import InvalidToken, TokenCodec

TOO_MANY_FAILURES = "Too many failed authentications. Try again later."
WRONG_ADDRESS = "This key cannot be used from your address."
PURGE_ONLY = (
    "This key can only purge cache (and read GET /api/account); "
    "use a key with full access for this."
)
# At most one security-log entry per key and reason in this interval per process,
# so that a flood of refused requests cannot fill the log.
REFUSAL_LOG_INTERVAL = 60.0
logger = logging.getLogger("paradarum.auth")


class KeyRefused(Forbidden):
    """A valid key, used where its restrictions do not allow it."""


@functools.lru_cache(maxsize=1024)
def _networks(
    allowed_cidrs: str,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in json.loads(allowed_cidrs))


@functools.lru_cache(maxsize=4096)
def address_allowed(allowed_cidrs: str, address: str | None) -> bool:
    """Whether ``address`` (the client as the trusted-proxy rules see it) is in one
    of the key's networks. An address that cannot be read is never allowed.
    Remembered: a restricted key is used from the same few addresses, and parsing
    an address costs more than the rest of the check."""
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(allowed_cidrs))


@functools.lru_cache(maxsize=10_000)
def _failure_limit(bucket: str, limit: int, window: int) -> Limit:
    """The failed-authentication limit of one client address: asked on every
    request, built once per address."""
    return Limit(f"auth-fail:{bucket}", limit, window)


_PERMISSIONS = {permission.value: permission for permission in Permission}
_ROLES = {role.value: role for role in Role}


class Authenticator:
    """Checks credentials and their restrictions. Reads only; usage goes to
    :class:`~paradarum.services.usage.KeyUsage`."""

    def __init__(
        self,
        *,
        db: Database,
        tokens: TokenCodec,
        clock: Clock,
        settings: Settings,
        failures: FailureMirror,
        usage: KeyUsage,
        background: Background,
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock
        self._failures = failures
        self._usage = usage
        self._background = background
        self._failure_limit = settings.auth_failures_per_address
        self._failure_window = settings.auth_failure_window_seconds
        self._refusals_logged: dict[tuple[int, str], float] = {}

    async def authenticate(
        self,
        credential: str | None,
        client: ClientInfo,
        *,
        required: Permission = Permission.FULL,
        enrolling: bool = False,
        with_account: bool = False,
    ) -> Principal:
        """The principal behind ``credential``, allowed to act at ``required``.

        ``with_account``: a key's check reads what ``GET /api/account`` shows in the
        same statement (``Principal.account_row``), so that the request is one
        round trip.

        Raises :class:`NotAuthenticated` (401: missing, malformed, unknown, revoked
        or expired — all alike), :class:`RateLimited` (429: too many failures from
        this address), :class:`KeyRefused` (403: a key used from an address or for
        an action its restrictions exclude), :class:`TwoFactorEnrolmentRequired`
        (403: a session of a person without a second factor, in an account that
        requires one, for anything but ``enrolling`` — enrolment, sign-out, the
        person's accounts). Keys are not affected: they act for automation, and
        an owner who requires two-factor must not break every deployment.
        """
        limit = _failure_limit(
            address_bucket(client.address), self._failure_limit, self._failure_window
        )
        retry = self._failures.blocked(limit)
        if retry:
            raise RateLimited(retry, TOO_MANY_FAILURES)
        try:
            if credential is None:
                raise NotAuthenticated
            if keys.looks_like_key(credential):
                return await self._key(credential, client, required, with_account)
            return await self._session(credential, enrolling)
        except NotAuthenticated:
            self._failures.record(limit)
            raise

    async def _key(
        self, raw_key: str, client: ClientInfo, required: Permission, with_account: bool
    ) -> Principal:
        if not keys.is_well_formed(raw_key):
            raise NotAuthenticated
        now = self._clock()
        row = await self._db.hot_read(
            queries.KEY_WITH_ACCOUNT if with_account else queries.KEY,
            (keys.hash_key(raw_key),),
            at=now,
            keep=True,
        )
        if row is None:
            raise NotAuthenticated
        (
            key_id,
            account_id,
            prefix,
            usable,
            last_used,
            permission,
            cidrs,
            zones,
            member_id,
            role,
            person_id,
            email,
        ) = row[:12]
        # Revoked or expired (queries.usable_key), or nobody vouches for it any more
        # (the member's person was deleted).
        if not usable or role is None:
            self._usage.refused(key_id, now)
            raise NotAuthenticated
        principal = Principal(
            account_id=account_id,
            kind=CredentialKind.KEY,
            role=_ROLES[role],
            member_id=member_id,
            person_id=person_id,
            email=email,
            key_id=key_id,
            key_prefix=prefix,
            permission=_PERMISSIONS[permission],
            zone_ids=tuple(json.loads(zones)) if zones else None,
            address_restricted=cidrs is not None,
            account_row=row[12:] if with_account else None,
        )
        if cidrs is not None and not address_allowed(cidrs, client.address):
            self._refuse(
                principal, client, now, f"used from {client.address or 'an unknown address'}"
            )
            raise KeyRefused(WRONG_ADDRESS)
        if not principal.permission.allows(required):
            self._refuse(principal, client, now, "used beyond its purge-only permission")
            raise KeyRefused(PURGE_ONLY)
        self._usage.succeeded(key_id, now)
        last_used_at = as_utc(last_used) if last_used is not None else None
        if self._usage.last_used_due(key_id, last_used_at, now):
            if last_used_at is None:
                # Written before the answer, so that the next list shows it.
                await self._usage.record_last_used(principal, client, first_use=True)
            else:
                self._background.spawn(
                    self._usage.record_last_used(principal, client, first_use=False),
                    name="last-used",
                )
        return principal

    def _refuse(self, principal: Principal, client: ClientInfo, now: datetime, why: str) -> None:
        """Count a refusal, and say so in the security log (at most once a minute
        per key and reason)."""
        key_id = principal.key_id
        assert key_id is not None
        self._usage.refused(key_id, now)
        moment = time.monotonic()
        if moment - self._refusals_logged.get((key_id, why), -REFUSAL_LOG_INTERVAL) < (
            REFUSAL_LOG_INTERVAL
        ):
            return
        if len(self._refusals_logged) > 10_000:
            self._refusals_logged.clear()
        self._refusals_logged[key_id, why] = moment

        async def write() -> None:
            try:
                await self._db.write(
                    audit.record,
                    account_id=principal.account_id,
                    event=audit.Event.KEY_REFUSED,
                    at=now,
                    client=client,
                    actor=principal,
                    key_id=key_id,
                    key_prefix=principal.key_prefix,
                    detail=f"Refused: {why}.",
                )
            except Unavailable:
                logger.warning("key refusal not recorded", extra={"key_id": key_id})

        self._background.spawn(write(), name="key-refused")

    async def _session(self, token: str, enrolling: bool) -> Principal:
        try:
            claims = self._tokens.decode(token, now=self._clock())
        except InvalidToken as exc:
            raise NotAuthenticated from exc
        row = await self._db.hot_read(
            queries.SESSION, (claims.token_id, claims.account_id, claims.person_id), keep=True
        )
        # Refused when the person is gone or no longer a member of the account, the
        # session was signed out, or the person's session key changed (a password
        # change) since it was issued.
        if row is None or row[1] or row[0] != claims.session_key:
            raise NotAuthenticated
        if row[5] and not enrolling:
            raise TwoFactorEnrolmentRequired
        auth_time = claims.auth_time or claims.issued_at
        return Principal(
            account_id=claims.account_id,
            kind=CredentialKind.SESSION,
            role=_ROLES[row[3]],
            member_id=row[2],
            person_id=claims.person_id,
            email=row[4],
            token_id=claims.token_id,
            token_expires_at_epoch=int(claims.expires_at.timestamp()),
            auth_time_epoch=int(auth_time.timestamp()),
        )
