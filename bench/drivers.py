"""The PostgreSQL driver for the hot path, chosen by measurement: the client CPU
one indexed single-row read costs, on one event loop, for psycopg 3 (as it is,
with a server-side prepared statement, with binary results) and asyncpg (which
prepares and caches every statement), each through its own asyncio pool; and the
two ways a hot read can go: today's (asyncpg on the process's own bounded pool,
``db/hotpool.py``) and the one-pool alternative (a prepared psycopg statement on a
connection of the general engine's pool, on a thread), docs/performance.md.

Run alone (``python bench/drivers.py``; a local PostgreSQL, or
``PARADARUM_DATABASE_URL``): the figures are CPU time of this process per read,
interleaved ABBA rounds, medians. The database's own work is not counted: it is
the same for every driver.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import PG_ADMIN_URL, temporary_postgres_database  # noqa: E402

SETUP = (
    "CREATE TABLE t (id bigint PRIMARY KEY, key_hash text UNIQUE NOT NULL, "
    "name text NOT NULL, created_at timestamptz NOT NULL, revoked_at timestamptz)",
    "INSERT INTO t SELECT i, md5(i::text), 'account ' || i, now(), NULL "
    "FROM generate_series(1, 10000) AS i",
    "ANALYZE t",
)
QUERY = "SELECT id, name, created_at, revoked_at FROM t WHERE key_hash = {}"
READS = 3000
ROUNDS = 6

Read = Callable[[str], Awaitable[Any]]


async def psycopg_reader(url: str, *, prepare: bool | None, binary: bool) -> tuple[Read, Any]:
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(url, kwargs={"autocommit": True}, min_size=1, max_size=4, open=False)
    await pool.open(wait=True)
    sql = QUERY.format("%s")

    async def read(value: str) -> Any:
        async with pool.connection() as conn:
            cursor = conn.cursor(binary=binary)
            await cursor.execute(sql, (value,), prepare=prepare)
            return await cursor.fetchone()

    return read, pool.close


async def psycopg_direct(url: str) -> tuple[Read, Any]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    sql = QUERY.format("%s")
    cursor = conn.cursor(binary=True)

    async def read(value: str) -> Any:
        await cursor.execute(sql, (value,), prepare=True)
        return await cursor.fetchone()

    return read, conn.close


async def asyncpg_direct(url: str) -> tuple[Read, Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    statement = await conn.prepare(QUERY.format("$1"))

    async def read(value: str) -> Any:
        return await statement.fetchrow(value)

    return read, conn.close


async def asyncpg_reader(url: str) -> tuple[Read, Any]:
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    sql = QUERY.format("$1")

    async def read(value: str) -> Any:
        async with pool.acquire() as conn:
            return await conn.fetchrow(sql, value)

    return read, pool.close


async def hot_pool_reader(url: str) -> tuple[Read, Any]:
    """Today's hot path: asyncpg on the process's own bounded pool (db/hotpool.py)."""
    from paradarum.db.hotpool import HotPool

    pool = HotPool(url, size=4, timeout=1.0)
    sql = QUERY.format("$1")

    async def read(value: str) -> Any:
        return await pool.fetchrow(sql, (value,))

    return read, pool.close


async def engine_pool_reader(url: str, *, pre_ping: bool = False) -> tuple[Read, Any]:
    """The one-pool alternative: the general (psycopg) engine's pool, a prepared
    statement, on one of the database's threads (a blocking driver must not run on
    the event loop). The thread's CPU is this process's too, so it is counted.
    ``pre_ping``: as the server's engine is made (a check of each connection taken
    from the pool: a second round trip)."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine

    engine = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1),
        pool_size=4,
        pool_pre_ping=pre_ping,
    )
    threads = ThreadPoolExecutor(max_workers=4)
    sql = QUERY.format("%s")

    def blocking(value: str) -> Any:
        record = engine.pool.connect()
        try:
            connection: Any = record.driver_connection
            return connection.execute(sql, (value,), prepare=True).fetchone()
        finally:
            record.close()

    async def read(value: str) -> Any:
        return await asyncio.get_running_loop().run_in_executor(threads, blocking, value)

    async def close() -> None:
        threads.shutdown()
        engine.dispose()

    return read, close


async def cpu_per_read(read: Read) -> float:
    values = [f"{i:x}" for i in range(READS)]  # misses and hits alike cost one round trip
    started = time.process_time()
    for value in values:
        await read(value)
    return (time.process_time() - started) / READS * 1e6


async def main(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SETUP:
            conn.execute(statement)
    readers: dict[str, tuple[Read, Any]] = {
        "psycopg": await psycopg_reader(url, prepare=False, binary=False),
        "psycopg, prepared": await psycopg_reader(url, prepare=True, binary=False),
        "psycopg, prepared, binary": await psycopg_reader(url, prepare=True, binary=True),
        "asyncpg": await asyncpg_reader(url),
        "psycopg, one connection": await psycopg_direct(url),
        "asyncpg, one connection": await asyncpg_direct(url),
        "asyncpg, HotPool (today)": await hot_pool_reader(url),
        "psycopg, engine pool, thread": await engine_pool_reader(url),
        "  the same, with pre-ping": await engine_pool_reader(url, pre_ping=True),
    }
    figures: dict[str, list[float]] = {name: [] for name in readers}
    for read, _ in readers.values():
        for value in ("1", "2", "3"):
            await read(value)
    for number in range(ROUNDS):
        order = list(readers) if number % 2 == 0 else list(reversed(readers))
        for name in order:
            figures[name].append(await cpu_per_read(readers[name][0]))
    for _, close in readers.values():
        await close()
    base = statistics.median(figures["psycopg"])
    loop = type(asyncio.get_running_loop()).__module__
    print(f"client CPU per read (µs), median of {ROUNDS} rounds of {READS}, loop {loop}:")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"  {name:30} {median:6.1f}  ({median / base:.2f} × psycopg)")


if __name__ == "__main__":
    given = os.environ.get("PARADARUM_DATABASE_URL")
    run: Any = asyncio.run
    if "--uvloop" in sys.argv:
        import uvloop

        run = uvloop.run
    if given:
        run(main(given.replace("+psycopg", "")))
    else:
        with temporary_postgres_database(PG_ADMIN_URL, prefix="paradarum_drivers") as url:
            run(main(url))
