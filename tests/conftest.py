"""Fixtures. Every storage-touching test runs on SQLite and on PostgreSQL
(``backend`` is parametrised); each test gets its own database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from paradarum.clock import FrozenClock
from paradarum.config import Settings
from paradarum.db.migrate import upgrade
from paradarum.passwords import Passwords
from paradarum.runtime import Runtime, build_runtime
from paradarum.web.app import create_app
from tests.support import (
    IN_CI,
    REDIS_URL,
    PeerFromHeader,
    postgres_available,
    random_secret,
    redis_available,
    temporary_postgres_database,
    temporary_redis_prefix,
)

_pg_state: dict[str, bool] = {}
_redis_state: dict[str, bool] = {}


def _require_postgres() -> None:
    if "ok" not in _pg_state:
        _pg_state["ok"] = postgres_available()
    if not _pg_state["ok"]:
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (required in CI)")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A private key prefix in the test Redis (``REDIS_URL``); skipped without Redis
    locally, a failure in CI."""
    if "ok" not in _redis_state:
        _redis_state["ok"] = redis_available()
    if not _redis_state["ok"]:
        if IN_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (required in CI)")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    with temporary_redis_prefix() as prefix:
        yield prefix


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str | None]:
    """None for the SQLite default (a file under the test's data dir)."""
    if backend == "sqlite":
        yield None
        return
    _require_postgres()
    with temporary_postgres_database() as url:
        yield url


def make_settings(data_dir: Path, database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": data_dir, "access_log": True}
    if database_url:
        values["database_url"] = database_url
        values["jwt_secret"] = random_secret()
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str | None, settings_overrides: dict[str, object]
) -> Settings:
    return make_settings(tmp_path / "data", database_url, **settings_overrides)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Real clock; Argon2id with small memory so the suite stays quick."""
    rt = build_runtime(settings, passwords=Passwords(concurrency=4, memory_kib=1024))
    upgrade(rt.db)
    yield rt
    rt.close()


@pytest.fixture
def frozen_runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    rt = build_runtime(
        settings,
        clock=clock,
        passwords=Passwords(concurrency=4, memory_kib=1024),
        # Chance stands still with the clock: a retry waits its full backoff.
        chance=lambda: 0.0,
    )
    upgrade(rt.db)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = PeerFromHeader(create_app(runtime=runtime))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def frozen_client(frozen_runtime: Runtime) -> Iterator[TestClient]:
    app = PeerFromHeader(create_app(runtime=frozen_runtime))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
