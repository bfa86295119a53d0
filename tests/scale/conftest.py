"""Scale-out tests: PostgreSQL only, each test on its own database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _require_postgres
from tests.scale.cluster import instance_env, start_together
from tests.support import ServerProcess, temporary_postgres_database


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Overrides the suite-wide SQLite/PostgreSQL parametrisation: PostgreSQL only."""
    return str(request.param)


@pytest.fixture
def pg_url() -> Iterator[str]:
    _require_postgres()
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    return instance_env(pg_url, tmp_path / "data")


@pytest.fixture
def two_instances(env: dict[str, str], tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Two instances on one database, started at the same moment."""
    servers = start_together(env, 2, tmp_path)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()
