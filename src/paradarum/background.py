"""The one owner of a process's background work.

Two kinds:

* **loops** — long-running jobs registered when the runtime is built (purge
  delivery, the notification outbox, flushing usage counts) and started with the
  runtime's event loop;
* **after-the-answer work** — a coroutine a request starts and does not wait for
  (a ``lastUsedAt`` refresh, recording a failed sign-in).

Both run as tasks on the event loop (blocking work inside them goes to the
database's threads), both are joined on :meth:`Background.stop`: what a request
promised is finished before the process exits, and no task or thread outlives its
runtime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("paradarum.background")

Loop = Callable[[asyncio.Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Registered:
    name: str
    run: Loop


class Background:
    def __init__(self) -> None:
        self._registered: list[_Registered] = []
        self._loops: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[Any]] = set()
        self._stopping: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        return self._stopping is not None and not self._stopping.is_set()

    def add_loop(self, name: str, run: Loop) -> None:
        """Register ``run(stopping)``: it works until the event is set, then returns."""
        self._registered.append(_Registered(name, run))

    def every(self, name: str, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        """Register ``job`` to run every ``seconds`` (and once more when stopping)."""

        async def periodic(stopping: asyncio.Event) -> None:
            while not stopping.is_set():
                await wait_for_event(stopping, seconds)
                try:
                    await job()
                except Exception:  # a failed pass must not end the loop
                    logger.exception("background job failed", extra={"job": name})

        self.add_loop(name, periodic)

    def spawn(self, work: Coroutine[Any, Any, object], *, name: str) -> None:
        """Run ``work`` after the answer; it is awaited on :meth:`stop`, and an error
        in it is logged, never raised into the request that started it."""
        task = asyncio.get_running_loop().create_task(work, name=f"paradarum-{name}")
        self._spawned.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._spawned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "background work failed",
                extra={"task": task.get_name()},
                exc_info=task.exception(),
            )

    async def start(self) -> None:
        if self._stopping is not None:
            return
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for registered in self._registered:
            task = loop.create_task(self._guard(registered), name=f"paradarum-{registered.name}")
            self._loops.append(task)

    async def _guard(self, registered: _Registered) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                await registered.run(self._stopping)
                return
            except Exception:
                # A loop that dies (say, the database went away mid-pass) is
                # restarted after a pause rather than silently gone.
                logger.exception("background loop failed", extra={"loop": registered.name})
                await wait_for_event(self._stopping, 5.0)

    async def stop(self, timeout: float = 30.0) -> None:
        """Let loops finish their current pass, finish spawned work, then return."""
        if self._stopping is not None:
            self._stopping.set()
        pending = [*self._loops, *self._spawned]
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                logger.warning("background work cancelled at shutdown: %s", task.get_name())
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
        self._loops.clear()
        self._stopping = None


async def wait_for_any(*events: asyncio.Event, seconds: float) -> None:
    """Wait until one of ``events`` is set, or ``seconds`` pass (a loop's idle wait:
    stopping, or work to do, or the next poll)."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``, waking early when ``event`` is set; True if it was."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
