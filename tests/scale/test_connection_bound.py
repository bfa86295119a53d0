"""One bounded route for hot reads on PostgreSQL: however many key checks wait on a
slow database at once, the process never holds more connections than its pools
allow, and what cannot be served in time is a 503, not a new connection. Key checks
that arrive together share a statement (``db/hotpool.py``'s ``Batcher``): at most
two are under way at once, and a check that cannot be sent within a second is a
503."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.scale.cluster import query
from tests.support import bearer, create_key, new_account, wait_until

POOL = 2


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "db_pool_size": POOL,
        "db_max_overflow": 0,
        "db_pool_timeout": 2.0,
        "notifications_enabled": False,
        "purge_delivery_enabled": False,
    }


def hot_connections(url: str) -> int:
    rows = query(
        url,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'paradarum-hot'",
    )
    return int(rows[0][0])


def hot_reads_waiting_on_a_lock(url: str) -> int:
    rows = query(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'paradarum-hot' AND wait_event_type = 'Lock'",
    )
    return int(rows[0][0])


def test_thirty_slow_key_checks_never_open_more_than_the_pool(client, runtime):
    token = new_account(client)
    key = create_key(client, token)["key"]
    url = runtime.settings.resolved_database_url.replace("postgresql+psycopg", "postgresql")
    most = 0
    statuses: list[int] = []
    done = threading.Event()

    def watch() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, hot_connections(url))
            done.wait(0.05)

    # Every key lookup waits on this lock: the database is "slow" for as long as it is held.
    with psycopg.connect(url, autocommit=False) as blocker:
        blocker.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
        watcher = threading.Thread(target=watch)
        watcher.start()

        def check() -> int:
            return client.get("/api/account", headers=bearer(key)).status_code

        with ThreadPoolExecutor(30) as pool:
            # Two checks, each sent as soon as it arrives: both statements wait on
            # the lock, each on a connection of its own.
            sent = []
            for waiting in (1, 2):
                sent.append(pool.submit(check))
                wait_until(lambda n=waiting: hot_reads_waiting_on_a_lock(url) == n)
            # Twenty-eight more find both under way: they wait to be sent, and are
            # refused after a second.
            late = [pool.submit(check) for _ in range(28)]
            late_statuses = [future.result(timeout=30) for future in late]
            blocker.rollback()  # the database answers again
            statuses = [future.result() for future in sent] + late_statuses
        done.set()
        watcher.join()
    assert most <= POOL, f"{most} hot-read connections for a pool of {POOL}"
    assert statuses[:2] == [200, 200]  # answered once the database was
    assert set(late_statuses) == {503}  # not sent in time
    # And the pool serves again at once.
    assert client.get("/api/account", headers=bearer(key)).status_code == 200
