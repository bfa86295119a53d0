"""Migrations are safe when many instances start at once (PostgreSQL advisory lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy.exc import ProgrammingError

from paradarum.config import Settings
from paradarum.db.migrate import ADVISORY_LOCK_ID, head_revision, upgrade
from paradarum.db.tables import metadata
from paradarum.runtime import open_database
from tests.scale.cluster import query
from tests.support import free_port

# Advisory locks on this test's database only (other databases share the server).
_ADVISORY_LOCKS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _cli(*args: str, env_overrides: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env.update(env_overrides)
    return subprocess.Popen(
        [sys.executable, "-m", "paradarum", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _tables(url: str) -> set[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


def test_db_upgrade_waits_for_the_advisory_lock_held_by_another_instance(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as holder:
        # Another instance is migrating: it holds the lock.
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
        process = _cli("db", "upgrade", env_overrides={"PARADARUM_DATABASE_URL": pg_url})
        try:
            waiting = []
            deadline = time.monotonic() + 60
            while not waiting and time.monotonic() < deadline:
                assert process.poll() is None, process.communicate()[0]
                waiting = holder.execute(_ADVISORY_LOCKS + " AND NOT granted").fetchall()
                time.sleep(0.05)
            assert waiting, "db upgrade never queued for the migration lock"
            # Queued behind the lock, it has not touched the schema.
            assert "alembic_version" not in _tables(pg_url)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))
        output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    # The schema was empty when it got the lock: it made it.
    assert "Created the PostgreSQL database" in output
    assert _tables(pg_url) >= set(metadata.tables) | {"alembic_version"}


def test_many_upgrades_at_once_all_succeed_and_migrate_once(pg_url):
    databases = [open_database(Settings(database_url=pg_url)) for _ in range(6)]
    barrier = threading.Barrier(len(databases))

    def migrate(index: int) -> None:
        barrier.wait()
        upgrade(databases[index])

    try:
        with ThreadPoolExecutor(len(databases)) as pool:
            for future in [pool.submit(migrate, i) for i in range(len(databases))]:
                future.result()  # a duplicate-table error would surface here
        head = head_revision(databases[0])
    finally:
        for db in databases:
            db.close()
    assert query(pg_url, "SELECT version_num FROM alembic_version") == [(head,)]
    # Every lock was released: nobody holds or waits for it any more.
    assert query(pg_url, _ADVISORY_LOCKS) == []


def test_serve_on_postgresql_refuses_to_start_without_a_shared_jwt_secret(pg_url, tmp_path):
    process = _cli(
        "serve",
        "--port",
        "0",
        env_overrides={"PARADARUM_DATABASE_URL": pg_url, "PARADARUM_DATA_DIR": str(tmp_path)},
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "PARADARUM_JWT_SECRET" in output
    assert "alembic_version" not in _tables(pg_url)  # refused before touching anything


def test_serve_refuses_a_short_jwt_secret(pg_url, tmp_path):
    secret = "too-short"
    process = _cli(
        "serve",
        "--port",
        "0",
        env_overrides={
            "PARADARUM_DATABASE_URL": pg_url,
            "PARADARUM_DATA_DIR": str(tmp_path),
            "PARADARUM_JWT_SECRET": secret,
        },
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "at least 32 characters" in output
    assert secret not in output


def test_a_failed_migration_reports_its_error_and_releases_the_lock(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE api_keys (stray integer)")  # in the way of 0001
    db = open_database(Settings(database_url=pg_url))
    try:
        with pytest.raises(ProgrammingError, match="already exists"):
            upgrade(db)
        assert query(pg_url, _ADVISORY_LOCKS) == []  # the next instance is not blocked forever
        assert "alembic_version" not in _tables(pg_url)  # transactional DDL: all or nothing
    finally:
        db.close()


def test_unreachable_database_is_one_clear_line_and_a_nonzero_exit(tmp_path):
    url = f"postgresql://paradarum:not-a-real-password@127.0.0.1:{free_port()}/paradarum"
    for args in (("db", "upgrade"), ("serve", "--port", str(free_port()))):
        process = _cli(
            *args,
            env_overrides={
                "PARADARUM_DATABASE_URL": url,
                "PARADARUM_DATA_DIR": str(tmp_path),
                "PARADARUM_JWT_SECRET": "x" * 48,
            },
        )
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 1, output
        assert "Cannot use the database" in output
        assert "Traceback" not in output
        assert "not-a-real-password" not in output


def test_waiting_for_a_long_migration_is_not_cut_by_the_statement_timeout(pg_url):
    db = open_database(Settings(database_url=pg_url, db_statement_timeout=0.2))
    release = threading.Event()

    def other_instance_migrating() -> None:
        with psycopg.connect(pg_url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
            release.wait(30)

    holder = threading.Thread(target=other_instance_migrating)
    holder.start()
    try:
        wait_for_lock_holder = time.monotonic() + 30
        while not query(pg_url, _ADVISORY_LOCKS) and time.monotonic() < wait_for_lock_holder:
            time.sleep(0.02)
        # Release only after several statement timeouts' worth of waiting.
        threading.Timer(1.0, release.set).start()
        upgrade(db)
        assert query(pg_url, "SELECT version_num FROM alembic_version") == [(head_revision(db),)]
        # The connection goes back to the pool with the ordinary timeout.
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "200ms"
    finally:
        release.set()
        holder.join()
        db.close()
