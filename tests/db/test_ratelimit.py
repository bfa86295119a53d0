"""The rate-limit backends, each against the real store, with a frozen clock."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from paradarum import ratelimit
from paradarum.background import Background
from paradarum.clock import FrozenClock
from paradarum.db.engine import Database
from paradarum.db.migrate import upgrade
from paradarum.db.tables import rate_limit_counters
from paradarum.ratelimit import (
    DatabaseRateLimiter,
    FailureMirror,
    Limit,
    MemoryRateLimiter,
    RedisRateLimiter,
    SharedRateLimiter,
    address_bucket,
    storage_bucket,
)
from tests.conftest import _require_postgres
from tests.support import REDIS_URL, run, temporary_postgres_database

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
                db.close()
        else:
            db = Database(f"sqlite:///{tmp_path / 'limits.db'}")
            upgrade(db)
            yield DatabaseRateLimiter(db, clock)
            db.close()
    else:
        prefix = request.getfixturevalue("redis_prefix")
        # These tests are about counting, not about a slow Redis (the breaker has
        # tests of its own): on a loaded machine 0.25 s to connect can pass, and a
        # limiter that falls back to counting in memory is not the one under test.
        request.getfixturevalue("monkeypatch").setattr(ratelimit, "REDIS_TIMEOUT", 5.0)
        # A client per event loop: each test step below runs on a loop of its own.
        yield RedisPerLoop(clock, prefix)


class RedisPerLoop:
    """A Redis limiter whose client is made for the calling event loop (an asyncio
    Redis client belongs to the loop that first used it)."""

    shared = True

    def __init__(self, clock: FrozenClock, prefix: str) -> None:
        self.clock = clock
        self.prefix = prefix

    def __getattr__(self, name: str):
        async def call(*args, **kwargs):
            limiter = RedisRateLimiter.from_url(REDIS_URL, self.clock, namespace=self.prefix)
            try:
                return await getattr(limiter, name)(*args, **kwargs)
            finally:
                await limiter.close()

        return call


def consume(limiter, bucket: str, limit: int, window: int) -> int:
    return run(limiter.consume(Limit(bucket, limit, window)))


def hit(limiter, bucket: str, limit: int, window: int) -> None:
    run(limiter.hit([Limit(bucket, limit, window)]))


def wait(limiter, bucket: str, limit: int, window: int) -> int:
    return run(limiter.retry_after([Limit(bucket, limit, window)]))


def test_consume_allows_the_limit_then_refuses_with_seconds_until_the_window_ends(limiter, clock):
    clock.advance(15)
    for _ in range(3):
        assert consume(limiter, "k", 3, 60) == 0
    assert consume(limiter, "k", 3, 60) == 45
    assert wait(limiter, "k", 3, 60) == 45
    clock.advance(44.9)
    assert consume(limiter, "k", 3, 60) == 1  # never 0 while refused
    clock.advance(0.1)  # the next window
    assert wait(limiter, "k", 3, 60) == 0
    assert consume(limiter, "k", 3, 60) == 0


def test_hit_counts_unconditionally_and_the_wait_sees_it(limiter, clock):
    for _ in range(5):
        hit(limiter, "fails", 5, 900)
    assert wait(limiter, "fails", 6, 900) == 0
    assert wait(limiter, "fails", 5, 900) == 900
    clock.advance(899)
    assert wait(limiter, "fails", 5, 900) == 1
    clock.advance(1)
    assert wait(limiter, "fails", 5, 900) == 0


def test_buckets_are_independent(limiter):
    hit(limiter, "a", 1, 60)
    assert wait(limiter, "a", 1, 60) > 0
    assert wait(limiter, "b", 1, 60) == 0
    assert consume(limiter, "b", 1, 60) == 0


def test_one_bucket_counts_each_window_on_its_own(limiter, clock):
    """5 per minute and 10 per hour on one bucket: tiers of a backoff."""
    minute, hour = Limit("tiers", 5, 60), Limit("tiers", 10, 3600)
    for _ in range(5):
        run(limiter.hit([minute, hour]))
    assert run(limiter.waits([minute, hour])) == [60, 0]
    clock.advance(60)
    for _ in range(5):
        run(limiter.hit([minute, hour]))
    assert run(limiter.waits([minute, hour])) == [60, 3600 - 60]


def test_a_320_character_email_makes_a_valid_bucket(limiter):
    bucket = "login-email:" + "a" * 300 + "@example.com"
    other = "login-email:" + "a" * 299 + "b@example.com"
    for _ in range(2):
        hit(limiter, bucket, 2, 900)
    assert wait(limiter, bucket, 2, 900) > 0
    assert wait(limiter, other, 2, 900) == 0
    assert len(storage_bucket(bucket)) <= 255


def test_consume_never_passes_the_limit_under_concurrency(limiter):
    async def race() -> list[int]:
        return list(
            await asyncio.gather(*(limiter.consume(Limit("race", 7, 3600)) for _ in range(20)))
        )

    results = run(race())
    assert results.count(0) == 7
    assert all(retry > 0 for retry in results if retry)


def test_the_memory_limiter_never_forgets_a_blocking_bucket_when_full(clock):
    limiter = MemoryRateLimiter(clock, max_buckets=100)
    blocked = Limit("auth-fail:198.51.100.1", 3, 60)
    for _ in range(3):
        run(limiter.hit([blocked]))
    assert limiter.blocked(blocked) > 0
    # A flood of fresh buckets (say, one per IPv6 /64) fills the limiter many times over.
    for i in range(1000):
        run(limiter.hit([Limit(f"auth-fail:2001:db8:{i:x}::/64", 3, 60)]))
    assert limiter.blocked(blocked) > 0


def test_database_counters_of_ended_windows_are_cleaned_up(tmp_path, clock):
    db = Database(f"sqlite:///{tmp_path / 'limits.db'}")
    upgrade(db)
    try:
        limiter = DatabaseRateLimiter(db, clock, cleanup_interval=10**9)
        hit(limiter, "old", 1, 60)
        clock.advance(120)
        hit(limiter, "new", 1, 60)

        def rows() -> int:
            with db.reading() as conn:
                return conn.execute(select(func.count()).select_from(rate_limit_counters)).scalar()

        assert rows() == 2
        assert run(limiter.clean_up()) == 1
        assert rows() == 1
        assert wait(limiter, "new", 1, 60) > 0
    finally:
        db.close()


def test_redis_that_does_not_answer_falls_back_to_process_counts_at_once(clock, caplog):
    async def scenario() -> float:
        limiter = RedisRateLimiter.from_url("redis://127.0.0.1:9/0", clock)  # discard port
        started = time.monotonic()
        try:
            assert await limiter.consume(Limit("k", 1, 60)) == 0
            assert await limiter.consume(Limit("k", 1, 60)) > 0
            await limiter.hit([Limit("f", 1, 60)])
            assert await limiter.retry_after([Limit("f", 1, 60)]) > 0
        finally:
            await limiter.close()
        return time.monotonic() - started

    with caplog.at_level(logging.WARNING, logger="paradarum.ratelimit"):
        elapsed = run(scenario())
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1  # the breaker opened once; later calls did not try again
    assert elapsed < 2  # one short timeout at most, not one per call


class CountingStore(SharedRateLimiter):
    """A shared store in memory that counts how often it is asked."""

    def __init__(self, clock, *, delay: float = 0):
        super().__init__(clock)
        self.totals: dict[tuple[str, int], int] = {}
        self.calls = 0
        self.delay = delay

    async def counts(self, keys):
        self.calls += 1
        return [self.totals.get((bucket, start), 0) for bucket, start, _ in keys]

    async def add(self, items):
        self.calls += 1
        await asyncio.sleep(self.delay)
        totals = []
        for bucket, start, _, amount in items:
            self.totals[(bucket, start)] = self.totals.get((bucket, start), 0) + amount
            totals.append(self.totals[(bucket, start)])
        return totals

    async def add_below(self, key, limit):
        raise AssertionError("not used by the mirror")


LIMIT = Limit("auth-fail:10.0.0.1", 3, 60)
STORED = (LIMIT.key, int(START.timestamp()))


def mirror_of(store, clock) -> FailureMirror:
    background = Background()
    return FailureMirror(store, clock, spawn=lambda work: background.spawn(work, name="t"))


def test_failure_mirror_answers_without_asking_the_store(clock):
    async def scenario(store) -> None:
        mirror = mirror_of(store, clock)
        for _ in range(1000):
            assert mirror.blocked(LIMIT) == 0
        assert store.calls == 0
        for _ in range(3):
            mirror.record(LIMIT)
        # Counted locally at once: the limit does not wait for the store.
        assert mirror.blocked(LIMIT) == 60
        while not mirror.settled(0):
            await asyncio.sleep(0.01)

    store = CountingStore(clock)
    run(scenario(store))
    assert store.totals[STORED] == 3


def test_failure_mirror_learns_other_instances_failures_at_its_next_failure(clock):
    async def scenario() -> None:
        store = CountingStore(clock)
        first, second = mirror_of(store, clock), mirror_of(store, clock)
        for _ in range(5):
            first.record(Limit(LIMIT.bucket, 5, 60))
        while not first.settled(0):
            await asyncio.sleep(0.01)
        five = Limit(LIMIT.bucket, 5, 60)
        assert second.blocked(five) == 0
        second.record(five)
        while not second.settled(0):
            await asyncio.sleep(0.01)
        assert second.blocked(five) == 60
        clock.advance(60)
        assert second.blocked(five) == 0

    run(scenario())


def test_failure_mirror_coalesces_a_flood_into_few_writes(clock):
    store = CountingStore(clock, delay=0.2)

    async def scenario() -> None:
        mirror = mirror_of(store, clock)
        for _ in range(500):
            mirror.record(LIMIT)
        while not mirror.settled(0):
            await asyncio.sleep(0.01)

    run(scenario())
    assert store.totals[STORED] == 500
    assert store.calls <= 3


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
