"""The database handle each app builds for itself (no module-level engine).

Two kinds of transaction:

* ``read()``: a plain transaction (``BEGIN`` / PostgreSQL's READ COMMITTED).
* ``write()``: on SQLite ``BEGIN IMMEDIATE`` — the write lock is taken up front,
  so a count-then-insert inside it cannot race with another process, and a
  writer waits (``busy_timeout``) instead of failing on lock upgrade. On
  PostgreSQL a normal transaction; rules that need exclusion lock the account
  row (``lock_account``).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from paradarum.db.tables import accounts

# Seconds a hot read waits for a pooled PostgreSQL connection before it tries a
# connection of its own.
HOT_CHECKOUT_TIMEOUT = 0.5
# Milliseconds the SQLite hot-path reader may wait for a lock (see hot_read).
HOT_SQLITE_BUSY_MS = 1000
HOT_CONNECTION_KWARGS: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 5,
    "application_name": "paradarum-hot",
}
_WRITE_OPTION = "paradarum_write"
P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """One engine plus the conventions above."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        pool_timeout: float = 5.0,
        busy_timeout_ms: int = 10_000,
        statement_timeout: float = 0,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._busy_timeout_ms = busy_timeout_ms
        common: dict[str, Any] = {
            # Never put bound parameters (hashes, emails) into exception text or logs.
            "hide_parameters": True,
            "pool_pre_ping": self.dialect != "sqlite",
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
        }
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                # 0700: the database holds password hashes and key hashes.
                Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.sqlite_path = database
            self._hot_engine: Engine | None = None
            self.engine: Engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
                **common,
            )
            event.listen(self.engine, "connect", self._sqlite_on_connect)
            event.listen(self.engine, "begin", self._sqlite_on_begin)
        else:
            self.sqlite_path = None
            connect_args: dict[str, Any] = {}
            if self.dialect == "postgresql":
                connect_args = {
                    "connect_timeout": 5,
                    "application_name": "paradarum",
                    # A database host that vanishes without closing its sockets
                    # (network partition, dead VM) would otherwise hold a worker
                    # thread for the kernel's ~15-minute retransmission limit:
                    # give up on unacknowledged writes after 10 s, and probe
                    # quiet connections so that they fail and are replaced.
                    "tcp_user_timeout": 10_000,
                    "keepalives": 1,
                    "keepalives_idle": 30,
                    "keepalives_interval": 10,
                    "keepalives_count": 3,
                }
                if statement_timeout > 0:
                    # A lock held by a stuck or partitioned peer must not hold our
                    # threads forever: the statement fails (a 503) instead.
                    milliseconds = max(1, int(statement_timeout * 1000))
                    given = parsed.query.get("options")
                    options = f"-c statement_timeout={milliseconds}"
                    connect_args["options"] = f"{given} {options}" if given else options
            self.engine = create_engine(
                url,
                pool_recycle=1800,
                connect_args=connect_args,
                **common,
            )
            # For hot_read: autocommit, so a lookup is one round trip with no
            # BEGIN/ROLLBACK around it, and no ping on checkout (a dead
            # connection is retried instead). Engines connect lazily: no I/O here.
            self._hot_engine = create_engine(
                url,
                pool_recycle=1800,
                connect_args={**connect_args, "application_name": "paradarum-hot"}
                if connect_args
                else {},
                isolation_level="AUTOCOMMIT",
                **{
                    **common,
                    "pool_pre_ping": False,
                    # Every connection is kept: an overflow connection would be
                    # closed on return and reopened under the next burst, and
                    # opening one (a new server process) costs milliseconds.
                    "pool_size": pool_size + max_overflow,
                    "max_overflow": 0,
                },
            )
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._hot_threads = pool_size + max_overflow
        self._hot_executor: ThreadPoolExecutor | None = None
        self._pool_timeout = pool_timeout
        # PostgreSQL: an asyncio pool per event loop that opened one (see open_async).
        self._async_pools: dict[asyncio.AbstractEventLoop, Any] = {}
        self._hot_conninfo = ""

    # -- SQLite connection setup ------------------------------------------------

    def _sqlite_pragmas(self, dbapi_connection: sqlite3.Connection) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before it is acknowledged, WAL or not.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    def _sqlite_on_connect(self, dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's own transaction handling would
        # issue a deferred BEGIN lazily, which defeats BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        self._sqlite_pragmas(dbapi_connection)

    @staticmethod
    def _sqlite_on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    # -- transactions -----------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def lock_account(self, conn: Connection, account_id: int) -> bool:
        """Serialise writers of one account for the rest of the transaction.

        SQLite: the ``BEGIN IMMEDIATE`` of ``write()`` already holds the database
        write lock (``FOR UPDATE`` would be a no-op there). PostgreSQL: a row lock
        on the account, ``FOR NO KEY UPDATE``: it excludes other holders of this
        lock but not the key-share locks that inserts referencing the account
        (audit rows of a revoke or a sign-in) take. Returns False when the account
        does not exist.
        """
        query = select(accounts.c.id).where(accounts.c.id == account_id)
        if self.dialect != "sqlite":
            query = query.with_for_update(key_share=True)
        return conn.execute(query).first() is not None

    @property
    def insert(self) -> Any:
        """This dialect's ``insert``, which has ``on_conflict_do_update`` /
        ``on_conflict_do_nothing`` (PostgreSQL and SQLite spell them alike)."""
        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    # -- hot path ---------------------------------------------------------------

    @property
    def reads_inline(self) -> bool:
        """Whether hot-path reads may run on the event loop thread.

        A SQLite read in WAL mode is a few microseconds and never waits for a
        writer, so a thread hop would cost more than the read. A network database
        read goes to the thread pool.
        """
        return self.dialect == "sqlite"

    async def run_hot(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` (hot-path work built on :meth:`hot_read`) from the event loop.

        Inline where a read is a few microseconds (SQLite). Otherwise on a thread
        pool of its own, sized like the hot connection pool: handing work to a
        ``concurrent.futures`` pool straight from asyncio costs a fraction of a
        general-purpose ``run_in_threadpool`` (no cancel scopes or capacity
        limiter bookkeeping), and this runs once or twice per request.
        """
        if self.reads_inline:
            return fn(*args, **kwargs)
        if self._hot_executor is None:
            self._hot_executor = ThreadPoolExecutor(
                max_workers=self._hot_threads, thread_name_prefix="paradarum-hot"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._hot_executor, functools.partial(fn, *args, **kwargs)
        )

    async def open_async(self) -> None:
        """Open an asyncio connection pool for hot reads on the running loop.

        Called from the app's lifespan, which also closes it (``close_async``).
        With it, a PostgreSQL hot read is awaited on the event loop itself: no
        thread, so no hop and no contention for the GIL with worker threads.
        Without it (an app driven without its lifespan), hot reads still work,
        through :meth:`run_hot`'s threads.
        """
        if self.dialect != "postgresql" or asyncio.get_running_loop() in self._async_pools:
            return
        from psycopg_pool import AsyncConnectionPool

        url = make_url(self.url).set(drivername="postgresql")
        self._hot_conninfo = url.render_as_string(hide_password=False)
        pool = AsyncConnectionPool(
            self._hot_conninfo,
            kwargs=HOT_CONNECTION_KWARGS,
            # Starts small (a test app should not hold 20 connections) and grows
            # to the pool size under load; idle connections close after 10 min.
            min_size=min(2, self._hot_threads),
            max_size=self._hot_threads,
            # After an outage the pool's own reconnects back off; a checkout that
            # finds nothing soon makes one direct attempt instead (hot_read_async).
            timeout=min(self._pool_timeout, HOT_CHECKOUT_TIMEOUT),
            open=False,
            name="paradarum-hot",
        )
        await pool.open(wait=False)
        self._async_pools[asyncio.get_running_loop()] = pool

    async def close_async(self) -> None:
        pool = self._async_pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def hot_read_async(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """:meth:`hot_read` for the event loop: inline on SQLite, awaited on the
        loop's pool on PostgreSQL (one round trip; after a dropped connection the
        pool's idle connections are checked and the read retried once), else
        through :meth:`run_hot`."""
        if self.reads_inline:
            return self.hot_read(sql, params)
        pool = self._async_pools.get(asyncio.get_running_loop()) if self._async_pools else None
        if pool is None:
            return await self.run_hot(self.hot_read, sql, params)
        import psycopg
        from psycopg_pool import PoolTimeout

        query = sql.replace("?", "%s")
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    cursor = await conn.execute(query, params)
                    row = await cursor.fetchone()
                return tuple(row) if row is not None else None
            except PoolTimeout:
                return await self._hot_read_direct(query, params)
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
                # The server may have dropped every idle connection (a restart):
                # weed them out before the retry, so that it gets a live one.
                await pool.check()
        raise AssertionError("unreachable")

    async def _hot_read_direct(self, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One read on a connection of its own, when the pool has none to give.

        Tells the two reasons apart at once: a database that is down refuses the
        connection (an error, so a 503), one that is back answers — without waiting
        for the pool's backed-off reconnects to notice.
        """
        import psycopg

        async with await psycopg.AsyncConnection.connect(
            self._hot_conninfo, **HOT_CONNECTION_KWARGS
        ) as conn:
            cursor = await conn.execute(query, params)
            row = await cursor.fetchone()
        return tuple(row) if row is not None else None

    def hot_read(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row from a hand-written, parameterised SELECT on the hot path.

        SQLite: a dedicated autocommit connection per process, reused, so no
        pool checkout can ever block the event loop. Others: a pooled autocommit
        connection, one round trip per read (no ping, no BEGIN/ROLLBACK).
        """
        if self.dialect == "sqlite":
            with self._reader_lock:
                if self._reader is None:
                    # This connection reads on the event loop. A WAL reader waits
                    # only in rare cases (recovery after a crash, a forced
                    # checkpoint): bound that wait, and answer 503 past it,
                    # rather than stall every request of the process.
                    wait_ms = min(self._busy_timeout_ms, HOT_SQLITE_BUSY_MS)
                    reader = sqlite3.connect(
                        self.sqlite_path or ":memory:",
                        check_same_thread=False,
                        isolation_level=None,
                        timeout=wait_ms / 1000,
                        cached_statements=64,
                    )
                    reader.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
                    reader.execute("PRAGMA query_only = ON")
                    self._reader = reader
                row = self._reader.execute(sql, params).fetchone()
                return tuple(row) if row is not None else None
        return self._network_hot_read(sql.replace("?", "%s"), params)

    def _network_hot_read(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One round trip; a connection found dead is discarded by the pool and
        the read retried once on a fresh one."""
        engine = self._hot_engine
        assert engine is not None
        for attempt in (1, 2):
            try:
                with engine.connect() as conn:
                    row = conn.exec_driver_sql(sql, params).first()
                return tuple(row) if row is not None else None
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        if self._hot_executor is not None:
            self._hot_executor.shutdown(wait=False)
            self._hot_executor = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self.engine.dispose()
        if self._hot_engine is not None:
            self._hot_engine.dispose()
