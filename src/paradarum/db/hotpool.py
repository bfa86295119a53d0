"""PostgreSQL's hot reads: a few asyncpg connections of this process, each with the
hot statements prepared on it.

Chosen by measurement (``bench/drivers.py``, docs/performance.md): a general
asyncio pool's checkout and return cost more client CPU than the read itself, and
asyncpg reads a prepared statement's row for about half of psycopg's CPU. So this
is the least a bound needs:

* at most ``size`` connections, ever (the process's bound for hot reads);
* a free connection is taken without a wait or a task switch; when none is free
  and the bound is reached, the read waits its turn for at most ``timeout``
  seconds, then fails (:class:`HotPoolTimeout`, a 503), rather than opening one more;
* a statement is prepared once per connection, on its first use there, by name;
* a connection that fails is closed and forgotten; the next read opens another.

Every connection is in autocommit (no BEGIN/COMMIT around a read), and is told the
statement timeout, the application name and TCP keep-alive and user timeouts, like
the engine's connections (``db/engine.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

HOT_APPLICATION_NAME = "paradarum-hot"
# Seconds to open a connection, at most.
CONNECT_TIMEOUT = 5.0


class HotPoolError(Exception):
    """No connection to read on: none in time, or the database refused a new one."""


class HotPoolTimeout(HotPoolError):
    """No connection could be had in time."""


class HotPoolConnectError(HotPoolError):
    """The database could not be reached, or refused the connection."""


class HotPool:
    def __init__(
        self,
        dsn: str,
        *,
        size: int,
        timeout: float,
        statement_timeout_ms: int = 0,
        tcp_user_timeout_ms: int = 10_000,
        keepalive_idle: int = 30,
        keepalive_interval: int = 10,
        keepalive_count: int = 3,
    ) -> None:
        self._dsn = dsn
        self.size = max(1, size)
        self.timeout = timeout
        self._settings = {"application_name": HOT_APPLICATION_NAME}
        if statement_timeout_ms > 0:
            self._settings["statement_timeout"] = str(statement_timeout_ms)
        self._socket_options = (
            (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
            (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", 0), tcp_user_timeout_ms),
            (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", 0), keepalive_idle),
            (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", 0), keepalive_interval),
            (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", 0), keepalive_count),
        )
        self._idle: list[Any] = []
        self._waiting: deque[asyncio.Future[Any]] = deque()
        # Connections open or being opened: never more than ``size``.
        self._count = 0
        # Per connection: its prepared statements by SQL.
        self._prepared: dict[Any, dict[str, Any]] = {}
        self._closed = False
        # asyncpg's connections belong to the event loop that opened them: the loop
        # this pool is made on (the runtime's), and the only one it serves.
        self.loop = asyncio.get_running_loop()

    @property
    def open_connections(self) -> int:
        return self._count

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (prepared on the connection) for ``args``. Driver
        errors are raised as they are; the connection that raised one is closed and
        forgotten."""
        connection = self._idle.pop() if self._idle else await self._acquire()
        if connection.is_closed():  # the server dropped it while it was idle
            self._discard(connection)
            connection = await self._acquire()
        try:
            prepared = self._prepared[connection]
            statement = prepared.get(sql)
            if statement is None:
                # Named: with asyncpg's own cache off, an unnamed statement is parsed
                # again on every use (about twice the client CPU of a read).
                statement = await connection.prepare(sql, name=f"paradarum_hot_{len(prepared)}")
                prepared[sql] = statement
            rows = await statement.fetch(*args)
        except BaseException:
            self._discard(connection)
            raise
        self._release(connection)
        return [tuple(row) for row in rows]

    async def _acquire(self) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            if self._closed:
                raise HotPoolTimeout("the pool is closed")
            if self._idle:
                return self._idle.pop()
            if self._count < self.size:
                self._count += 1
                try:
                    return await self._connect()
                except Exception as exc:
                    self._count -= 1
                    self._wake()
                    raise HotPoolConnectError(f"{type(exc).__name__}: {exc}") from exc
                except BaseException:
                    self._count -= 1
                    self._wake()
                    raise
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HotPoolTimeout(f"no hot-read connection within {self.timeout} s")
            waiter: asyncio.Future[Any] = loop.create_future()
            self._waiting.append(waiter)
            # Whichever comes first settles the waiter: a connection, a freed slot
            # (_Retry) or the deadline; nothing handed over is ever lost.
            timer = loop.call_later(remaining, _expire, waiter, self.timeout)
            try:
                return await waiter
            except _Retry:
                continue
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._release(waiter.result())
                raise
            finally:
                timer.cancel()
                if not waiter.done():
                    waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)

    async def fetchrow_once(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of ``sql`` on a connection of its own, opened and closed on the
        running loop: for a caller on another event loop than the pool's (an operator
        command, a test calling a service from its own loop), where none of the pool's
        connections may be used. Not counted in the pool's bound."""
        connection = await self._open()
        try:
            row = await connection.fetchrow(sql, *args)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 1.0)
        return tuple(row) if row is not None else None

    async def _connect(self) -> Any:
        connection = await self._open()
        self._prepared[connection] = {}
        return connection

    async def _open(self) -> Any:
        import asyncpg

        connection = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT,
            server_settings=self._settings,
            statement_cache_size=0,  # ours: self._prepared
        )
        transport = getattr(connection, "_transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            for level, option, value in self._socket_options:
                if option:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(level, option, value)
        return connection

    def _release(self, connection: Any) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if self._closed:
            self._discard(connection)
        else:
            self._idle.append(connection)

    def _discard(self, connection: Any) -> None:
        if self._prepared.pop(connection, None) is None:
            return
        self._count -= 1
        connection.terminate()
        self._wake()

    def _wake(self) -> None:
        """A slot was freed: the first waiter opens a connection of its own."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(_Retry())
                return

    def forget_idle(self) -> None:
        """After a connection failed for want of the server (a restart, a failover),
        the idle ones are likely dead too: close them, so that the next read opens
        a fresh one instead of finding out one by one."""
        idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._prepared.pop(connection, None)
            self._count -= 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 1.0)
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(HotPoolTimeout("the pool is closed"))


def _expire(waiter: asyncio.Future[Any], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(HotPoolTimeout(f"no hot-read connection within {timeout} s"))


class _Retry(Exception):
    """A waiter's turn came as a freed slot, not a connection."""


class Batcher:
    """Reads of one statement that arrive while others are under way, sent together.

    A read joins the waiting list; at most ``concurrency`` drains run, each sending
    the whole list (up to ``most``) as one statement (``HotQuery.batched``) and
    handing every read its row, for as long as reads wait. Under load a round trip
    then answers many requests, and its cost on this process (the driver's work,
    a send and a receive, a wake-up of the loop) is shared between them; alone, a
    read goes out at once, as before.

    A read is only ever sent by a statement that starts after it joined, so it sees
    everything committed before its request arrived, as when it is sent alone: a
    revocation acknowledged to anyone is seen by every later request.

    A read that is not sent within ``timeout`` seconds (every drain waits on a slow
    database) fails with :class:`HotPoolTimeout` (a 503), as a read that finds no
    connection free in time does.
    """

    def __init__(
        self,
        run: Callable[[list[tuple[Any, ...]]], Awaitable[list[tuple[Any, ...] | None]]],
        *,
        concurrency: int,
        timeout: float,
        most: int = 256,
    ) -> None:
        self._run = run
        self._concurrency = max(1, concurrency)
        self._timeout = timeout
        self._most = most
        # (values, answer, when it arrived), oldest first.
        self._waiting: list[tuple[tuple[Any, ...], asyncio.Future[Any], float]] = []
        self._drains: set[asyncio.Task[None]] = set()
        # Drains that will still take waiting reads: counted down as a drain finds
        # none left, in the same step (a read that arrives after it is not missed).
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        # Statements sent so far.
        self.statements = 0

    async def read(self, values: tuple[Any, ...]) -> tuple[Any, ...] | None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[Any, ...] | None] = loop.create_future()
        now = loop.time()
        self._waiting.append((values, answer, now))
        if self._running < self._concurrency:
            self._running += 1
            drain = loop.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        elif self._timer is None:
            self._timer = loop.call_at(now + self._timeout, self._expire)
        return await answer

    def _expire(self) -> None:
        """Fail the reads that waited ``timeout`` without being sent; look again when
        the oldest left would reach it."""
        self._timer = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() - self._timeout
        late = 0
        while late < len(self._waiting) and self._waiting[late][2] <= deadline:
            answer = self._waiting[late][1]
            if not answer.done():
                answer.set_exception(HotPoolTimeout(f"no hot read sent within {self._timeout} s"))
            late += 1
        del self._waiting[:late]
        if self._waiting:
            self._timer = loop.call_at(self._waiting[0][2] + self._timeout, self._expire)

    async def _drain(self) -> None:
        try:
            await self._send_waiting()
        finally:
            self._running -= 1

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            self.statements += 1
            try:
                rows = await self._run([values for values, _, _ in batch])
            except Exception as exc:
                for _, answer, _ in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                continue
            except BaseException:
                for _, answer, _ in batch:
                    answer.cancel()
                raise
            for (_, answer, _), row in zip(batch, rows, strict=True):
                if not answer.done():
                    answer.set_result(row)

    async def close(self) -> None:
        """Stop the drains (at shutdown, when no request is left)."""
        for drain in list(self._drains):
            drain.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for _, answer, _ in self._waiting:
            answer.cancel()
        self._waiting = []
        for drain in list(self._drains):
            with contextlib.suppress(asyncio.CancelledError):
                await drain
