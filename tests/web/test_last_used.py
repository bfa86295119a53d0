"""lastUsedAt: first use shows at once, later uses coalesce to one write a minute,
the value never goes backwards and failures never set it."""

from __future__ import annotations

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
