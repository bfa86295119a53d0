"""Fixed-window abuse limits behind one small interface.

A :class:`Limit` is "at most ``limit`` events per ``window`` seconds in
``bucket``". Three backends count events per ``(bucket, window)``:

* :class:`MemoryRateLimiter` counts per process: the embedded SQLite default.
* :class:`DatabaseRateLimiter` counts in the ``rate_limit_counters`` table, so every
  instance on one PostgreSQL database shares the counts (the default there).
* :class:`RedisRateLimiter` counts in Redis (``PARADARUM_REDIS_URL``). Each call is
  one round trip with a short timeout; when Redis fails, a circuit breaker
  counts per process for a while instead of waiting on it again (fail open to
  per-process limits, never closed: see docs/security.md).

Windows are aligned to the epoch (``now - now % window``) on the injectable clock,
so every instance agrees on which window an event belongs to, and a limit lifts by
itself when its window ends.

The hot path asks "is this address blocked?" on every authenticated request. A
shared backend must not turn that into a network round trip, so it is asked
through :class:`FailureMirror`: see there for the reasoning.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, delete, select, tuple_

from paradarum.clock import Clock
from paradarum.db.tables import rate_limit_counters
from paradarum.errors import Unavailable

if TYPE_CHECKING:
    from paradarum.db.engine import Database

logger = logging.getLogger("paradarum.ratelimit")

# Seconds a Redis call may take, and how long Redis is left alone after it failed.
REDIS_TIMEOUT = 0.25
REDIS_BREAK_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` events per ``window`` seconds in ``bucket``.

    One bucket may have limits over several windows (5 per 15 minutes and 20 per
    day, say): each window is counted on its own, under :attr:`key`.
    """

    bucket: str
    limit: int
    window: int

    @property
    def key(self) -> str:
        return f"{self.bucket}/{self.window}"


class RateLimiter(Protocol):
    shared: bool

    async def waits(self, limits: Sequence[Limit]) -> list[int]:
        """For each limit, seconds until it allows an event (0: it does now); one
        round trip for all of them."""
        ...

    async def retry_after(self, limits: Sequence[Limit]) -> int:
        """Seconds until every limit in ``limits`` allows an event; 0 when all do now."""
        ...

    async def consume(self, limit: Limit) -> int:
        """Count one event unless at the limit; 0 when counted, else seconds to wait."""
        ...

    async def hit(self, limits: Sequence[Limit]) -> None:
        """Count one event in each bucket, unconditionally (a failure, say)."""
        ...

    async def close(self) -> None: ...


def window_start(now: int, window: int) -> int:
    return now - now % window


def retry_after(start: int, window: int, now: int) -> int:
    """Seconds until the window that began at ``start`` ends: always at least 1."""
    return max(1, start + window - now)


@functools.lru_cache(maxsize=4096)
def _ipv6_network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def address_bucket(address: str | None) -> str:
    """The part of a bucket name that stands for a client address.

    An IPv6 client usually holds a whole /64, so one /64 is one bucket: otherwise
    a single host could take a fresh address for every attempt.
    """
    if not address:
        return "-"
    if ":" not in address:
        return address  # IPv4 (the common case) costs no parsing
    return _ipv6_network(address)


