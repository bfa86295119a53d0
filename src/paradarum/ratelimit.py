"""Fixed-window rate limits behind one small interface.

Three backends count events per ``(bucket, window)``:

* :class:`MemoryRateLimiter` counts per process: the embedded SQLite default.
* :class:`DatabaseRateLimiter` counts in the ``rate_limit_counters`` table, so every
  instance on one PostgreSQL database shares the counts (the default there).
* :class:`RedisRateLimiter` counts in Redis (``PARADARUM_REDIS_URL``); if Redis stops
  answering it falls back to per-process counting and says so in the log, rather
  than failing requests.

Windows are aligned to the epoch (``now - now % window``) on the injectable clock,
so every instance agrees on which window an event belongs to, and a limit lifts by
itself when its window ends.

The hot path (``web.deps.get_principal``) asks "is this address blocked?" on every
request. A shared backend must not turn that into a network round trip, so it is
asked through :class:`FailureMirror`: see there for the reasoning.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from paradarum.clock import Clock
from paradarum.db.tables import rate_limit_counters

if TYPE_CHECKING:
    from paradarum.db.engine import Database

logger = logging.getLogger("paradarum.ratelimit")


class RateLimiter(Protocol):
    def peek(self, bucket: str, *, limit: int, window: int) -> int:
        """Seconds until ``bucket`` may act again; 0 when it may act now."""
        ...

    def consume(self, bucket: str, *, limit: int, window: int) -> int:
        """Count one event unless over the limit; returns ``peek``'s answer before it."""
        ...

    def hit(self, bucket: str, *, window: int) -> None:
        """Count one event unconditionally (a failure, say)."""
        ...


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


