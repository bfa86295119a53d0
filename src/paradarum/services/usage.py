"""What each key is used for: ``lastUsedAt`` and daily counts of requests.

Both are written on the hot path's behalf, so neither may cost a round trip there:

* **Daily counts** (successful requests and refusals, per key and UTC day) are
  added up in this process's memory and flushed to ``key_usage_daily`` every
  :data:`FLUSH_SECONDS` by a background loop, as one upsert per (key, day) that
  *adds* — so any number of processes and instances sum up exactly. A crash loses
  at most the counts of the last interval in that process.
* **lastUsedAt** is written on a key's first use before the answer (so the next
  list shows it), then at most once a minute per key, after the answer, by a
  conditional ``UPDATE`` (``last_used_at < now - 1 min``): the value never goes
  backwards, and many processes together still write about once a minute.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, select, update

from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys, key_usage_daily
from paradarum.errors import KeyNotFound, Unavailable
from paradarum.services import audit, confinement
from paradarum.services.context import ClientInfo, Principal

FLUSH_SECONDS = 10.0
LAST_USED_INTERVAL = timedelta(minutes=1)
HISTORY_DAYS = 90
logger = logging.getLogger("paradarum.usage")


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    successes: int
    refusals: int


class KeyUsage:
    def __init__(self, *, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        # (key id, day) -> [successes, refusals], since the last flush
        self._counts: defaultdict[tuple[int, date], list[int]] = defaultdict(lambda: [0, 0])
        self._pending_last_used: set[int] = set()
        self.last_used_writes = 0  # rows changed by this process (benchmarks, tests)

    # -- counting (hot path: memory only) ------------------------------------------------

    def succeeded(self, key_id: int, now: datetime) -> None:
        self._counts[key_id, now.date()][0] += 1

    def refused(self, key_id: int, now: datetime) -> None:
        self._counts[key_id, now.date()][1] += 1

    async def flush(self) -> None:
        """Add the counts so far to the database. On failure they are kept for the
        next flush (bounded: a day's worth per key at most grows a counter)."""
        if not self._counts:
            return
        batch, self._counts = self._counts, defaultdict(lambda: [0, 0])
        rows = [
            {"key_id": key_id, "day": day, "successes": counts[0], "refusals": counts[1]}
            for (key_id, day), counts in batch.items()
        ]
        try:
            await self._db.write(self._add, rows)
        except Unavailable:
            for (key_id, day), counts in batch.items():
                kept = self._counts[key_id, day]
                kept[0] += counts[0]
                kept[1] += counts[1]
            raise

    def _add(self, conn: Connection, rows: list[dict[str, object]]) -> None:
        table = key_usage_daily
        # Keys deleted since (their account was deleted) are skipped.
        existing = set(
            conn.execute(
                select(api_keys.c.id).where(api_keys.c.id.in_({row["key_id"] for row in rows}))
            ).scalars()
        )
        for row in rows:
            if row["key_id"] not in existing:
                continue
            insert = self._db.insert(table).values(**row)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.key_id, table.c.day],
                    set_={
                        "successes": table.c.successes + insert.excluded.successes,
                        "refusals": table.c.refusals + insert.excluded.refusals,
                    },
                )
            )

    async def history(self, *, principal: Principal, key_id: int, days: int) -> list[DayUsage]:
        """The last ``days`` UTC days (oldest first, today included), zeros filled in."""
        today = self._clock().date()
        first = today - timedelta(days=days - 1)

        def read(conn: Connection) -> dict[date, tuple[int, int]]:
            owner = conn.execute(
                select(api_keys.c.id).where(
                    api_keys.c.id == key_id, api_keys.c.account_id == principal.account_id
                )
            ).first()
            if owner is None:
                raise KeyNotFound
            confinement.require_key(conn, principal, key_id)
            rows = conn.execute(
                select(key_usage_daily).where(
                    key_usage_daily.c.key_id == key_id, key_usage_daily.c.day >= first
                )
            ).all()
            return {row.day: (int(row.successes), int(row.refusals)) for row in rows}

        found = await self._db.read(read)
        return [
            DayUsage(day, *found.get(day, (0, 0)))
            for day in (first + timedelta(days=offset) for offset in range(days))
        ]

    # -- lastUsedAt -----------------------------------------------------------------------

    def last_used_due(self, key_id: int, last_used_at: datetime | None, now: datetime) -> bool:
        """Whether a successful use should write ``lastUsedAt`` (and claim the write)."""
        if last_used_at is not None and now - last_used_at < LAST_USED_INTERVAL:
            return False
        if key_id in self._pending_last_used:
            return False
        self._pending_last_used.add(key_id)
        return True

    async def record_last_used(
        self, principal: Principal, client: ClientInfo, *, first_use: bool
    ) -> None:
        """Write ``lastUsedAt`` (and where from); logged, never raised, on failure."""
        key_id = principal.key_id
        assert key_id is not None
        try:
            changed = await self._db.write(
                self._write_last_used, principal, client.clipped(), first_use, self._clock()
            )
            self.last_used_writes += changed
        except Exception:
            logger.warning("lastUsedAt write skipped", extra={"key_id": key_id}, exc_info=True)
        finally:
            self._pending_last_used.discard(key_id)

    def _write_last_used(
        self,
        conn: Connection,
        principal: Principal,
        client: ClientInfo,
        first_use: bool,
        now: datetime,
    ) -> int:
        condition: ColumnElement[bool] = api_keys.c.last_used_at.is_(None)
        if not first_use:
            condition = api_keys.c.last_used_at < now - LAST_USED_INTERVAL
        changed = int(
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == principal.key_id, condition)
                .values(
                    last_used_at=now,
                    last_used_address=client.address,
                    last_used_user_agent=client.user_agent,
                )
            ).rowcount
        )
        if changed and first_use:
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.KEY_FIRST_USED,
                at=now,
                client=client,
                actor=principal,
                key_id=principal.key_id,
                key_prefix=principal.key_prefix,
            )
        return changed
