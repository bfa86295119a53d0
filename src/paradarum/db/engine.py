"""The database handle each runtime builds for itself (no module-level engine).

Services are asynchronous; statements are not. So a service hands its
transaction, a plain function of a :class:`~sqlalchemy.Connection`, to

* :meth:`Database.read`: a plain transaction (``BEGIN`` / PostgreSQL's READ
  COMMITTED), or
* :meth:`Database.write`: on SQLite ``BEGIN IMMEDIATE`` — the write lock is taken
  up front, so a count-then-insert inside it cannot race with another process,
  and a writer waits (``busy_timeout``) instead of failing on lock upgrade. On
  PostgreSQL a normal transaction; rules that need exclusion lock the account
  row (``lock_account``),

which run it on this database's own threads (as many as the pool has
connections), never on the event loop. The one exception is :meth:`hot_read`,
the indexed single-row read that authenticates every request: inline on SQLite
(a WAL read is microseconds), awaited on an asyncio pool on PostgreSQL. Each of
the two has exactly one route and a bound: the threads and the connection pools.

Driver errors never leave this module as such: a database that cannot be reached,
a pool with no connection to give, a full disk — all become
:class:`paradarum.errors.Unavailable`, with the cause logged here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from paradarum.db.hotpool import Batcher, HotPool, HotPoolError
from paradarum.db.hotrows import HotRows
from paradarum.db.queries import HOT_QUERIES, HotQuery
from paradarum.db.tables import accounts
from paradarum.errors import Unavailable

logger = logging.getLogger("paradarum.db")

# Milliseconds the SQLite hot-path reader may wait for a lock (see hot_read).
HOT_SQLITE_BUSY_MS = 1000
# Seconds a PostgreSQL hot read waits for a pooled connection at most.
HOT_CHECKOUT_TIMEOUT = 1.0
# PostgreSQL: statements of one hot query under way at once (each for as many reads as
# are waiting; hotpool.Batcher).
HOT_BATCHES = 2
_WRITE_OPTION = "paradarum_write"
P = ParamSpec("P")
T = TypeVar("T")


class WriteHealth:
    """Whether writes are failing for a reason that will not fix itself per request
    (a full disk, an I/O error, a read-only file system), so that readiness can
    say so. Cleared by the next write that succeeds."""

    def __init__(self) -> None:
        self.failing_since: float | None = None
        self.reason: str | None = None

    def failed(self, reason: str) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.reason = reason

    def succeeded(self) -> None:
        self.failing_since = None
        self.reason = None


_STORAGE_TROUBLE = ("disk is full", "disk i/o error", "readonly database", "no space left")


def _reason(exc: BaseException) -> str:
    """A driver error in one line that is safe to log (no bound parameters)."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {text}"[:300] if text else type(original).__name__


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve us (as opposed to a refusal
    such as a unique violation, which the service that caused it handles)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | sqlite3.OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, HotPoolError | OSError | asyncio.TimeoutError):
        return True
    try:
        import asyncpg
        import psycopg
    except ImportError:  # pragma: no cover - both are dependencies
        return False
    return isinstance(
        exc,
        psycopg.OperationalError
        | psycopg.InterfaceError
        | asyncpg.InterfaceError
        # A connection in a state it cannot be used in: one the server has just
        # dropped, before the client has seen it close.
        | asyncpg.InternalClientError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.InsufficientResourcesError
        | asyncpg.exceptions.QueryCanceledError
        | asyncpg.exceptions.CannotConnectNowError,
    )