def storage_bucket(bucket: str) -> str:
    """Bucket names fit the 255-character column; long ones (an email can be 320
    characters) and ones PostgreSQL text cannot hold (NUL) become a digest, which
    still names exactly one bucket."""
    if len(bucket) <= 200 and "\x00" not in bucket:
        return bucket
    digest = hashlib.sha256(bucket.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{bucket.partition(':')[0][:40]}:sha256:{digest}"


# -- per process ----------------------------------------------------------------------


class MemoryRateLimiter:
    """Counts in this process's memory, within ``max_buckets`` buckets.

    When full, windows that have ended are dropped first, then the oldest half of
    the buckets that are not blocking. A bucket at its limit is never dropped: a
    flood of fresh buckets (say, 100,000 IPv6 networks) must not free an
    attacker who is being held back.
    """

    shared = False

    def __init__(self, clock: Clock, *, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # bucket -> [window start, count, blocking]
        self._counts: dict[str, list[Any]] = {}
        self._max_buckets = max_buckets
        self._full_warned = 0.0

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def _entry(self, limit: Limit, now: int) -> tuple[int, int]:
        start = window_start(now, limit.window)
        stored = self._counts.get(limit.key)
        if stored is None or stored[0] != start:
            return start, 0
        return start, stored[1]

    def blocked(self, limit: Limit) -> int:
        """Synchronous :meth:`retry_after` for one limit (the hot path's question)."""
        if limit.key not in self._counts:
            return 0  # the common case: never failed, so no clock reading either
        now = self._now()
        start, count = self._entry(limit, now)
        return retry_after(start, limit.window, now) if count >= limit.limit else 0

    def take(self, limit: Limit) -> int:
        now = self._now()
        with self._lock:
            start, count = self._entry(limit, now)
            if count >= limit.limit:
                return retry_after(start, limit.window, now)
            self._store(limit, start, count + 1, now)
        return 0

    def count(self, limit: Limit) -> int:
        """Count one event now; returns the window's new count."""
        now = self._now()
        with self._lock:
            start, count = self._entry(limit, now)
            self._store(limit, start, count + 1, now)
        return count + 1

    def current(self, limit: Limit) -> int:
        with self._lock:
            return self._entry(limit, self._now())[1]

    def raise_to(self, limit: Limit, *, start: int, count: int) -> None:
        """Merge a count learnt elsewhere: the window's count becomes at least ``count``."""
        now = self._now()
        with self._lock:
            stored = self._counts.get(limit.key)
            if stored is not None and stored[0] > start:
                return  # a later window already started here
            local = stored[1] if stored is not None and stored[0] == start else 0
            self._store(limit, start, max(local, count), now)

    def _store(self, limit: Limit, start: int, count: int, now: int) -> None:
        bucket = limit.key
        if bucket not in self._counts and len(self._counts) >= self._max_buckets:
            self._make_room(now)
            if len(self._counts) >= self._max_buckets:
                if time.monotonic() - self._full_warned > 60:
                    self._full_warned = time.monotonic()
                    logger.warning("rate limiter full of blocking buckets; new ones not counted")
                return
        self._counts[bucket] = [start, count, count >= limit.limit]

    def _make_room(self, now: int) -> None:
        # Windows are at most a day; anything that started before that has ended.
        live = {k: v for k, v in self._counts.items() if v[0] >= now - 86_400}
        if len(live) >= self._max_buckets:
            open_buckets = sorted(
                (item for item in live.items() if not item[1][2]), key=lambda item: item[1][0]
            )
            for bucket, _ in open_buckets[: max(1, len(open_buckets) // 2)]:
                del live[bucket]
        self._counts = live

    async def waits(self, limits: Sequence[Limit]) -> list[int]:
        return [self.blocked(limit) for limit in limits]

    async def retry_after(self, limits: Sequence[Limit]) -> int:
        return max((self.blocked(limit) for limit in limits), default=0)

    async def consume(self, limit: Limit) -> int:
        return self.take(limit)

    async def hit(self, limits: Sequence[Limit]) -> None:
        for limit in limits:
            self.count(limit)

    async def close(self) -> None:
        return None


# -- shared ------------------------------------------------------------------------------


class SharedRateLimiter:
    """What the shared backends have in common: counts kept elsewhere, asked for
    several buckets in one round trip."""

    shared = True

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock().timestamp())

    # -- the backend's part: keys are (storage bucket, window start, window) -------------

    async def counts(self, keys: Sequence[tuple[str, int, int]]) -> list[int]:
        raise NotImplementedError

    async def add(self, items: Sequence[tuple[str, int, int, int]]) -> list[int]:
        """Add each amount to its window's count; the new totals, in order."""
        raise NotImplementedError

    async def add_below(self, key: tuple[str, int, int], limit: int) -> bool:
        """Add one unless the count is already ``limit``; whether it was added."""
        raise NotImplementedError

    # -- the protocol -------------------------------------------------------------------

    async def waits(self, limits: Sequence[Limit]) -> list[int]:
        if not limits:
            return []
        now = self._now()
        starts = [window_start(now, limit.window) for limit in limits]
        counts = await self.counts(
            [(limit.key, start, limit.window) for limit, start in zip(limits, starts, strict=True)]
        )
        return [
            retry_after(start, limit.window, now) if count >= limit.limit else 0
            for limit, start, count in zip(limits, starts, counts, strict=True)
        ]

    async def retry_after(self, limits: Sequence[Limit]) -> int:
        return max(await self.waits(limits), default=0)

    async def consume(self, limit: Limit) -> int:
        now = self._now()
        start = window_start(now, limit.window)
        if await self.add_below((limit.key, start, limit.window), limit.limit):
            return 0
        return retry_after(start, limit.window, now)

    async def hit(self, limits: Sequence[Limit]) -> None:
        await self.hit_totals(limits)

    async def hit_totals(self, limits: Sequence[Limit], amounts: Sequence[int] = ()) -> list[int]:
        now = self._now()
        items = [
            (limit.key, window_start(now, limit.window), limit.window, amount)
            for limit, amount in zip(limits, amounts or [1] * len(limits), strict=True)
        ]
        return await self.add(items) if items else []

    async def close(self) -> None:
        return None


class DatabaseRateLimiter(SharedRateLimiter):
    """Counters in ``rate_limit_counters``: one row per ``(bucket, window_start)``.

    Each change is an upsert (``INSERT … ON CONFLICT DO UPDATE … RETURNING``),
    atomic on PostgreSQL and SQLite alike, so simultaneous requests on many
    instances never lose a count and ``consume`` can never pass the limit. Rows
    whose window has ended are deleted at most once per ``cleanup_interval``
    seconds per process.
    """

    def __init__(self, db: Database, clock: Clock, *, cleanup_interval: int = 300) -> None:
        super().__init__(clock)
        self._db = db
        self._cleanup_interval = cleanup_interval
        self._next_cleanup = 0

    async def counts(self, keys: Sequence[tuple[str, int, int]]) -> list[int]:
        table = rate_limit_counters
        wanted = [(storage_bucket(bucket), start) for bucket, start, _ in keys]

        def read(conn: Connection) -> dict[tuple[str, int], int]:
            rows = conn.execute(
                select(table.c.bucket, table.c.window_start, table.c.hits).where(
                    tuple_(table.c.bucket, table.c.window_start).in_(wanted)
                )
            ).all()
            return {(row.bucket, row.window_start): int(row.hits) for row in rows}

        found = await self._db.read(read)
        return [found.get(key, 0) for key in wanted]

    def _upsert(self, conn: Connection, item: tuple[str, int, int, int], below: int | None) -> Any:
        bucket, start, window, amount = item
        table = rate_limit_counters
        insert = self._db.insert(table).values(
            bucket=storage_bucket(bucket),
            window_start=start,
            hits=amount,
            expires_at=start + window,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.bucket, table.c.window_start],
            set_={"hits": table.c.hits + insert.excluded.hits},
            where=(table.c.hits < below) if below is not None else None,
        ).returning(table.c.hits)
        return conn.execute(statement).scalar_one_or_none()

    async def add(self, items: Sequence[tuple[str, int, int, int]]) -> list[int]:
        totals = await self._db.write(
            lambda conn: [int(self._upsert(conn, item, None)) for item in items]
        )
        await self._maybe_clean_up()
        return totals

    async def add_below(self, key: tuple[str, int, int], limit: int) -> bool:
        # No row comes back when the conflicting row is already at the limit.
        added = await self._db.write(self._upsert, (*key, 1), limit)
        await self._maybe_clean_up()
        return added is not None

    async def _maybe_clean_up(self) -> None:
        now = self._now()
        if now < self._next_cleanup:
            return
        self._next_cleanup = now + self._cleanup_interval
        await self.clean_up(now)

    async def clean_up(self, now: int | None = None) -> int:
        """Delete counters whose window has ended; best effort, never raises."""
        moment = self._now() if now is None else now

        def work(conn: Connection) -> int:
            table = rate_limit_counters
            return int(conn.execute(delete(table).where(table.c.expires_at <= moment)).rowcount)

        try:
            return await self._db.write(work)
        except Unavailable as exc:
            logger.warning("rate-limit counter cleanup skipped: %s", exc.reason)
            return 0


# KEYS: the counters; ARGV: an amount and a time to live per key, in turn.
_REDIS_ADD = """
local totals = {}
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[2 * i - 1])
  local total = redis.call('INCRBY', key, amount)
  if total == amount then redis.call('EXPIRE', key, ARGV[2 * i]) end
  totals[i] = total
end
return totals
"""

_REDIS_ADD_BELOW = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[1]) then return 0 end
current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


class RedisRateLimiter(SharedRateLimiter):
    """Counters in Redis: one key per ``(bucket, window_start)``, expiring a little
    after its window ends; increments are Lua scripts, so each is atomic.

    Every operation is one round trip, bounded by :data:`REDIS_TIMEOUT`. When one
    fails (Redis down, slow or refusing), the breaker opens: for
    :data:`REDIS_BREAK_SECONDS` every call counts in a per-process
    :class:`MemoryRateLimiter` without trying Redis, then one call tries again.
    Limits keep working per instance and no request waits on a dead Redis.
    """

    def __init__(self, client: Any, clock: Clock, *, namespace: str = "paradarum:rl:") -> None:
        super().__init__(clock)
        self._client = client
        self._namespace = namespace
        self._add_script = client.register_script(_REDIS_ADD)
        self._add_below_script = client.register_script(_REDIS_ADD_BELOW)
        self._fallback = MemoryRateLimiter(clock)
        self._open_until = 0.0

    @classmethod
    def from_url(cls, url: str, clock: Clock, **kwargs: Any) -> RedisRateLimiter:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            health_check_interval=30,
        )
        return cls(client, clock, **kwargs)

    def _key(self, bucket: str, start: int) -> str:
        return f"{self._namespace}{bucket}:{start}"

    def _ttl(self, start: int, window: int) -> int:
        return retry_after(start, window, self._now()) + 60

    @property
    def _broken(self) -> bool:
        return time.monotonic() < self._open_until

    def _trip(self, exc: BaseException) -> None:
        self._open_until = time.monotonic() + REDIS_BREAK_SECONDS
        logger.warning(
            "Redis rate limiter unavailable, counting per process for %gs: %s",
            REDIS_BREAK_SECONDS,
            type(exc).__name__,
        )

    async def _call(self, work: Coroutine[Any, Any, Any]) -> Any:
        import redis

        try:
            return await asyncio.wait_for(work, timeout=REDIS_TIMEOUT * 2)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._trip(exc)
            raise _Broken from exc

    async def counts(self, keys: Sequence[tuple[str, int, int]]) -> list[int]:
        if not self._broken:
            coroutine = self._client.mget([self._key(bucket, start) for bucket, start, _ in keys])
            try:
                return [int(value or 0) for value in await self._call(coroutine)]
            except _Broken:
                pass
        return [
            self._fallback.current(Limit(bucket, 1 << 30, window)) for bucket, _, window in keys
        ]

    async def add(self, items: Sequence[tuple[str, int, int, int]]) -> list[int]:
        if not self._broken:
            arguments: list[int] = []
            for _, start, window, amount in items:
                arguments += [amount, self._ttl(start, window)]
            coroutine = self._add_script(
                keys=[self._key(bucket, start) for bucket, start, _, _ in items], args=arguments
            )
            try:
                return [int(total) for total in await self._call(coroutine)]
            except _Broken:
                pass
        totals = []
        for bucket, _, window, amount in items:
            limit = Limit(bucket, 1 << 30, window)
            for _ in range(amount):
                total = self._fallback.count(limit)
            totals.append(total)
        return totals

    async def add_below(self, key: tuple[str, int, int], limit: int) -> bool:
        bucket, start, window = key
        if not self._broken:
            coroutine = self._add_below_script(
                keys=[self._key(bucket, start)], args=[limit, self._ttl(start, window)]
            )
            try:
                return bool(await self._call(coroutine))
            except _Broken:
                pass
        return self._fallback.take(Limit(bucket, limit, window)) == 0

    async def close(self) -> None:
        await self._client.aclose()


