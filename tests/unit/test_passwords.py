"""The password hasher's threads: Argon2id off the event loop, at a lower CPU
priority than the rest of the process."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from paradarum.passwords import HASHER_NICENESS, Passwords


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_hashes_run_on_threads_niced_below_the_rest_of_the_process():
    passwords = Passwords(concurrency=2, memory_kib=1024)
    try:

        def probe() -> tuple[str, int]:
            niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            return threading.current_thread().name, niceness

        # Where hashes and verifications run (the same queue and threads).
        name, niceness = asyncio.run(passwords._run(probe))
        stored = asyncio.run(passwords.hash("correct horse battery"))
        assert asyncio.run(passwords.verify(stored, "correct horse battery"))
        own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert name.startswith("paradarum-argon2")
        assert niceness == min(own + HASHER_NICENESS, 19)
        assert own < niceness  # the rest of the process keeps its priority
    finally:
        passwords.close()
