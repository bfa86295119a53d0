"""PostgreSQL's hot-read connections (``db/hotpool.py``), on a real server: each hot
statement is a named prepared statement of its connection (parsed once, not per
read), and the pool never holds more connections than its bound. Reads that arrive
together are sent as one statement (``Batcher``): each still answered as alone, and
never by a statement that started before it arrived."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from paradarum import keys
from paradarum.db import queries
from paradarum.db.hotpool import Batcher, HotPool, HotPoolTimeout
from paradarum.db.migrate import upgrade
from paradarum.db.tables import api_keys
from paradarum.runtime import Runtime, build_runtime
from paradarum.services.apikeys import key_settings
from paradarum.services.context import ClientInfo, Principal
from tests.conftest import _require_postgres, make_settings
from tests.support import temporary_postgres_database

READ = "SELECT $1::bigint + 1"
PREPARED = "SELECT name FROM pg_prepared_statements WHERE statement = $1"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    _require_postgres()
    with temporary_postgres_database() as url:
        yield url


def test_a_hot_statement_is_prepared_once_by_name_on_its_connection(postgres_url):
    async def scenario() -> tuple[list[list[tuple[int, ...]]], list[tuple[str, ...]], int]:
        pool = HotPool(postgres_url, size=4, timeout=5.0)
        try:
            answers = [await pool.fetch(READ, (number,)) for number in range(3)]
            # One read at a time: every read, this one too, went to one connection,
            # whose own prepared statements pg_prepared_statements lists.
            named = await pool.fetch(PREPARED, (READ,))
            return answers, named, pool.open_connections
        finally:
            await pool.close()

    answers, named, connections = asyncio.run(scenario())
    assert answers == [[(1,)], [(2,)], [(3,)]]
    # An unnamed statement would be parsed again on every read.
    assert len(named) == 1 and named[0][0].startswith("paradarum_hot_")
    assert connections == 1


def test_simultaneous_reads_share_at_most_size_connections(postgres_url):
    async def scenario() -> tuple[list[list[tuple[int, ...]]], int]:
        pool = HotPool(postgres_url, size=2, timeout=30.0)
        most = 0

        async def read(number: int) -> list[tuple[int, ...]]:
            nonlocal most
            answer = await pool.fetch("SELECT $1::bigint FROM pg_sleep(0.02)", (number,))
            most = max(most, pool.open_connections)
            return answer

        try:
            answers = await asyncio.gather(*(read(number) for number in range(12)))
            return list(answers), most
        finally:
            await pool.close()

    answers, most = asyncio.run(scenario())
    assert answers == [[(number,)] for number in range(12)]
    assert most == 2


# -- reads sent together ------------------------------------------------------------


async def turns_until(condition: Any) -> None:
    """Let the loop run until ``condition()`` holds (a few turns at most)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


class Gated:
    """A statement runner that answers each read with its own values, once let go."""

    def __init__(self) -> None:
        self.statements: list[list[tuple[Any, ...]]] = []
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def run(self, reads: list[tuple[Any, ...]]) -> list[tuple[Any, ...] | None]:
        self.statements.append(list(reads))
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [read if read[0] >= 0 else None for read in reads]


def test_a_read_is_never_answered_by_a_statement_that_started_before_it():
    async def scenario() -> tuple[list[Any], list[list[tuple[Any, ...]]]]:
        runner = Gated()
        batcher = Batcher(runner.run, concurrency=1, timeout=30.0)
        first = asyncio.ensure_future(batcher.read((1,)))
        await turns_until(lambda: runner.statements)
        assert runner.statements == [[(1,)]]  # alone: sent at once
        # These arrive while that statement is under way (as a request would right
        # after a revocation was acknowledged): they wait for the next one.
        later = [asyncio.ensure_future(batcher.read((n,))) for n in (2, 3, -4)]
        await turns_until(lambda: len(batcher._waiting) == 3)
        runner.gate.set()
        answers = await asyncio.gather(first, *later)
        return answers, runner.statements

    answers, statements = asyncio.run(scenario())
    assert answers == [(1,), (2,), (3,), None]
    assert statements == [[(1,)], [(2,), (3,), (-4,)]]


