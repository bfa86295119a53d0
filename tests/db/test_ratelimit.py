"""The rate-limit backends, each against the real store, with a frozen clock."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from paradarum.clock import FrozenClock
from paradarum.db.engine import Database
from paradarum.db.migrate import upgrade
from paradarum.db.tables import rate_limit_counters
from paradarum.ratelimit import (
    DatabaseRateLimiter,
    FailureMirror,
    MemoryRateLimiter,
    RedisRateLimiter,
    SharedRateLimiter,
    address_bucket,
    storage_bucket,
)
from tests.conftest import _require_postgres
from tests.support import REDIS_URL, temporary_postgres_database

# 09:00:00 UTC: a whole number of minutes, quarter-hours and hours since the epoch.
START = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture(params=["memory", "database-sqlite", "database-postgresql", "redis"])
def limiter(request, clock, tmp_path):
    kind = request.param
    if kind == "memory":
        yield MemoryRateLimiter(clock)
    elif kind.startswith("database"):
        if kind.endswith("postgresql"):
            _require_postgres()
            with temporary_postgres_database() as url:
                db = Database(url.replace("postgresql://", "postgresql+psycopg://"))
                upgrade(db)
                yield DatabaseRateLimiter(db, clock)
                db.dispose()
        else:
            db = Database(f"sqlite:///{tmp_path / 'limits.db'}")
            upgrade(db)
            yield DatabaseRateLimiter(db, clock)
            db.dispose()
    else:
        prefix = request.getfixturevalue("redis_prefix")
        redis_limiter = RedisRateLimiter.from_url(REDIS_URL, clock, namespace=prefix)
        yield redis_limiter
        redis_limiter.close()


def test_consume_allows_the_limit_then_refuses_with_seconds_until_the_window_ends(limiter, clock):
    clock.advance(15)
    for _ in range(3):
        assert limiter.consume("k", limit=3, window=60) == 0
    assert limiter.consume("k", limit=3, window=60) == 45
    assert limiter.peek("k", limit=3, window=60) == 45
    clock.advance(44.9)
    assert limiter.consume("k", limit=3, window=60) == 1  # never 0 while refused
    clock.advance(0.1)  # the next window
    assert limiter.peek("k", limit=3, window=60) == 0
    assert limiter.consume("k", limit=3, window=60) == 0


def test_hit_counts_unconditionally_and_peek_sees_it(limiter, clock):
    for _ in range(5):
        limiter.hit("fails", window=900)
    assert limiter.peek("fails", limit=6, window=900) == 0
    assert limiter.peek("fails", limit=5, window=900) == 900
    clock.advance(899)
    assert limiter.peek("fails", limit=5, window=900) == 1
    clock.advance(1)
    assert limiter.peek("fails", limit=5, window=900) == 0


def test_buckets_are_independent(limiter):
    limiter.hit("a", window=60)
    assert limiter.peek("a", limit=1, window=60) > 0
    assert limiter.peek("b", limit=1, window=60) == 0
    assert limiter.consume("b", limit=1, window=60) == 0


def test_a_320_character_email_makes_a_valid_bucket(limiter):
    bucket = "login-email:" + "a" * 300 + "@example.com"
    other = "login-email:" + "a" * 299 + "b@example.com"
    for _ in range(2):
        limiter.hit(bucket, window=900)
    assert limiter.peek(bucket, limit=2, window=900) > 0
    assert limiter.peek(other, limit=2, window=900) == 0
    assert len(storage_bucket(bucket)) <= 255


def test_consume_never_passes_the_limit_under_concurrency(limiter):
    results: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def worker():
        barrier.wait()
        retry = limiter.consume("race", limit=7, window=3600)
        with lock:
            results.append(retry)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(0) == 7
    assert all(retry > 0 for retry in results if retry)


def test_database_counters_of_ended_windows_are_cleaned_up(tmp_path, clock):
    db = Database(f"sqlite:///{tmp_path / 'limits.db'}")
    upgrade(db)
    try:
        limiter = DatabaseRateLimiter(db, clock, cleanup_interval=10**9)
        limiter.hit("old", window=60)
        clock.advance(120)
        limiter.hit("new", window=60)

        def rows() -> int:
            with db.read() as conn:
                return conn.execute(select(func.count()).select_from(rate_limit_counters)).scalar()

        assert rows() == 2
        assert limiter.clean_up() == 1
        assert rows() == 1
        assert limiter.peek("new", limit=1, window=60) > 0
    finally:
        db.dispose()


def test_redis_that_does_not_answer_falls_back_to_process_counts(clock, caplog):
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:9/0", clock)  # discard port
    with caplog.at_level(logging.WARNING, logger="paradarum.ratelimit"):
        assert limiter.consume("k", limit=1, window=60) == 0
        assert limiter.consume("k", limit=1, window=60) > 0
        limiter.hit("f", window=60)
        assert limiter.peek("f", limit=1, window=60) > 0
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1  # said once, not once per request
    limiter.close()


class CountingStore(SharedRateLimiter):
    """A shared store in memory that counts how often it is asked."""

    def __init__(self, clock):
        super().__init__(clock)
        self.totals: dict[tuple[str, int], int] = {}
        self.calls = 0
        self.lock = threading.Lock()

    def count(self, bucket, start, window):
        self.calls += 1
        return self.totals.get((bucket, start), 0)

    def add(self, bucket, start, window, amount=1):
        with self.lock:
            self.calls += 1
            total = self.totals.get((bucket, start), 0) + amount
            self.totals[(bucket, start)] = total
            return total

    def add_below(self, bucket, start, window, limit):
        raise AssertionError("not used by the mirror")


def test_failure_mirror_peeks_without_asking_the_store(clock):
    store = CountingStore(clock)
    mirror = FailureMirror(store, clock)
    try:
        for _ in range(1000):
            assert mirror.peek("auth-fail:10.0.0.1", limit=3, window=60) == 0
        assert store.calls == 0
        for _ in range(3):
            mirror.hit("auth-fail:10.0.0.1", window=60)
        # Counted locally at once: the limit does not wait for the store.
        assert mirror.peek("auth-fail:10.0.0.1", limit=3, window=60) == 60
        assert mirror.flush()
        assert store.totals[("auth-fail:10.0.0.1", int(START.timestamp()))] == 3
    finally:
        mirror.close()


def test_failure_mirror_learns_other_instances_failures_at_its_next_failure(clock):
    store = CountingStore(clock)
    first, second = FailureMirror(store, clock), FailureMirror(store, clock)
    try:
        for _ in range(5):
            first.hit("auth-fail:10.0.0.1", window=60)
        assert first.flush()
        assert second.peek("auth-fail:10.0.0.1", limit=5, window=60) == 0
        second.hit("auth-fail:10.0.0.1", window=60)
        assert second.flush()
        assert second.peek("auth-fail:10.0.0.1", limit=5, window=60) == 60
        clock.advance(60)
        assert second.peek("auth-fail:10.0.0.1", limit=5, window=60) == 0
    finally:
        first.close()
        second.close()


def test_failure_mirror_coalesces_a_flood_into_few_writes(clock):
    store = CountingStore(clock)
    gate = threading.Event()
    original_add = store.add

    def slow_add(*args, **kwargs):
        gate.wait(5)
        return original_add(*args, **kwargs)

    store.add = slow_add
    mirror = FailureMirror(store, clock)
    try:
        for _ in range(500):
            mirror.hit("auth-fail:10.0.0.9", window=60)
        gate.set()
        assert mirror.flush()
        assert store.totals[("auth-fail:10.0.0.9", int(START.timestamp()))] == 500
        assert store.calls <= 3
    finally:
        mirror.close()


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        (None, "-"),
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::2", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_64_is_one_bucket(address, bucket):
    assert address_bucket(address) == bucket
