"""Hot-path rules that only real ``paradarum serve`` processes can show."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support import PASSWORD, bearer, random_secret, start_server

pytestmark = pytest.mark.slow


def server_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    env = {"PARADARUM_DATA_DIR": str(tmp_path / "data"), "PARADARUM_ACCESS_LOG": "false"}
    if database_url:
        env["PARADARUM_DATABASE_URL"] = database_url
        env["PARADARUM_JWT_SECRET"] = random_secret()
    return env


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not found")


def test_revoked_key_is_refused_by_every_worker_process_on_the_next_request(tmp_path, database_url):
    server = start_server(
        server_env(tmp_path, database_url), workers=2, log_path=tmp_path / "server.log"
    )
    try:
        base = server.base_url
        body = {"email": "workers@example.com", "password": PASSWORD}
        assert httpx.post(base + "/api/auth/signup", json=body, timeout=30).status_code == 201
        token = httpx.post(base + "/api/auth/login", json=body, timeout=30).json()["data"]["token"]
        created = httpx.post(
            base + "/api/account/apikeys", json={"name": "k"}, headers=bearer(token), timeout=30
        ).json()["data"]
        # Fresh connections land on both workers; each has now looked the key up.
        for _ in range(20):
            response = httpx.get(base + "/api/account", headers=bearer(created["key"]), timeout=30)
            assert response.status_code == 200
        revoked = httpx.delete(
            f"{base}/api/account/apikeys/{created['id']}", headers=bearer(token), timeout=30
        )
        assert revoked.status_code == 200
        for _ in range(20):
            response = httpx.get(base + "/api/account", headers=bearer(created["key"]), timeout=30)
            assert response.status_code == 401
    finally:
        server.stop()


def test_two_hundred_simultaneous_sign_ins_keep_the_server_up_and_its_memory_bounded(
    tmp_path,
):
    """Argon2id (OWASP: 19 MiB each) runs at most ``password_hash_concurrency``
    (4) at a time: 200 sign-ins at once wait their turn instead of allocating
    200 x 19 MiB (or one per thread-pool thread, 40 x 19 MiB)."""
    server = start_server(server_env(tmp_path, None), log_path=tmp_path / "server.log")
    try:
        base = server.base_url
        body = {"email": "burst@example.com", "password": PASSWORD}
        assert httpx.post(base + "/api/auth/signup", json=body, timeout=60).status_code == 201
        assert httpx.post(base + "/api/auth/login", json=body, timeout=60).status_code == 200
        before = rss_kib(server.process.pid)

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
                responses = await asyncio.gather(
                    *(client.post("/api/auth/login", json=body) for _ in range(200))
                )
            return [response.status_code for response in responses]

        statuses = asyncio.run(burst())
        assert statuses == [200] * 200
        assert httpx.get(base + "/api/health", timeout=30).status_code == 200
        peak = rss_kib(server.process.pid, "VmHWM")
        # Four concurrent hashes need ~4 x 19 MiB; allow slack for buffers, but far
        # below the ~760 MiB that 40 unbounded thread-pool hashes would take.
        assert peak - before < 200 * 1024, f"peak grew by {(peak - before) // 1024} MiB"
    finally:
        server.stop()
