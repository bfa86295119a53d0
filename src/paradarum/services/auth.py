"""Who is calling: turn a credential into a :class:`Principal`, or refuse it.

The key path is built to cost almost nothing per request:

* format and checksum are checked first, so mistyped or invented keys never
  reach the database;
* a valid-looking key costs one SHA-256 and one lookup through the unique index
  on ``key_hash`` — no password hasher (see ``paradarum.keys`` for why) — in one
  round trip, inline on SQLite and awaited on the event loop on PostgreSQL
  (the ``*_async`` methods; the plain ones serve callers off the loop);
* nothing about keys is cached in the process, so a revoke committed by any
  process or instance is seen by the very next request everywhere;
* ``lastUsedAt`` is written on the first use, then at most once a minute per key
  (see :class:`UsageRecorder`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, update

from paradarum import keys
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys
from paradarum.db.types import as_utc
from paradarum.errors import NotAuthenticated
from paradarum.services import audit
from paradarum.services.context import ClientInfo, Principal
from paradarum.tokens import InvalidToken, TokenCodec

KEY_LOOKUP_SQL = (
    "SELECT id, account_id, key_prefix, revoked_at, last_used_at FROM api_keys WHERE key_hash = ?"
)
SESSION_LOOKUP_SQL = (
    "SELECT a.session_epoch, "
    "(SELECT 1 FROM revoked_sessions r WHERE r.token_id = ?) "
    "FROM accounts a WHERE a.id = ?"
)
USAGE_INTERVAL = timedelta(minutes=1)
logger = logging.getLogger("paradarum.usage")


@dataclass(frozen=True, slots=True)
class KeyUse:
    """A successful key authentication, and whether ``lastUsedAt`` needs a write."""

    principal: Principal
    first_use: bool
    refresh: bool


class Authenticator:
    """Checks credentials. Pure reads: writes go through :class:`UsageRecorder`."""

    def __init__(self, *, db: Database, tokens: TokenCodec, clock: Clock) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock

    async def authenticate_key(self, raw_key: str) -> KeyUse:
        """Awaited on the event loop (see ``Database.hot_read_async``)."""
        if not keys.is_well_formed(raw_key):
            raise NotAuthenticated
        row = await self._db.hot_read_async(KEY_LOOKUP_SQL, (keys.hash_key(raw_key),))
        if row is None or row[3] is not None:
            raise NotAuthenticated
        key_id, account_id, prefix, _revoked, last_used = row
        last_used_at = as_utc(last_used)
        now = self._clock()
        principal = Principal(
            account_id=int(account_id), kind="key", key_id=int(key_id), key_prefix=str(prefix)
        )
        return KeyUse(
            principal=principal,
            first_use=last_used_at is None,
            refresh=last_used_at is not None and now - last_used_at >= USAGE_INTERVAL,
        )

    async def authenticate_session(self, token: str) -> Principal:
        """Awaited on the event loop (see ``Database.hot_read_async``)."""
        try:
            claims = self._tokens.decode(token, now=self._clock())
        except InvalidToken as exc:
            raise NotAuthenticated from exc
        row = await self._db.hot_read_async(
            SESSION_LOOKUP_SQL, (claims.token_id, claims.account_id)
        )
        # Refused when the account is gone, the session was signed out, or the
        # password changed since the token was issued.
        if row is None or row[1] is not None or int(row[0]) != claims.epoch:
            raise NotAuthenticated
        return Principal(
            account_id=claims.account_id,
            kind="session",
            token_id=claims.token_id,
            token_expires_at_epoch=int(claims.expires_at.timestamp()),
        )


class UsageRecorder:
    """Writes ``lastUsedAt`` (and where from) for successful key uses.

    The first use is written before the response, so it shows in the next list.
    Later uses are coalesced: at most one write per key per minute, skipped while
    another write for the key is pending in this process, and conditional in SQL
    (``last_used_at < now - 1 min``), so that the value never goes backwards and
    many processes together still write about once a minute. A failed write is
    logged and never fails the request that caused it.
    """

    def __init__(self, *, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self.writes = 0  # rows actually changed by this process (for benchmarks)

    def claim(self, key_id: int) -> bool:
        """Reserve the right to write for ``key_id``; False if a write is pending."""
        with self._lock:
            if key_id in self._pending:
                return False
            self._pending.add(key_id)
            return True

    def record(self, use: KeyUse, client: ClientInfo) -> None:
        key_id = use.principal.key_id
        assert key_id is not None
        try:
            self._write(use, client.clipped())
        except Exception:  # runs detached from any request: log, never raise
            logger.warning("lastUsedAt write skipped", extra={"key_id": key_id}, exc_info=True)
        finally:
            with self._lock:
                self._pending.discard(key_id)

    def _write(self, use: KeyUse, client: ClientInfo) -> None:
        principal = use.principal
        now = self._clock()
        condition: ColumnElement[bool] = api_keys.c.last_used_at.is_(None)
        if not use.first_use:
            condition = api_keys.c.last_used_at < now - USAGE_INTERVAL
        with self._db.write() as conn:
            changed = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == principal.key_id, condition)
                .values(
                    last_used_at=now,
                    last_used_address=client.address,
                    last_used_user_agent=client.user_agent,
                )
            ).rowcount
            if changed and use.first_use:
                audit.record(
                    conn,
                    account_id=principal.account_id,
                    event=audit.KEY_FIRST_USED,
                    at=now,
                    client=client,
                    actor=principal,
                    key_id=principal.key_id,
                    key_prefix=principal.key_prefix,
                )
        with self._lock:
            self.writes += changed
