"""Fixed-window rate limits behind one small interface.

``MemoryRateLimiter`` counts per process (the embedded SQLite default). Backends
shared by many instances implement the same protocol.
"""

from __future__ import annotations

import threading
from typing import Protocol

from paradarum.clock import Clock


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


class MemoryRateLimiter:
    def __init__(self, clock: Clock, *, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}
        self._max_buckets = max_buckets

    def _now(self) -> int:
        return int(self._clock().timestamp())

    def _current(self, bucket: str, window: int, now: int) -> tuple[int, int]:
        start = now - now % window
        stored = self._counts.get(bucket)
        if stored is None or stored[0] != start:
            return start, 0
        return stored

    def peek(self, bucket: str, *, limit: int, window: int) -> int:
        now = self._now()
        with self._lock:
            start, count = self._current(bucket, window, now)
        return max(1, start + window - now) if count >= limit else 0

    def consume(self, bucket: str, *, limit: int, window: int) -> int:
        now = self._now()
        with self._lock:
            start, count = self._current(bucket, window, now)
            if count >= limit:
                return max(1, start + window - now)
            self._store(bucket, start, count + 1, now)
        return 0

    def hit(self, bucket: str, *, window: int) -> None:
        now = self._now()
        with self._lock:
            start, count = self._current(bucket, window, now)
            self._store(bucket, start, count + 1, now)

    def _store(self, bucket: str, start: int, count: int, now: int) -> None:
        if bucket not in self._counts and len(self._counts) >= self._max_buckets:
            # Bound memory under a flood of distinct buckets: drop stale windows.
            self._counts = {k: v for k, v in self._counts.items() if v[0] >= now - 3600}
        self._counts[bucket] = (start, count)
