"""lastUsedAt: first use shows at once, later uses coalesce to one write a minute,
the value never goes backwards and failures never set it."""

from __future__ import annotations

from tests.support import bearer, create_key, new_account


def _last_used(client, token):
    return client.get("/api/account/apikeys", headers=bearer(token)).json()["data"][0]["lastUsedAt"]


def test_last_used_is_coalesced_to_one_write_a_minute(frozen_client, frozen_runtime, clock):
    token = new_account(frozen_client)
    key = create_key(frozen_client, token)["key"]
    use = lambda: frozen_client.get("/api/account", headers=bearer(key))  # noqa: E731
    assert use().status_code == 200
    first = _last_used(frozen_client, token)
    assert first is not None
    writes = frozen_runtime.usage.writes
    clock.advance(30)
    for _ in range(5):
        assert use().status_code == 200
    assert _last_used(frozen_client, token) == first
    assert frozen_runtime.usage.writes == writes
    clock.advance(31)
    assert use().status_code == 200
    second = _last_used(frozen_client, token)
    assert second > first
    assert frozen_runtime.usage.writes == writes + 1


def test_last_used_never_goes_backwards(frozen_client, clock):
    token = new_account(frozen_client)
    key = create_key(frozen_client, token)["key"]
    clock.advance(120)
    frozen_client.get("/api/account", headers=bearer(key))
    later = _last_used(frozen_client, token)
    clock.advance(-100)  # a process with a clock behind the others
    clock.advance(0)
    frozen_client.get("/api/account", headers=bearer(key))
    assert _last_used(frozen_client, token) == later


def test_failed_attempts_never_set_last_used(frozen_client):
    token = new_account(frozen_client)
    created = create_key(frozen_client, token)
    frozen_client.delete(f"/api/account/apikeys/{created['id']}", headers=bearer(token))
    assert frozen_client.get("/api/account", headers=bearer(created["key"])).status_code == 401
    assert _last_used(frozen_client, token) is None
