"""``db/hotrows.py`` on its own, on a real SQLite file: which rows it keeps, for
which moments, and when it lets them go (a commit elsewhere, its size bound)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from paradarum.db import hotrows
from paradarum.db.engine import CompiledQuery
from paradarum.db.hotrows import HotRows

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
# A value, and the moment it next changes (the query's one moment column).
TIMED = CompiledQuery(
    sql="SELECT value, until FROM facts WHERE name = ?", order=(0,), timed=False, moments=1
)
PLAIN = CompiledQuery(
    sql="SELECT value FROM facts WHERE name = ?", order=(0,), timed=False, moments=0
)


def _database(path: Path) -> tuple[sqlite3.Connection, sqlite3.Connection, list[str]]:
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("CREATE TABLE facts (name TEXT PRIMARY KEY, value TEXT, until TEXT)")
    reader = sqlite3.connect(path, isolation_level=None)
    statements: list[str] = []
    reader.set_trace_callback(statements.append)
    return writer, reader, statements


def _rows() -> HotRows:
    return HotRows(lambda query, params, at: params)


def _reads(statements: list[str]) -> int:
    return sum("FROM facts" in statement for statement in statements)


def test_a_timed_row_is_reused_only_between_when_it_was_read_and_when_it_changes(tmp_path):
    writer, reader, statements = _database(tmp_path / "t.db")
    until = T0 + timedelta(minutes=5)
    writer.execute("INSERT INTO facts VALUES ('a', 'one', ?)", (until.isoformat(),))
    rows = _rows()

    async def scenario() -> list[Any]:
        seen = [rows.read(reader, TIMED, ("a",), T0)]
        seen.append(rows.read(reader, TIMED, ("a",), T0 + timedelta(minutes=4)))
        reads_inside = _reads(statements)
        # At the moment it changes, and before the moment it was read (a clock set
        # back): read again.
        seen.append(rows.read(reader, TIMED, ("a",), until))
        seen.append(rows.read(reader, TIMED, ("a",), T0 - timedelta(seconds=1)))
        return [seen, reads_inside, _reads(statements)]

    (answers, reads_inside, reads_after) = asyncio.run(scenario())
    # The moment column is never part of the answer.
    assert answers == [("one",)] * 4
    assert reads_inside == 1
    assert reads_after == 3


def test_no_row_is_kept_too_and_a_commit_elsewhere_drops_what_is_kept(tmp_path):
    writer, reader, statements = _database(tmp_path / "t.db")
    rows = _rows()

    async def scenario() -> list[Any]:
        first = rows.read(reader, PLAIN, ("missing",), None)
        await asyncio.sleep(0)  # a later turn of the loop: only the change counter is asked
        again = rows.read(reader, PLAIN, ("missing",), None)
        reads_before = _reads(statements)
        writer.execute("INSERT INTO facts VALUES ('missing', 'found', NULL)")
        await asyncio.sleep(0)
        after = rows.read(reader, PLAIN, ("missing",), None)
        return [first, again, reads_before, after, _reads(statements)]

    first, again, reads_before, after, reads_after = asyncio.run(scenario())
    assert first is None and again is None
    assert reads_before == 1
    assert after == ("found",)
    assert reads_after == 2


def test_past_its_bound_everything_kept_is_dropped_at_once(tmp_path, monkeypatch):
    _, reader, statements = _database(tmp_path / "t.db")
    monkeypatch.setattr(hotrows, "MAX_ROWS", 3)
    rows = _rows()

    async def scenario() -> list[int]:
        counts = []
        for name in ("a", "b", "c"):  # three made-up names: three misses kept
            rows.read(reader, PLAIN, (name,), None)
        counts.append(_reads(statements))
        rows.read(reader, PLAIN, ("a",), None)  # still kept
        counts.append(_reads(statements))
        rows.read(reader, PLAIN, ("d",), None)  # the fourth: all are dropped first
        rows.read(reader, PLAIN, ("a",), None)  # so this one is read again
        counts.append(_reads(statements))
        return counts

    assert asyncio.run(scenario()) == [3, 3, 5]