def test_a_failed_statement_fails_its_reads_only_and_a_cancelled_read_is_skipped():
    async def scenario() -> tuple[list[Any], Any]:
        runner = Gated()
        batcher = Batcher(runner.run, concurrency=1, timeout=30.0)
        failing = [asyncio.ensure_future(batcher.read((n,))) for n in (1, 2)]
        await turns_until(lambda: runner.statements == [[(1,), (2,)]])
        runner.fail = ConnectionResetError("server closed the connection")
        runner.gate.set()
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        runner.fail = None
        runner.gate.clear()
        gone = asyncio.ensure_future(batcher.read((3,)))
        kept = asyncio.ensure_future(batcher.read((4,)))
        await turns_until(lambda: len(runner.statements) == 2)
        gone.cancel()  # its client went away
        runner.gate.set()
        return outcomes, await kept

    outcomes, kept = asyncio.run(scenario())
    assert [type(outcome) for outcome in outcomes] == [ConnectionResetError] * 2
    assert kept == (4,)


def test_at_most_concurrency_statements_are_under_way_each_taking_all_that_waits():
    async def scenario() -> tuple[list[list[tuple[Any, ...]]], list[int]]:
        runner = Gated()
        batcher = Batcher(runner.run, concurrency=2, timeout=30.0)
        reads = [asyncio.ensure_future(batcher.read((n,))) for n in range(10)]
        await turns_until(lambda: len(runner.statements) == 1)
        # Under way: one statement, for the ten. Five more reads: a second statement.
        reads += [asyncio.ensure_future(batcher.read((n,))) for n in range(10, 15)]
        await turns_until(lambda: len(runner.statements) == 2)
        # Two under way: three more wait for one of them to end.
        reads += [asyncio.ensure_future(batcher.read((n,))) for n in range(15, 18)]
        for _ in range(10):
            await asyncio.sleep(0)
        sent_while_busy = len(runner.statements)
        runner.gate.set()
        assert await asyncio.gather(*reads) == [(n,) for n in range(18)]
        return runner.statements, [sent_while_busy]

    statements, sent_while_busy = asyncio.run(scenario())
    assert sent_while_busy == [2]
    assert statements == [
        [(n,) for n in range(10)],
        [(n,) for n in range(10, 15)],
        [(n,) for n in range(15, 18)],
    ]


def test_a_read_not_sent_in_time_fails_and_the_one_under_way_is_still_answered():
    async def scenario() -> tuple[Any, Any, Any]:
        runner = Gated()
        batcher = Batcher(runner.run, concurrency=1, timeout=0.2)
        sent = asyncio.ensure_future(batcher.read((1,)))
        await turns_until(lambda: runner.statements)
        # The database is slow: the only statement allowed is under way.
        waiting = await asyncio.gather(batcher.read((2,)), return_exceptions=True)
        runner.gate.set()
        after = await batcher.read((3,))
        return await sent, waiting[0], after

    sent, waiting, after = asyncio.run(scenario())
    assert sent == (1,)
    assert isinstance(waiting, HotPoolTimeout)
    assert after == (3,)


def test_reads_one_after_another_are_each_sent_at_once():
    async def scenario() -> list[Any]:
        runner = Gated()
        runner.gate.set()
        batcher = Batcher(runner.run, concurrency=1, timeout=0.5)
        # Each read is made as soon as the one before is answered: the drain that
        # answered it has not finished yet, and must not be counted on to send it.
        return [await batcher.read((n,)) for n in range(20)]

    assert asyncio.run(scenario()) == [(n,) for n in range(20)]


CLIENT = ClientInfo(address="127.0.0.1", user_agent="tests")


