"""Rows of SQLite's hot reads, remembered while the database is unchanged.

A key check and ``GET /api/account`` each read one row; on SQLite each read is a
read transaction of its own. The rows are kept here, and kept only while SQLite
says that no other connection has committed since: ``PRAGMA data_version``
(https://sqlite.org/pragma.html#pragma_data_version) changes on this connection
when any other connection, in this process or another, commits. The reader
connection itself never writes, so every write of every process is seen.

When to ask. Once per turn of the event loop, before the first read of the turn:
a request's code runs in a turn that began after the request was handed to the
loop, so after everything committed before the request arrived. A revocation
acknowledged to one client is therefore seen by the next request of any client
on any process, as without the rows kept. The flag that says "asked in this
turn" is cleared by a callback queued at the moment of asking: it runs before
anything queued later (the loop runs callbacks in order), so no step queued
after the question relies on its answer.

Time. A row whose answer depends on the time (``activeKeys`` counts keys not
yet expired) is read for a moment ``at`` and ends with one more column: the
moment its answer next changes (the next expiry), or NULL. It is reused for a
later moment before that one, never for an earlier one (a test's clock may go
back).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from paradarum.db.types import as_utc

# Rows kept at most: past this, all are dropped at once (a spray of made-up keys
# makes misses, and misses are kept too).
MAX_ROWS = 8192

_MISSING = object()


class _At:
    """Marks where a hot read's moment (``at``) is bound."""

    def __repr__(self) -> str:
        return "AT"


AT = _At()


class HotRows:
    def __init__(self, bind: Callable[[tuple[Any, ...], datetime | None], tuple[Any, ...]]) -> None:
        # The parameters as executed: ``at`` where the AT markers are (Database._bind).
        self._bind = bind
        # (sql, params) -> the row (no moment), or (row, since, until) (a moment).
        self._rows: dict[tuple[str, tuple[Any, ...]], Any] = {}
        self._version: int | None = None
        self._asked_in: asyncio.AbstractEventLoop | None = None

    def _forget_turn(self) -> None:
        self._asked_in = None

    def _check(self, reader: sqlite3.Connection) -> None:
        loop = asyncio.get_running_loop()
        if self._asked_in is loop:
            return
        version = reader.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version = version
            self._rows.clear()
        self._asked_in = loop
        loop.call_soon(self._forget_turn)

    def read(
        self,
        reader: sqlite3.Connection,
        sql: str,
        params: tuple[Any, ...],
        at: datetime | None,
    ) -> tuple[Any, ...] | None:
        """The row of ``sql`` for ``params`` (``at`` bound in place of the ``AT``
        markers), from memory while still true."""
        self._check(reader)
        key = (sql, params)
        kept = self._rows.get(key, _MISSING)
        if kept is not _MISSING:
            if at is None or kept is None:  # no row is no row at any moment
                return kept
            row, since, until = kept
            if since <= at and (until is None or at < until):
                return row
        row = reader.execute(sql, self._bind(params, at)).fetchone()
        if len(self._rows) >= MAX_ROWS:
            self._rows.clear()
        if at is None:
            self._rows[key] = row
            return row
        if row is None:
            self._rows[key] = None
            return None
        answer = row[:-1]
        self._rows[key] = (answer, at, as_utc(row[-1]))
        return answer