class _Broken(Exception):
    """Redis failed; the breaker is open."""


# -- the hot path -------------------------------------------------------------------


class FailureMirror:
    """The hot path's view of failed authentications.

    Every authenticated request asks whether its address is blocked. Asking
    PostgreSQL or Redis each time would add a round trip to every successful
    request, for the sake of the rare caller that is failing. So:

    * :meth:`blocked` answers from this process's memory only: a mirror of the
      bucket's count in the current window. A caller that never failed costs a
      dict lookup.
    * :meth:`record` (a failure) counts in the mirror at once, then sends the
      increment to the shared store in the background and sets the mirror to the
      cluster-wide total that comes back. Increments for one bucket that arrive
      while one is in flight are coalesced into the next, so a flood of failures
      makes a bounded number of writes and never waits on the store.

    What this gives up, on purpose: an instance learns of failures made on other
    instances at its own next failure from that address, not before. So across N
    processes an address gets at most about ``limit + N`` failed attempts per
    window (instead of ``limit``), and a caller blocked elsewhere whose
    credentials are good is still served here. The limit exists to stop guessing
    and flooding with bad credentials; both stay bounded, and a request with good
    credentials never waits for the shared store. With a per-process limiter
    (``store`` is a :class:`MemoryRateLimiter`) the mirror is the count itself.
    """

    def __init__(
        self,
        store: RateLimiter,
        clock: Clock,
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], None] | None = None,
        max_buckets: int = 100_000,
    ) -> None:
        self._shared = store if isinstance(store, SharedRateLimiter) else None
        self._mirror = (
            store
            if isinstance(store, MemoryRateLimiter)
            else MemoryRateLimiter(clock, max_buckets=max_buckets)
        )
        self._clock = clock
        self._spawn = spawn
        self._pending: dict[Limit, int] = {}
        self._pushing = False
        # Set whenever nothing is waiting to reach the store (a thread event: tests
        # wait on it from outside the serving loop).
        self._idle = threading.Event()
        self._idle.set()

    @property
    def shared(self) -> bool:
        return self._shared is not None

    def blocked(self, limit: Limit) -> int:
        return self._mirror.blocked(limit)

    def record(self, limit: Limit) -> None:
        self._mirror.count(limit)
        if self._shared is None:
            return
        self._pending[limit] = self._pending.get(limit, 0) + 1
        if not self._pushing:
            self._pushing = True
            self._idle.clear()
            work = self._push()
            if self._spawn is not None:
                self._spawn(work)
            else:
                asyncio.get_running_loop().create_task(work)

    async def _push(self) -> None:
        assert self._shared is not None
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                limits = list(batch)
                start_now = int(self._clock().timestamp())
                try:
                    totals = await self._shared.hit_totals(limits, [batch[x] for x in limits])
                except Exception as exc:  # the local count stands; the store catches up
                    logger.warning("shared failure count skipped: %s", type(exc).__name__)
                    continue
                for limit, total in zip(limits, totals, strict=True):
                    start = window_start(start_now, limit.window)
                    self._mirror.raise_to(limit, start=start, count=total)
        finally:
            self._pushing = False
            self._idle.set()

    def settled(self, timeout: float = 10.0) -> bool:
        """Wait until every failure so far has reached the shared store (tests)."""
        return self._idle.wait(timeout)
