"""Password hashing with Argon2id, bounded so that a burst of sign-ins cannot
exhaust memory.

Parameters follow OWASP's Password Storage Cheat Sheet (m=19 MiB, t=2, p=1).
Each hash or verification holds ~19 MiB for a few tens of milliseconds, so a
semaphore caps how many run at once per process; the rest wait their turn.
"""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


class Passwords:
    """Argon2id hash/verify with a cap on concurrent work."""

    def __init__(self, *, concurrency: int = 4, memory_kib: int = OWASP_MEMORY_KIB) -> None:
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