@dataclass(frozen=True, slots=True, eq=False)
class CompiledQuery:
    """A :class:`~paradarum.db.queries.HotQuery` as this database runs it."""

    sql: str
    # For each placeholder in ``sql``, the index of its value in (*params, at).
    order: tuple[int, ...]
    timed: bool
    moments: int
    # PostgreSQL: the statement for many reads at once (HotQuery.batched), and for
    # each of its placeholders (an array) the index of its values in (*params, at).
    batch_sql: str | None = None
    batch_order: tuple[int, ...] = ()

    def bind(self, params: tuple[Any, ...], at: Any) -> tuple[Any, ...]:
        values = (*params, at) if self.timed else params
        return tuple([values[index] for index in self.order])

    def bind_batch(self, reads: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
        """The arrays of :attr:`batch_sql` for ``reads``, each ``(*params, at)``."""
        return tuple([[read[index] for read in reads] for index in self.batch_order])


class Database:
    """One engine, its threads and, on PostgreSQL, the hot-read pool."""

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
        self._pool_size = pool_size
        self._pool_timeout = pool_timeout
        common: dict[str, Any] = {
            # Never put bound parameters (hashes, emails) into exception text or logs.
            "hide_parameters": True,
            "pool_pre_ping": self.dialect != "sqlite",
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
        }
        self.sqlite_path: str | None = None
        self._connect_args: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                # 0700: the database holds password hashes and key hashes.
                Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.sqlite_path = database
            self.engine: Engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
                **common,
            )
            event.listen(self.engine, "connect", self._sqlite_on_connect)
            event.listen(self.engine, "begin", self._sqlite_on_begin)
        else:
            if self.dialect == "postgresql":
                self._connect_args = {
                    "connect_timeout": 5,
                    "application_name": "paradarum",
                    # A database host that vanishes without closing its sockets
                    # (network partition, dead VM) would otherwise hold a thread
                    # for the kernel's ~15-minute retransmission limit: give up on
                    # unacknowledged writes after 10 s, and probe quiet connections
                    # so that they fail and are replaced.
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
                    self._connect_args["options"] = f"{given} {options}" if given else options
            self.engine = create_engine(
                url, pool_recycle=1800, connect_args=self._connect_args, **common
            )
        # As many threads as the pool has connections: a thread never waits for
        # a connection that another of ours holds for long.
        self._threads = ThreadPoolExecutor(
            max_workers=pool_size + max_overflow, thread_name_prefix="paradarum-db"
        )
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._hot_rows = HotRows(self._bind)
        self._statement_timeout_ms = (
            max(1, int(statement_timeout * 1000)) if statement_timeout > 0 else 0
        )
        self._hot_pool: HotPool | None = None
        self._batchers: dict[CompiledQuery, Batcher] = {}
        self.write_health = WriteHealth()
        # The hot path's statements, compiled once for this dialect and driver.
        self._compiled: dict[HotQuery, CompiledQuery] = {}
        for query in HOT_QUERIES:
            self.compiled(query)

    # -- SQLite connection setup ------------------------------------------------

    def _sqlite_on_connect(self, dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's own transaction handling would
        # issue a deferred BEGIN lazily, which defeats BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before it is acknowledged, WAL or not.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @staticmethod
    def _sqlite_on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction on the calling thread (migrations, tests, the threads below)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on the calling thread; see the module docstring."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    async def read(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``work(conn, *args, **kwargs)`` in a read transaction, off the loop."""
        return await self._run(False, lambda conn: work(conn, *args, **kwargs))

    async def write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``work(conn, *args, **kwargs)`` in a write transaction, off the loop.

        The transaction commits when ``work`` returns and rolls back when it raises.
        """
        return await self._run(True, lambda conn: work(conn, *args, **kwargs))

    async def _run(self, write: bool, work: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._transaction, write, work)

    def _transaction(self, write: bool, work: Callable[[Connection], T]) -> T:
        try:
            with self.writing() if write else self.reading() as conn:
                result = work(conn)
        except Exception as exc:
            if is_outage(exc):
                raise self._unavailable(exc, write=write) from exc
            raise
        if write:
            self.write_health.succeeded()
        return result

    def _unavailable(self, exc: BaseException, *, write: bool) -> Unavailable:
        reason = _reason(exc)
        if write and any(part in reason.lower() for part in _STORAGE_TROUBLE):
            self.write_health.failed(reason)
        logger.error("database unavailable: %s", reason)
        return Unavailable(reason=reason)

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

    def sql_time(self, moment: datetime) -> Any:
        """``moment`` as a parameter of hand-written SQL: PostgreSQL compares
        timestamps; SQLite compares the naive UTC text SQLAlchemy stores."""
        if self.dialect == "sqlite":
            return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return moment

    @property
    def insert(self) -> Any:
        """This dialect's ``insert``, which has ``on_conflict_do_update`` /
        ``on_conflict_do_nothing`` (PostgreSQL and SQLite spell them alike)."""
        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    # -- the hot path -------------------------------------------------------------

    def compiled(self, query: HotQuery) -> CompiledQuery:
        """``query`` as this database runs it (compiled on first use: the hot path's
        own at start-up, see ``__init__``)."""
        found = self._compiled.get(query)
        if found is not None:
            return found
        dialect: Any = (
            sqlite.dialect(paramstyle="qmark")
            if self.dialect == "sqlite"
            else postgresql_asyncpg.dialect()
        )
        compiled = query.statement_for(self.dialect).compile(dialect=dialect)
        names = (*query.params, "at")
        positions = compiled.positiontup or []
        unknown = set(positions) - set(names)
        if unknown:
            raise ValueError(f"{query.name}: no value for {', '.join(sorted(unknown))}")
        batch_sql: str | None = None
        batch_order: tuple[int, ...] = ()
        batched = query.batched() if self.dialect == "postgresql" else None
        if batched is not None:
            batch = batched[0].compile(dialect=dialect)
            batch_sql = batch.string
            batch_order = tuple(names.index(name) for name in batch.positiontup or [])
        found = CompiledQuery(
            sql=compiled.string,
            order=tuple(names.index(name) for name in positions),
            timed="at" in positions,
            # Only SQLite reads them (queries.HotQuery.moments).
            moments=len(query.moments) if self.dialect == "sqlite" else 0,
            batch_sql=batch_sql,
            batch_order=batch_order,
        )
        self._compiled[query] = found
        return found

    async def start(self) -> None:
        """Open what lives on the event loop: PostgreSQL's hot-read connections.

        Called by the runtime when its loop starts (the app's lifespan); without
        it, :meth:`hot_read` on PostgreSQL answers ``Unavailable``.
        """
        if self.dialect != "postgresql" or self._hot_pool is not None:
            return
        self._hot_pool = pool = self._new_hot_pool()
        self._batchers = {
            compiled: Batcher(
                functools.partial(self._postgres_batch, pool, compiled),
                concurrency=min(HOT_BATCHES, pool.size),
                timeout=pool.timeout,
            )
            for compiled in self._compiled.values()
            if compiled.batch_sql is not None
        }

    def _new_hot_pool(self) -> HotPool:
        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        return HotPool(
            dsn,
            size=self._pool_size,
            timeout=min(self._pool_timeout, HOT_CHECKOUT_TIMEOUT),
            statement_timeout_ms=self._statement_timeout_ms,
            tcp_user_timeout_ms=int(self._connect_args.get("tcp_user_timeout", 10_000)),
            keepalive_idle=int(self._connect_args.get("keepalives_idle", 30)),
            keepalive_interval=int(self._connect_args.get("keepalives_interval", 10)),
            keepalive_count=int(self._connect_args.get("keepalives_count", 3)),
        )

    @property
    def hot_statements_sent(self) -> int:
        """PostgreSQL: statements the hot reads of this process have sent together."""
        return sum(batcher.statements for batcher in self._batchers.values())

    async def stop(self) -> None:
        pool, self._hot_pool = self._hot_pool, None
        batchers, self._batchers = self._batchers, {}
        for batcher in batchers.values():
            await batcher.close()
        if pool is not None:
            await pool.close()

    async def hot_read(
        self,
        query: HotQuery,
        params: tuple[Any, ...] = (),
        *,
        keep: bool = False,
        at: datetime | None = None,
    ) -> tuple[Any, ...] | None:
        """One row of a hot query (``db/queries.py``) for ``params``, asked for the
        moment ``at`` when the query uses one.

        SQLite: one dedicated autocommit connection per process, read inline (no
        thread hop: it costs more than the read). PostgreSQL: one round trip, a
        prepared statement on one of the process's hot-read connections
        (``db/hotpool.py``); a connection the server dropped (a restart) is
        forgotten and the read retried once on another. A caller on another event
        loop than the runtime's (an operator command, a test's own loop) reads on a
        connection of its own, as asyncpg's connections belong to their loop.

        ``keep``: on SQLite, the row is remembered while no connection commits
        (:mod:`hotrows`). The trailing moment columns are not returned.
        """
        compiled = self._compiled.get(query) or self.compiled(query)
        if compiled.timed and at is None:
            raise ValueError(f"{query.name} is asked for a moment: pass at=")
        if self.dialect == "sqlite":
            try:
                if keep:
                    return self._hot_rows.read(self._sqlite_reader(), compiled, params, at)
                row = (
                    self._sqlite_reader()
                    .execute(compiled.sql, self._bind(compiled, params, at))
                    .fetchone()
                )
            except sqlite3.Error as exc:
                raise self._unavailable(exc, write=False) from exc
        else:
            row = await self._postgres_hot_read(compiled, params, at)
        moments = compiled.moments
        return row[:-moments] if row is not None and moments else row

    def _bind(
        self, compiled: CompiledQuery, params: tuple[Any, ...], at: datetime | None
    ) -> tuple[Any, ...]:
        return compiled.bind(params, self.sql_time(at) if at is not None else None)

    def _sqlite_reader(self) -> sqlite3.Connection:
        reader = self._reader
        if reader is None:
            with self._reader_lock:
                if self._reader is None:
                    # This connection reads on the event loop. A WAL reader waits
                    # only in rare cases (recovery after a crash, a forced
                    # checkpoint): bound that wait, and answer 503 past it, rather
                    # than stall every request of the process.
                    wait_ms = min(self._busy_timeout_ms, HOT_SQLITE_BUSY_MS)
                    connection = sqlite3.connect(
                        self.sqlite_path or ":memory:",
                        check_same_thread=False,
                        isolation_level=None,
                        timeout=wait_ms / 1000,
                        cached_statements=64,
                    )
                    connection.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
                    connection.execute("PRAGMA query_only = ON")
                    self._reader = connection
                reader = self._reader
        return reader

    async def _postgres_hot_read(
        self, compiled: CompiledQuery, params: tuple[Any, ...], at: datetime | None
    ) -> tuple[Any, ...] | None:
        pool = self._hot_pool
        if pool is None:
            raise Unavailable(reason="the hot-read pool is not open (runtime not started)")
        try:
            if pool.loop is not asyncio.get_running_loop():
                return await pool.fetchrow_once(compiled.sql, compiled.bind(params, at))
            batcher = self._batchers.get(compiled)
            if batcher is not None:
                return await batcher.read((*params, at))
            rows = await self._postgres_fetch(pool, compiled.sql, compiled.bind(params, at))
            return rows[0] if rows else None
        except Exception as exc:
            if is_outage(exc):
                raise self._unavailable(exc, write=False) from exc
            raise

    async def _postgres_batch(
        self, pool: HotPool, compiled: CompiledQuery, reads: list[tuple[Any, ...]]
    ) -> list[tuple[Any, ...] | None]:
        """The rows of ``reads`` (each ``(*params, at)``) in one statement, in order."""
        assert compiled.batch_sql is not None
        rows = await self._postgres_fetch(pool, compiled.batch_sql, compiled.bind_batch(reads))
        answers: list[tuple[Any, ...] | None] = [None] * len(reads)
        for row in rows:
            answers[row[0] - 1] = row[1:]
        return answers

    @staticmethod
    async def _postgres_fetch(
        pool: HotPool, sql: str, args: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        try:
            return await pool.fetch(sql, args)
        except Exception as exc:
            # No retry when no connection could be had at all.
            if not is_outage(exc) or isinstance(exc, HotPoolError):
                raise
        # The server may have dropped its connections (a restart): the one that
        # failed is gone, and so are the idle ones; the retry opens a new one.
        pool.forget_idle()
        return await pool.fetch(sql, args)

    # -- lifecycle ----------------------------------------------------------------

    def close(self) -> None:
        """Release threads and connections (after :meth:`stop`, off the loop)."""
        self._threads.shutdown(wait=True)
        with self._reader_lock:
            if self._reader is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._reader.close()
                self._reader = None
                # A new reader's change counter starts afresh: nothing kept survives.
                self._hot_rows = HotRows(self._bind)
        self.engine.dispose()
