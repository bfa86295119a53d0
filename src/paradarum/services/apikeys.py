"""The API-key lifecycle: create (within the limit), list, revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from paradarum import keys
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys
from paradarum.errors import (
    AlreadyRevoked,
    KeyLimitReached,
    KeyNotFound,
    NotAuthenticated,
    RateLimited,
    ValidationFailed,
)
from paradarum.ratelimit import RateLimiter
from paradarum.services import audit, validation
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.pagination import MAX_LIMIT, newest_first_page, next_cursor

STATUSES = ("all", "active", "revoked")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a key, ever: no hash, no raw key."""

    id: int
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_address: str | None
    last_used_user_agent: str | None
    revoked_at: datetime | None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """The one object that carries the raw key, returned once at creation."""

    info: KeyInfo
    raw_key: str


@dataclass(frozen=True, slots=True)
class KeyPage:
    items: list[KeyInfo]
    next_cursor: str | None


_PUBLIC_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.key_prefix,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.last_used_address,
    api_keys.c.last_used_user_agent,
    api_keys.c.revoked_at,
)


def _info(row: object) -> KeyInfo:
    return KeyInfo(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        key_prefix=row.key_prefix,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        last_used_at=row.last_used_at,  # type: ignore[attr-defined]
        last_used_address=row.last_used_address,  # type: ignore[attr-defined]
        last_used_user_agent=row.last_used_user_agent,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )


class ApiKeyService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        limiter: RateLimiter,
        key_limit: int,
        creations_per_window: int,
        creation_window_seconds: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._key_limit = key_limit
        self._creations = creations_per_window
        self._creation_window = creation_window_seconds

    @staticmethod
    def _count_active(conn: Connection, account_id: int) -> int:
        return int(
            conn.execute(
                select(func.count())
                .select_from(api_keys)
                .where(api_keys.c.account_id == account_id, api_keys.c.revoked_at.is_(None))
            ).scalar_one()
        )

    def create(self, *, principal: Principal, name: str, client: ClientInfo) -> CreatedKey:
        """Create a key, unless the account already has ``key_limit`` active ones.

        Why the lock: counting active keys and inserting must be one atomic step,
        or 30 simultaneous creates would all count 9 and all insert. The account
        row lock (PostgreSQL) or ``BEGIN IMMEDIATE`` (SQLite) makes every create
        of one account wait for the previous one to commit.
        """
        name = validation.key_name(name)
        retry = self._limiter.consume(
            f"key-create:{principal.account_id}",
            limit=self._creations,
            window=self._creation_window,
        )
        if retry:
            raise RateLimited(retry, "Too many keys created recently. Try again later.")
        raw = keys.generate()
        prefix = keys.display_prefix(raw)
        now = self._clock()
        with self._db.write() as conn:
            if not self._db.lock_account(conn, principal.account_id):
                raise NotAuthenticated
            if self._count_active(conn, principal.account_id) >= self._key_limit:
                raise KeyLimitReached(self._key_limit)
            key_id = conn.execute(
                insert(api_keys)
                .values(
                    account_id=principal.account_id,
                    name=name,
                    key_prefix=prefix,
                    key_hash=keys.hash_key(raw),
                    created_at=now,
                )
                .returning(api_keys.c.id)
            ).scalar_one()
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.KEY_CREATED,
                at=now,
                client=client,
                actor=principal,
                key_id=key_id,
                key_prefix=prefix,
            )
        info = KeyInfo(
            id=key_id,
            name=name,
            key_prefix=prefix,
            created_at=now,
            last_used_at=None,
            last_used_address=None,
            last_used_user_agent=None,
            revoked_at=None,
        )
        return CreatedKey(info=info, raw_key=raw)

    def list(
        self,
        *,
        account_id: int,
        limit: int = 100,
        cursor: str | None = None,
        status: str = "all",
    ) -> KeyPage:
        """Newest first (``created_at``, then ``id``), revoked keys included by default."""
        if status not in STATUSES:
            raise ValidationFailed({"status": ["Use active, revoked or all."]})
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed({"limit": [f"Use 1 to {MAX_LIMIT}."]})
        query = select(*_PUBLIC_COLUMNS).where(api_keys.c.account_id == account_id)
        if status == "active":
            query = query.where(api_keys.c.revoked_at.is_(None))
        elif status == "revoked":
            query = query.where(api_keys.c.revoked_at.is_not(None))
        query = newest_first_page(
            query, moment=api_keys.c.created_at, row_id=api_keys.c.id, limit=limit, cursor=cursor
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        items = [_info(row) for row in rows[:limit]]
        return KeyPage(items=items, next_cursor=next_cursor(rows, limit=limit, moment="created_at"))

    def revoke(self, *, principal: Principal, key_id: int, client: ClientInfo) -> KeyInfo:
        """Revoke for good. Of simultaneous revokes, exactly one changes the row."""
        now = self._clock()
        with self._db.write() as conn:
            changed = conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    api_keys.c.account_id == principal.account_id,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            ).rowcount
            row = conn.execute(
                select(*_PUBLIC_COLUMNS).where(
                    api_keys.c.id == key_id, api_keys.c.account_id == principal.account_id
                )
            ).first()
            if row is None:
                raise KeyNotFound
            if changed != 1:
                raise AlreadyRevoked
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.KEY_REVOKED,
                at=now,
                client=client,
                actor=principal,
                key_id=key_id,
                key_prefix=row.key_prefix,
            )
        return _info(row)
