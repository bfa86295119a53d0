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

Time. A row whose answer depends on the time (whether a key has expired,
``activeKeys`` counts keys not yet expired) is read for a moment ``at`` and ends
with more columns: the moments parts of its answer next change (the next
expiry), or NULL (``db/queries.py``). It is reused for a later moment before the
earliest of them, never for an earlier one (a test's clock may go back).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from paradarum.db.types import as_utc

if TYPE_CHECKING:
    from paradarum.db.engine import CompiledQuery

# Rows kept at most: past this, all are dropped at once (a spray of made-up keys
# makes misses, and misses are kept too).
MAX_ROWS = 8192

_MISSING = object()


class HotRows:
    def __init__(
        self, bind: Callable[[CompiledQuery, tuple[Any, ...], datetime | None], tuple[Any, ...]]
    ) -> None:
        # The values as executed: ``at`` bound where the statement asks (Database._bind).
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
        query: CompiledQuery,
        params: tuple[Any, ...],
        at: datetime | None,
    ) -> tuple[Any, ...] | None:
        """The row of ``query`` for ``params`` (and the moment ``at``), without its
        moment columns, from memory while still true."""
        self._check(reader)
        key = (query.sql, params)
        kept = self._rows.get(key, _MISSING)
        if kept is not _MISSING:
            if not query.moments or kept is None:  # no row is no row at any moment
                return kept
            row, since, until = kept
            if at is not None and since <= at and (until is None or at < until):
                return row
        row = reader.execute(query.sql, self._bind(query, params, at)).fetchone()
        if len(self._rows) >= MAX_ROWS:
            self._rows.clear()
        if not query.moments or row is None:
            self._rows[key] = row
            return row
        moments = query.moments
        answer = row[:-moments]
        changes = [as_utc(value) for value in row[-moments:] if value is not None]
        self._rows[key] = (answer, at, min(changes) if changes else None)  # type: ignore[type-var]
        return answer
