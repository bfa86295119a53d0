"""The PostgreSQL driver for the hot path, chosen by measurement: the client CPU
one indexed single-row read costs, on one event loop, for psycopg 3 (as it is,
with a server-side prepared statement, with binary results) and asyncpg (which
prepares and caches every statement), each through its own asyncio pool.

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
        print(f"  {name:28} {median:6.1f}  ({median / base:.2f} × psycopg)")


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
