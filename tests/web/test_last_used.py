"""lastUsedAt: first use shows at once, later uses coalesce to one write a minute,
the value never goes backwards and failures never set it."""

from __future__ import annotations

import asyncio
import threading

from starlette.testclient import TestClient

from tests.support import bearer, create_key, new_account, wait_until


def _last_used(client, token):
    return client.get("/api/account/apikeys", headers=bearer(token)).json()["data"][0]["lastUsedAt"]


def test_a_failing_request_does_not_stop_later_last_used_updates(
    frozen_client, frozen_runtime, clock
):
    token = new_account(frozen_client)
    key = create_key(frozen_client, token)["key"]
    assert frozen_client.get("/api/account", headers=bearer(key)).status_code == 200
    first = _last_used(frozen_client, token)
    clock.advance(120)
    # Authenticated, due for a refresh, and then the route fails: 404.
    assert (
        frozen_client.delete("/api/account/apikeys/999999", headers=bearer(key)).status_code == 404
    )
    wait_until(lambda: _last_used(frozen_client, token) > first)
    second = _last_used(frozen_client, token)
    clock.advance(120)
    assert frozen_client.get("/api/account", headers=bearer(key)).status_code == 200
    wait_until(lambda: _last_used(frozen_client, token) > second)


def test_last_used_never_goes_backwards(settings):
    """Two processes on one database, the second's clock 100 s behind: both find the
    key due for a refresh, the first writes, then the second's write arrives with
    its older time. The conditional UPDATE refuses it: lastUsedAt never goes back."""
    from paradarum.clock import FrozenClock
    from paradarum.db.migrate import upgrade
    from paradarum.passwords import Passwords
    from paradarum.runtime import build_runtime
    from paradarum.web.app import create_app
    from tests.support import PeerFromHeader

    ahead, behind = FrozenClock(), FrozenClock()
    behind.now = ahead.now
    runtimes = [
        build_runtime(settings, clock=clock, passwords=Passwords(concurrency=2, memory_kib=1024))
        for clock in (ahead, behind)
    ]
    upgrade(runtimes[0].db)
    # The second process's refresh is held (before its transaction begins) until the
    # first has written its own.
    gate = threading.Event()
    original = runtimes[1].usage.record_last_used

    async def held(*args, **kwargs):
        await asyncio.to_thread(gate.wait, 10)
        return await original(*args, **kwargs)

    runtimes[1].usage.record_last_used = held
    try:
        with (
            TestClient(PeerFromHeader(create_app(runtime=runtimes[0]))) as first,
            TestClient(PeerFromHeader(create_app(runtime=runtimes[1]))) as second,
        ):
            token = new_account(first)
            key = create_key(first, token)["key"]
            assert first.get("/api/account", headers=bearer(key)).status_code == 200
            initial = _last_used(first, token)
            ahead.advance(200)
            behind.advance(100)  # 100 s behind the first process
            assert second.get("/api/account", headers=bearer(key)).status_code == 200
            assert first.get("/api/account", headers=bearer(key)).status_code == 200
            wait_until(lambda: _last_used(first, token) > initial)
            newest = _last_used(first, token)
            gate.set()
            wait_until(lambda: not runtimes[1].usage._pending_last_used)
            assert _last_used(first, token) == newest
            assert runtimes[1].usage.last_used_writes == 0
    finally:
        gate.set()
        for runtime in runtimes:
            runtime.close()


def test_failed_attempts_never_set_last_used(frozen_client):
    token = new_account(frozen_client)
    created = create_key(frozen_client, token)
    frozen_client.delete(f"/api/account/apikeys/{created['id']}", headers=bearer(token))
    assert frozen_client.get("/api/account", headers=bearer(created["key"])).status_code == 401
    assert _last_used(frozen_client, token) is None
