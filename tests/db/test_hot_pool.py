"""PostgreSQL's hot-read connections (``db/hotpool.py``), on a real server: each hot
statement is a named prepared statement of its connection (parsed once, not per
read), and the pool never holds more connections than its bound."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from paradarum.db.hotpool import HotPool
from tests.conftest import _require_postgres
from tests.support import temporary_postgres_database

READ = "SELECT $1::bigint + 1"
PREPARED = "SELECT name FROM pg_prepared_statements WHERE statement = $1"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    _require_postgres()
    with temporary_postgres_database() as url:
        yield url


def test_a_hot_statement_is_prepared_once_by_name_on_its_connection(postgres_url):
    async def scenario() -> tuple[list[tuple[int, ...] | None], tuple[str, ...] | None, int]:
        pool = HotPool(postgres_url, size=4, timeout=5.0)
        try:
            answers = [await pool.fetchrow(READ, (number,)) for number in range(3)]
            # One read at a time: every read, this one too, went to one connection,
            # whose own prepared statements pg_prepared_statements lists.
            named = await pool.fetchrow(PREPARED, (READ,))
            return answers, named, pool.open_connections
        finally:
            await pool.close()

    answers, named, connections = asyncio.run(scenario())
    assert answers == [(1,), (2,), (3,)]
    # An unnamed statement would be parsed again on every read.
    assert named is not None and named[0].startswith("paradarum_hot_")
    assert connections == 1


def test_simultaneous_reads_share_at_most_size_connections(postgres_url):
    async def scenario() -> tuple[list[tuple[int, ...] | None], int]:
        pool = HotPool(postgres_url, size=2, timeout=30.0)
        most = 0

        async def read(number: int) -> tuple[int, ...] | None:
            nonlocal most
            answer = await pool.fetchrow("SELECT $1::bigint FROM pg_sleep(0.02)", (number,))
            most = max(most, pool.open_connections)
            return answer

        try:
            answers = await asyncio.gather(*(read(number) for number in range(12)))
            return list(answers), most
        finally:
            await pool.close()

    answers, most = asyncio.run(scenario())
    assert answers == [(number,) for number in range(12)]
    assert most == 2