async def _account_with_keys(
    runtime: Runtime,
) -> tuple[dict[str, str], dict[str, int], Principal]:
    """An account with a key that works, one that expires in an hour and one revoked."""
    email = f"batch-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(16)
    await runtime.accounts.signup(email=email, password=password, client=CLIENT, force=True)
    session = await runtime.accounts.login(email=email, password=password, client=CLIENT)
    owner = await runtime.authenticator.authenticate(session.token, CLIENT)
    now = runtime.clock()
    raw: dict[str, str] = {}
    ids: dict[str, int] = {}
    for name, expires in (
        ("live", None),
        ("expiring", now + timedelta(hours=1)),
        ("revoked", None),
    ):
        created = await runtime.apikeys.create(
            principal=owner,
            name=name,
            client=CLIENT,
            settings=key_settings(now=now, expires_at=expires),
        )
        raw[name], ids[name] = created.raw_key, created.info.id
    await runtime.apikeys.revoke(principal=owner, key_id=ids["revoked"], client=CLIENT)
    return raw, ids, owner


@pytest.fixture
def pg_runtime(postgres_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(tmp_path, postgres_url))
    upgrade(runtime.db)
    try:
        yield runtime
    finally:
        runtime.close()


def test_reads_sent_together_are_each_answered_as_alone_at_their_own_moment(pg_runtime):
    runtime = pg_runtime

    async def scenario() -> tuple[list[Any], dict[str, int], int, int]:
        await runtime.start()
        try:
            raw, ids, _ = await _account_with_keys(runtime)
            now = runtime.clock()
            after_expiry = now + timedelta(hours=2)
            asked = [
                (raw["live"], now),
                (raw["expiring"], now),
                (raw["expiring"], after_expiry),
                (raw["revoked"], now),
                ("pdm_" + secrets.token_urlsafe(21)[:28], now),  # nobody's
            ] * 8
            statements_before = runtime.db.hot_statements_sent
            rows = await asyncio.gather(
                *(
                    runtime.db.hot_read(queries.KEY_WITH_ACCOUNT, (keys.hash_key(key),), at=at)
                    for key, at in asked
                )
            )
            return rows, ids, len(asked), runtime.db.hot_statements_sent - statements_before
        finally:
            await runtime.stop()

    rows, ids, reads, statements = asyncio.run(scenario())
    # Forty reads at once went out in fewer statements than reads.
    assert statements < reads
    for n in range(0, reads, 5):
        live, expiring_now, expiring_later, revoked, nobody = rows[n : n + 5]
        assert live is not None and live[0] == ids["live"] and live[3] is True
        assert expiring_now is not None and expiring_now[0] == ids["expiring"]
        assert expiring_now[3] is True
        assert expiring_later is not None and expiring_later[3] is False
        assert revoked is not None and revoked[0] == ids["revoked"] and revoked[3] is False
        assert nobody is None
        # GET /api/account's part: the two keys not revoked are active now.
        assert live[12:][3] == 2


def test_a_revocation_is_seen_by_the_next_read_while_reads_keep_the_statements_busy(
    pg_runtime,
):
    runtime = pg_runtime

    async def scenario() -> list[bool]:
        await runtime.start()
        try:
            raw, _, owner = await _account_with_keys(runtime)
            stop = asyncio.Event()

            async def busy(key: str) -> None:
                lookup = (keys.hash_key(key),)
                while not stop.is_set():
                    await runtime.db.hot_read(queries.KEY, lookup, at=runtime.clock())

            readers = [asyncio.ensure_future(busy(raw["live"])) for _ in range(16)]
            seen: list[bool] = []
            try:
                for _ in range(30):
                    created = await runtime.apikeys.create(
                        principal=owner,
                        name="victim",
                        client=CLIENT,
                        settings=key_settings(now=runtime.clock()),
                    )
                    lookup = (keys.hash_key(created.raw_key),)
                    before = await runtime.db.hot_read(queries.KEY, lookup, at=runtime.clock())
                    assert before is not None and before[3] is True
                    # Revoked by another connection, as another instance would.
                    await runtime.db.write(
                        lambda conn, key_id=created.info.id: conn.execute(
                            update(api_keys)
                            .where(api_keys.c.id == key_id)
                            .values(revoked_at=runtime.clock())
                        )
                    )
                    after = await runtime.db.hot_read(queries.KEY, lookup, at=runtime.clock())
                    seen.append(after is not None and after[3] is False)
            finally:
                stop.set()
                await asyncio.gather(*readers)
            return seen
        finally:
            await runtime.stop()

    seen = asyncio.run(scenario())
    assert seen == [True] * 30
