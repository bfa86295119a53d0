"""Password hashing with Argon2id, bounded so that a burst of sign-ins cannot
exhaust memory.

Parameters follow OWASP's Password Storage Cheat Sheet (m=19 MiB, t=2, p=1).
Each hash or verification holds ~19 MiB for a few tens of milliseconds, so a
semaphore caps how many run at once per process; the rest wait their turn.
"""

from __future__ import annotations

import ctypes
import sys
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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


class Passwords:
    """Argon2id hash/verify with a cap on concurrent work."""

    def __init__(self, *, concurrency: int = 4, memory_kib: int = OWASP_MEMORY_KIB) -> None:
        return_large_blocks_to_the_os()
        self._hasher = PasswordHasher(
            time_cost=OWASP_TIME_COST,
            memory_cost=memory_kib,
            parallelism=OWASP_PARALLELISM,
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        # Verified against when the email is unknown, so that a wrong email and a
        # wrong password both cost exactly one Argon2 verification.
        self._dummy_hash = self._hasher.hash("paradarum-timing-equaliser")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; always runs one verification."""
        target = stored_hash if stored_hash is not None else self._dummy_hash
        with self._slots:
            ok: bool
            try:
                ok = self._hasher.verify(target, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
