"""Hot-path rules that only real ``paradarum serve`` processes can show."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from paradarum.passwords import usable_cores
from tests.support import (
    PASSWORD,
    bearer,
    random_secret,
    rss_kib,
    start_server,
    until,
    worker_pids,
)

pytestmark = pytest.mark.slow


def server_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    env = {"PARADARUM_DATA_DIR": str(tmp_path / "data"), "PARADARUM_ACCESS_LOG": "false"}
    if database_url:
        env["PARADARUM_DATABASE_URL"] = database_url
        env["PARADARUM_JWT_SECRET"] = random_secret()
    return env


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


def test_under_load_every_request_sent_after_a_revoke_is_answered_401(tmp_path, database_url):
    """Two worker processes busy with one key (32 requests at a time): every
    request sent after the revoke was acknowledged, on whichever process, is
    refused. On SQLite the processes keep rows between commits (db/hotrows.py);
    this is the guarantee they keep."""
    server = start_server(
        server_env(tmp_path, database_url), workers=2, log_path=tmp_path / "server.log"
    )
    try:
        base = server.base_url
        body = {"email": "load@example.com", "password": PASSWORD}
        assert httpx.post(base + "/api/auth/signup", json=body, timeout=30).status_code == 201
        token = httpx.post(base + "/api/auth/login", json=body, timeout=30).json()["data"]["token"]
        created = httpx.post(
            base + "/api/account/apikeys", json={"name": "busy"}, headers=bearer(token), timeout=30
        ).json()["data"]

        async def load() -> tuple[float, list[tuple[float, int]]]:
            answers: list[tuple[float, int]] = []
            limits = httpx.Limits(max_connections=40)
            async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
                stop = asyncio.Event()

                async def hammer() -> None:
                    while not stop.is_set():
                        sent = time.monotonic()
                        response = await client.get("/api/account", headers=bearer(created["key"]))
                        answers.append((sent, response.status_code))

                workers = [asyncio.ensure_future(hammer()) for _ in range(32)]
                await until(lambda: sum(status == 200 for _, status in answers) > 50, timeout=60)
                revoked = await client.delete(
                    f"/api/account/apikeys/{created['id']}", headers=bearer(token)
                )
                assert revoked.status_code == 200
                acknowledged = time.monotonic()
                await until(
                    lambda: sum(sent > acknowledged for sent, _ in answers) > 50, timeout=60
                )
                stop.set()
                await asyncio.gather(*workers)
            return acknowledged, answers

        acknowledged, answers = asyncio.run(load())
        before = [status for sent, status in answers if sent < acknowledged]
        after = [status for sent, status in answers if sent > acknowledged]
        assert before.count(200) > 50 and len(after) > 50
        # 401, and 429 once the address has failed too often.
        assert 200 not in after, f"{after.count(200)} of {len(after)} answered 200"
        assert set(after) <= {401, 429} and after[0] == 401
    finally:
        server.stop()


def test_two_hundred_simultaneous_sign_ins_do_not_slow_keys_or_readiness(tmp_path):
    """Argon2id runs on threads of its own behind a bounded queue: a burst of 200
    correct sign-ins is answered at once beyond the queue (503 + Retry-After), the
    rest in turn, while key checks, a key list, a revoke and readiness go on
    (they never wait for the hasher), and memory stays bounded (at most 4 hashes
    of 19 MiB at a time, one per core, not one per waiting request)."""
    env = server_env(tmp_path, None)
    # The burst stands for 200 people, not one client: the per-client share of
    # requests in flight (tested on its own) is lifted above it.
    env["PARADARUM_MAX_REQUESTS_PER_CLIENT"] = "1000"
    server = start_server(env, log_path=tmp_path / "server.log")
    try:
        base = server.base_url
        body = {"email": "burst@example.com", "password": PASSWORD}
        assert httpx.post(base + "/api/auth/signup", json=body, timeout=60).status_code == 201
        token = httpx.post(base + "/api/auth/login", json=body, timeout=60).json()["data"]["token"]
        keys = [
            httpx.post(
                base + "/api/account/apikeys", json={"name": f"k{i}"}, headers=bearer(token)
            ).json()["data"]
            for i in range(2)
        ]
        (worker,) = worker_pids(server.process.pid)
        before = rss_kib(worker)

        async def burst() -> tuple[list[httpx.Response], list[httpx.Response]]:
            limits = httpx.Limits(max_connections=250)
            async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
                sign_ins = [
                    asyncio.ensure_future(client.post("/api/auth/login", json=body))
                    for _ in range(200)
                ]
                # The burst has reached the server (the first answers are those
                # beyond the hasher's queue): the hasher is busy from now on.
                await asyncio.wait(sign_ins, return_when=asyncio.FIRST_COMPLETED)
                others = await asyncio.gather(
                    client.get("/api/account", headers=bearer(keys[0]["key"])),
                    client.get("/api/account/apikeys", headers=bearer(keys[0]["key"])),
                    client.delete(
                        f"/api/account/apikeys/{keys[1]['id']}", headers=bearer(keys[0]["key"])
                    ),
                    client.get("/api/health/ready"),
                )
                return list(await asyncio.gather(*sign_ins)), list(others)

        sign_ins, others = asyncio.run(burst())
        assert [response.status_code for response in others] == [200, 200, 200, 200]
        statuses = {response.status_code for response in sign_ins}
        assert statuses <= {200, 503}
        # As many hashes at once as the server has cores (4 at most), and 32 waiting.
        hashing = min(4, usable_cores())
        assert sum(response.status_code == 200 for response in sign_ins) >= hashing + 32
        for response in sign_ins:
            if response.status_code == 503:
                assert int(response.headers["retry-after"]) >= 1
        peak = rss_kib(worker, "VmHWM")
        # Four concurrent hashes need ~4 x 19 MiB; allow slack for buffers, but far
        # below the ~3.8 GiB that 200 unbounded hashes would take.
        assert peak - before < 200 * 1024, f"peak grew by {(peak - before) // 1024} MiB"
    finally:
        server.stop()


REVOKES = 500


def test_a_revoke_on_either_instance_is_seen_by_the_next_request_on_both_500_times(
    tmp_path, database_url
):
    """Two instances (separate ``paradarum serve`` processes) on one database: each
    of 500 keys is used on both (so each may keep it), revoked through one of them in
    turn, and the very next request with it is refused on both."""
    env = server_env(tmp_path, database_url)
    env["PARADARUM_KEY_CREATIONS_PER_ACCOUNT"] = "1000000"
    env["PARADARUM_AUTH_FAILURES_PER_ADDRESS"] = "1000000"
    first = start_server(env, log_path=tmp_path / "first.log")
    second = start_server(env, log_path=tmp_path / "second.log")
    try:
        with (
            httpx.Client(base_url=first.base_url, timeout=30) as one,
            httpx.Client(base_url=second.base_url, timeout=30) as other,
        ):
            body = {"email": "instances@example.com", "password": PASSWORD}
            assert one.post("/api/auth/signup", json=body).status_code == 201
            token = other.post("/api/auth/login", json=body).json()["data"]["token"]
            for number in range(REVOKES):
                revoker, bystander = (one, other) if number % 2 == 0 else (other, one)
                created = bystander.post(
                    "/api/account/apikeys", json={"name": f"k{number}"}, headers=bearer(token)
                )
                assert created.status_code == 201, created.text
                key, key_id = created.json()["data"]["key"], created.json()["data"]["id"]
                for instance in (one, other):
                    assert instance.get("/api/account", headers=bearer(key)).status_code == 200
                revoked = revoker.delete(f"/api/account/apikeys/{key_id}", headers=bearer(token))
                assert revoked.status_code == 200, revoked.text
                for instance in (bystander, revoker):
                    refused = instance.get("/api/account", headers=bearer(key))
                    assert refused.status_code == 401, (number, str(instance.base_url))
    finally:
        first.stop()
        second.stop()
