"""Helpers for tests that run several real ``paradarum serve`` instances on one
PostgreSQL database, and for tests that take that database away."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support import PG_ADMIN_URL, ServerProcess, random_secret, start_server


def instance_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """What every instance of one deployment shares: database and signing secret.

    Abuse limits are per process and would turn a load test into a 429 test, so
    they are lifted here; the rules under test (key limit, revoke) are not limits
    of that kind.
    """
    env = {
        "PARADARUM_DATABASE_URL": database_url,
        "PARADARUM_JWT_SECRET": _shared_secret(database_url),
        "PARADARUM_DATA_DIR": str(data_dir),
        "PARADARUM_AUTH_FAILURES_PER_ADDRESS": "1000000",
        "PARADARUM_KEY_CREATIONS_PER_ACCOUNT": "1000000",
        "PARADARUM_LOGIN_FAILURES_PER_ADDRESS": "1000000",
        "PARADARUM_ACCESS_LOG": "false",
    }
    env.update(extra)
    return env


_secrets: dict[str, str] = {}


def _shared_secret(database_url: str) -> str:
    return _secrets.setdefault(database_url, random_secret())


def start_together(env: dict[str, str], count: int, log_dir: Path) -> list[ServerProcess]:
    """Start ``count`` instances at the same moment (each runs migrations on start)."""
    barrier = threading.Barrier(count)

    def start(index: int) -> ServerProcess:
        barrier.wait()
        return start_server(env, log_path=log_dir / f"instance-{index}.log")

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(start, index) for index in range(count)]
    servers: list[ServerProcess] = []
    errors: list[BaseException] = []
    for future in futures:
        try:
            servers.append(future.result())
        except BaseException as exc:
            errors.append(exc)
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]
    return servers


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def sha256_hex(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@contextlib.contextmanager
def database_unreachable(url: str) -> Iterator[None]:
    """Take one test database away from every client, as an outage would, without
    touching the PostgreSQL server that other tests share: new connections are
    refused and the live ones are terminated. Always given back on exit."""
    name = database_name(url)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            terminate_backends(url, admin=admin)
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def terminate_backends(url: str, *, admin: psycopg.Connection[Any] | None = None) -> int:
    """Kill every server-side connection to one database (what a restart does to it)."""
    sql = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()"
    )
    if admin is not None:
        row = admin.execute(sql, (database_name(url),)).fetchone()
    else:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as own:
            row = own.execute(sql, (database_name(url),)).fetchone()
    return int(row[0]) if row else 0


def pg_dump(url: str) -> str:
    """Every row of every table, as ``pg_dump`` writes it."""
    return subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def envelope(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) >= {"succeeded", "message", "data"}, body
    return body