class MemoryRateLimiter:
    shared = False

    def __init__(self, clock: Clock, *, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}
        self._max_buckets = max_buckets

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def _current(self, bucket: str, window: int, now: int) -> tuple[int, int]:
        start = window_start(now, window)
        stored = self._counts.get(bucket)
        if stored is None or stored[0] != start:
            return start, 0
        return stored

    def peek(self, bucket: str, *, limit: int, window: int) -> int:
        now = self._now()
        with self._lock:
            start, count = self._current(bucket, window, now)
        return retry_after(start, window, now) if count >= limit else 0

    def consume(self, bucket: str, *, limit: int, window: int) -> int:
        now = self._now()
        with self._lock:
            start, count = self._current(bucket, window, now)
            if count >= limit:
                return retry_after(start, window, now)
            self._store(bucket, start, count + 1, now)
        return 0

    def hit(self, bucket: str, *, window: int) -> None:
        now = self._now()
        with self._lock:
            start, count = self._current(bucket, window, now)
            self._store(bucket, start, count + 1, now)

    def current(self, bucket: str, *, window: int) -> int:
        """The count of ``bucket`` in the current window."""
        now = self._now()
        with self._lock:
            return self._current(bucket, window, now)[1]

    def raise_to(self, bucket: str, *, start: int, count: int) -> None:
        """Merge a count learnt elsewhere: the window's count becomes at least ``count``."""
        with self._lock:
            stored = self._counts.get(bucket)
            if stored is not None and stored[0] > start:
                return  # a later window already started here
            local = stored[1] if stored is not None and stored[0] == start else 0
            self._store(bucket, start, max(local, count), self._now())

    def _store(self, bucket: str, start: int, count: int, now: int) -> None:
        if bucket not in self._counts and len(self._counts) >= self._max_buckets:
            # Bound memory under a flood of distinct buckets: drop stale windows.
            self._counts = {k: v for k, v in self._counts.items() if v[0] >= now - 3600}
            if len(self._counts) >= self._max_buckets:
                # Still full of live windows: forget the oldest half. Losing a count
                # only lets a bucket act a little early; memory stays bounded.
                keep = sorted(self._counts.items(), key=lambda item: item[1][0])
                self._counts = dict(keep[len(keep) // 2 :])
        self._counts[bucket] = (start, count)


class SharedRateLimiter:
    """What the shared backends have in common: counts that come back from ``add``."""

    shared = True

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock().timestamp())

    # -- the backend's part -------------------------------------------------------

    def count(self, bucket: str, start: int, window: int) -> int:
        raise NotImplementedError

    def add(self, bucket: str, start: int, window: int, amount: int = 1) -> int:
        """Add ``amount`` to the window's count and return the new total."""
        raise NotImplementedError

    def add_below(self, bucket: str, start: int, window: int, limit: int) -> bool:
        """Add one unless the count is already ``limit``; whether it was added."""
        raise NotImplementedError

    # -- the protocol -------------------------------------------------------------

    def peek(self, bucket: str, *, limit: int, window: int) -> int:
        now = self._now()
        start = window_start(now, window)
        if self.count(bucket, start, window) >= limit:
            return retry_after(start, window, now)
        return 0

    def consume(self, bucket: str, *, limit: int, window: int) -> int:
        now = self._now()
        start = window_start(now, window)
        if self.add_below(bucket, start, window, limit):
            return 0
        return retry_after(start, window, now)

    def hit(self, bucket: str, *, window: int) -> None:
        now = self._now()
        self.add(bucket, window_start(now, window), window)


def storage_bucket(bucket: str) -> str:
    """Bucket names fit the 255-character column; long ones (an email can be 320
    characters) and ones PostgreSQL text cannot hold (NUL) become a digest, which
    still names exactly one bucket."""
    if len(bucket) <= 200 and "\x00" not in bucket:
        return bucket
    digest = hashlib.sha256(bucket.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{bucket.partition(':')[0][:40]}:sha256:{digest}"


class DatabaseRateLimiter(SharedRateLimiter):
    """Counters in ``rate_limit_counters``: one row per ``(bucket, window_start)``.

    Each operation is one statement in one short transaction: an upsert
    (``INSERT … ON CONFLICT DO UPDATE … RETURNING``) that is atomic on PostgreSQL
    and SQLite alike, so simultaneous requests on many instances never lose a
    count, and ``consume`` can never go past the limit. Rows whose window has
    ended are deleted at most once per ``cleanup_interval`` seconds per process.
    """

    def __init__(self, db: Database, clock: Clock, *, cleanup_interval: int = 300) -> None:
        super().__init__(clock)
        self._db = db
        self._cleanup_interval = cleanup_interval
        self._next_cleanup = 0
        self._cleanup_lock = threading.Lock()

    def count(self, bucket: str, start: int, window: int) -> int:
        table = rate_limit_counters
        with self._db.read() as conn:
            hits = conn.execute(
                select(table.c.hits).where(
                    table.c.bucket == storage_bucket(bucket), table.c.window_start == start
                )
            ).scalar_one_or_none()
        return int(hits or 0)

    def _upsert(self, bucket: str, start: int, window: int, amount: int, limit: int | None) -> Any:
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
            where=(table.c.hits < limit) if limit is not None else None,
        ).returning(table.c.hits)
        with self._db.write() as conn:
            hits = conn.execute(statement).scalar_one_or_none()
        self._maybe_clean_up()
        return hits

    def add(self, bucket: str, start: int, window: int, amount: int = 1) -> int:
        return int(self._upsert(bucket, start, window, amount, None))

    def add_below(self, bucket: str, start: int, window: int, limit: int) -> bool:
        # No row comes back when the conflicting row is already at the limit.
        return self._upsert(bucket, start, window, 1, limit) is not None

    def _maybe_clean_up(self) -> None:
        now = self._now()
        with self._cleanup_lock:
            if now < self._next_cleanup:
                return
            self._next_cleanup = now + self._cleanup_interval
        self.clean_up(now)

    def clean_up(self, now: int | None = None) -> int:
        """Delete counters whose window has ended; best effort, never raises."""
        now = self._now() if now is None else now
        try:
            with self._db.write() as conn:
                return int(
                    conn.execute(
                        delete(rate_limit_counters).where(rate_limit_counters.c.expires_at <= now)
                    ).rowcount
                )
        except SQLAlchemyError as exc:
            logger.warning("rate-limit counter cleanup skipped: %s", type(exc).__name__)
            return 0


_REDIS_ADD = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if total == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return total
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
    after its window ends. Increments run as Lua scripts, so each is atomic.

    When Redis does not answer (down, or slower than ``socket_timeout``), each
    call falls back to a per-process :class:`MemoryRateLimiter` and logs a warning
    (at most once a minute): limits keep working per instance and requests do not
    fail because of the limiter.
    """

    def __init__(self, client: Any, clock: Clock, *, namespace: str = "paradarum:rl:") -> None:
        super().__init__(clock)
        self._client = client
        self._namespace = namespace
        self._add = client.register_script(_REDIS_ADD)
        self._add_below = client.register_script(_REDIS_ADD_BELOW)
        self._fallback = MemoryRateLimiter(clock)
        self._last_warning = 0.0

    @classmethod
    def from_url(cls, url: str, clock: Clock, **kwargs: Any) -> RedisRateLimiter:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        return cls(client, clock, **kwargs)

    def _key(self, bucket: str, start: int) -> str:
        return f"{self._namespace}{bucket}:{start}"

    def _ttl(self, start: int, window: int) -> int:
        return retry_after(start, window, self._now()) + 60

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 60:
            self._last_warning = now
            logger.warning(
                "Redis rate limiter unavailable, counting per process: %s", type(exc).__name__
            )

    def count(self, bucket: str, start: int, window: int) -> int:
        import redis

        try:
            value = self._client.get(self._key(bucket, start))
        except redis.RedisError as exc:
            self._unavailable(exc)
            return self._fallback.current(bucket, window=window)
        return int(value or 0)

    def add(self, bucket: str, start: int, window: int, amount: int = 1) -> int:
        import redis

        try:
            return int(
                self._add(keys=[self._key(bucket, start)], args=[amount, self._ttl(start, window)])
            )
        except redis.RedisError as exc:
            self._unavailable(exc)
            for _ in range(amount):
                self._fallback.hit(bucket, window=window)
            return self._fallback.current(bucket, window=window)

    def add_below(self, bucket: str, start: int, window: int, limit: int) -> bool:
        import redis

        try:
            return bool(
                self._add_below(
                    keys=[self._key(bucket, start)], args=[limit, self._ttl(start, window)]
                )
            )
        except redis.RedisError as exc:
            self._unavailable(exc)
            return self._fallback.consume(bucket, limit=limit, window=window) == 0

    def close(self) -> None:
        self._client.close()


class FailureMirror:
    """The hot-path view of a shared limiter, for failed authentications.

    ``get_principal`` peeks the caller's failure bucket on *every* request. Asking
    PostgreSQL or Redis each time would add a round trip to every successful
    request, for the sake of the rare caller that is failing. So:

    * ``peek`` answers from this process's memory only: a mirror of the bucket's
      count in the current window. A caller that never failed costs a dict lookup.
    * ``hit`` (a failure) adds one to the mirror at once, then sends the increment
      to the shared store from a background thread, and sets the mirror to the
      cluster-wide total that comes back. Increments for one bucket that arrive
      while one is in flight are coalesced into the next, so a flood of failures
      makes a bounded number of writes and never blocks the event loop.

    What this gives up, on purpose: an instance learns of failures made on other
    instances at its own next failure from that address, not before. So across N
    processes an address gets at most about ``limit + N`` failed attempts per
    window (instead of ``limit``), and a caller blocked elsewhere whose
    credentials are good is still served here. The limit exists to stop guessing
    and flooding with bad credentials; both stay bounded, and a request with good
    credentials never waits for the shared store.
    """

    shared = True

    def __init__(self, store: SharedRateLimiter, clock: Clock, *, max_buckets: int = 100_000):
        self._store = store
        self._clock = clock
        self._mirror = MemoryRateLimiter(clock, max_buckets=max_buckets)
        self._pending: dict[tuple[str, int, int], int] = {}
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._closed = False

    def peek(self, bucket: str, *, limit: int, window: int) -> int:
        return self._mirror.peek(bucket, limit=limit, window=window)

    def consume(self, bucket: str, *, limit: int, window: int) -> int:
        return self._store.consume(bucket, limit=limit, window=window)

    def hit(self, bucket: str, *, window: int) -> None:
        self._mirror.hit(bucket, window=window)
        start = window_start(int(self._clock().timestamp()), window)
        with self._cond:
            if self._closed:
                return
            key = (bucket, start, window)
            self._pending[key] = self._pending.get(key, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="paradarum-failure-mirror", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, {}
                self._busy = True
            for (bucket, start, window), amount in batch.items():
                try:
                    total = self._store.add(bucket, start, window, amount)
                except Exception as exc:  # the local count stands; the store catches up
                    logger.warning("shared failure count skipped: %s", type(exc).__name__)
                    continue
                self._mirror.raise_to(bucket, start=start, count=total)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every failure so far has reached the shared store (tests)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
