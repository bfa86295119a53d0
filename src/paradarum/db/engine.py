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

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from paradarum.db.tables import accounts

_WRITE_OPTION = "paradarum_write"


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
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()

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

    def hot_read(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row from a hand-written, parameterised SELECT on the hot path.

        SQLite: a dedicated autocommit connection per process, reused, so no
        pool checkout can ever block the event loop. Others: a pooled connection.
        """
        if self.dialect == "sqlite":
            with self._reader_lock:
                if self._reader is None:
                    reader = sqlite3.connect(
                        self.sqlite_path or ":memory:",
                        check_same_thread=False,
                        isolation_level=None,
                        timeout=self._busy_timeout_ms / 1000,
                        cached_statements=64,
                    )
                    reader.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                    reader.execute("PRAGMA query_only = ON")
                    self._reader = reader
                row = self._reader.execute(sql, params).fetchone()
                return tuple(row) if row is not None else None
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql(sql.replace("?", "%s"), params).first()
            conn.rollback()
        return tuple(row) if row is not None else None

    def dispose(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self.engine.dispose()
