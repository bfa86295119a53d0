"""Password hashing with Argon2id, on threads of its own and behind a bounded queue.

Parameters follow OWASP's Password Storage Cheat Sheet (m=19 MiB, t=2, p=1).
Each hash or verification holds ~19 MiB of memory and a core for a few tens of
milliseconds, so:

* it runs on ``concurrency`` threads of its own, never on the database's threads:
  a burst of sign-ins cannot slow key checks, revokes or readiness;
* at most ``queue`` more wait for a thread; beyond that the request is refused at
  once (:class:`~paradarum.errors.Unavailable`, a 503 with ``Retry-After``)
  rather than queued for seconds behind work that will answer too late anyway;
* no more of them hash at once than the process has cores to run on (its CPU
  affinity): more would not sign anyone in sooner, only take more of the cores'
  time and memory at once;
* those threads run at the lowest CPU priority (nice 19): a core shared with a
  burst of hashes still answers key checks, key lists and revokes first, and
  hashes take what the event loop leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from paradarum.errors import Unavailable

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1
# glibc's mallopt(M_MMAP_THRESHOLD, ...): allocations at least this big are mmap'ed
# and handed back to the OS when freed.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_large_blocks_to_the_os() -> None:
    """Make each Argon2 work area (19 MiB) go back to the OS once freed.

    glibc raises its mmap threshold after the first large block is freed, so
    later 19 MiB blocks come from per-thread arenas and stay there: after a
    burst of sign-ins every thread-pool thread that ever hashed keeps ~19 MiB
    (40 threads: ~760 MiB), although the semaphore let only a few run at once.
    Fixing the threshold keeps the process at baseline + concurrency x 19 MiB
    at worst. Best effort: a no-op where the C library has no ``mallopt``.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


HASHER_NICENESS = 19  # added to the process's own (at most 19)


def lower_this_threads_priority() -> None:
    """Nice the calling thread (Linux schedules threads one by one; elsewhere, and
    where the process may not change it, nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + HASHER_NICENESS))


def usable_cores() -> int:
    """The cores this process may run on (its affinity; all of them elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


BUSY_MESSAGE = "Too many sign-ins are being processed right now. Try again in a moment."


class Passwords:
    """Argon2id hash/verify on bounded threads, with a bounded queue in front."""

    def __init__(
        self, *, concurrency: int = 4, queue: int = 32, memory_kib: int = OWASP_MEMORY_KIB
    ) -> None:
        return_large_blocks_to_the_os()
        concurrency = max(1, min(concurrency, usable_cores()))
        self.concurrency = concurrency
        self._hasher = PasswordHasher(
            time_cost=OWASP_TIME_COST,
            memory_cost=memory_kib,
            parallelism=OWASP_PARALLELISM,
        )
        self._threads = ThreadPoolExecutor(
            max_workers=concurrency,
            thread_name_prefix="paradarum-argon2",
            initializer=lower_this_threads_priority,
        )
        self._capacity = concurrency + queue
        self._in_flight = 0
        self._lock = threading.Lock()
        # Verified against when the email is unknown, so that a wrong email and a
        # wrong password both cost exactly one Argon2 verification.
        self._dummy_hash = self._hasher.hash("paradarum-timing-equaliser")

    def refuse_if_busy(self) -> None:
        """Refuse now (503) when the queue is full, before a caller does any other
        work (a database read) for a request that would be refused anyway."""
        if self._in_flight >= self._capacity:
            raise Unavailable(BUSY_MESSAGE, reason="password hashing queue full", retry_after=1)

    async def _run(self, work: Any, *args: Any) -> Any:
        with self._lock:
            self.refuse_if_busy()
            self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def hash(self, password: str) -> str:
        result: str = await self._run(self._hasher.hash, password)
        return result

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; always runs one verification."""
        result: bool = await self._run(self._verify, stored_hash, password)
        return result

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        target = stored_hash if stored_hash is not None else self._dummy_hash
        try:
            ok: bool = self._hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with weaker parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._threads.shutdown(wait=True)
