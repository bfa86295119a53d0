"""Rules of the authentication hot path: what gets refused, and when
``lastUsedAt`` is written (once on first use, then at most once a minute)."""

from __future__ import annotations

import psycopg
import pytest

from paradarum.db import queries
from tests.support import bearer, create_key, login, new_account, signup, wait_until


def last_used(client, token):
    return client.get("/api/account/apikeys", headers=bearer(token)).json()["data"][0]["lastUsedAt"]


def test_last_used_at_is_written_once_a_minute_at_most_and_never_goes_back(
    frozen_client, frozen_runtime, clock
):
    token = new_account(frozen_client)
    key = create_key(frozen_client, token)["key"]
    usage = frozen_runtime.usage
    for _ in range(20):
        assert frozen_client.get("/api/account", headers=bearer(key)).status_code == 200
    first = last_used(frozen_client, token)
    assert first is not None
    assert usage.last_used_writes == 1
    clock.advance(59)
    for _ in range(20):
        frozen_client.get("/api/account", headers=bearer(key))
    assert usage.last_used_writes == 1
    assert last_used(frozen_client, token) == first
    clock.advance(2)
    for _ in range(20):
        frozen_client.get("/api/account", headers=bearer(key))
    # Refreshes are written after the answer, off the event loop.
    wait_until(lambda: usage.last_used_writes == 2)
    for _ in range(20):
        frozen_client.get("/api/account", headers=bearer(key))
    assert usage.last_used_writes == 2
    second = last_used(frozen_client, token)
    assert second > first


def test_expired_session_is_refused_even_though_it_was_verified_before(
    frozen_client, frozen_runtime, clock
):
    token = new_account(frozen_client)
    assert frozen_client.get("/api/account", headers=bearer(token)).status_code == 200
    clock.advance(frozen_runtime.settings.jwt_lifetime_seconds + 1)
    assert frozen_client.get("/api/account", headers=bearer(token)).status_code == 401


def test_signed_out_session_is_refused_on_the_very_next_request(client):
    token = new_account(client)
    assert client.get("/api/account", headers=bearer(token)).status_code == 200
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 200
    assert client.get("/api/account", headers=bearer(token)).status_code == 401


def test_password_change_ends_verified_sessions_on_the_very_next_request(client):
    email = "changer@example.com"
    signup(client, email)
    token, other = login(client, email), login(client, email)
    assert client.get("/api/account", headers=bearer(other)).status_code == 200
    response = client.post(
        "/api/account/password",
        json={"currentPassword": "correct horse battery staple", "newPassword": "a new password!"},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    assert client.get("/api/account", headers=bearer(other)).status_code == 401


def test_account_summary_counts_only_active_keys(client):
    token = new_account(client, "counter@example.com")
    keys = [create_key(client, token, f"k{i}") for i in range(3)]
    client.delete(f"/api/account/apikeys/{keys[0]['id']}", headers=bearer(token))
    data = client.get("/api/account", headers=bearer(keys[1]["key"])).json()["data"]
    assert data["activeKeys"] == 2
    assert data["email"] == "counter@example.com"
    assert data["createdAt"].endswith("Z")


def test_key_lookup_survives_its_database_connection_being_cut(client, runtime, backend):
    """PostgreSQL hot reads skip the checkout ping (one round trip); a connection
    the server has dropped is replaced and the read retried, not failed."""
    if backend != "postgresql":
        pytest.skip("connection loss is a network-database matter")
    token = new_account(client)
    key = create_key(client, token)["key"]
    assert client.get("/api/account", headers=bearer(key)).status_code == 200
    url = runtime.settings.resolved_database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'paradarum-hot'"
        ).fetchall()
    assert cut, "the hot-read pool held no connection to cut"
    assert client.get("/api/account", headers=bearer(key)).status_code == 200


def test_a_key_authenticated_get_account_is_one_read(client, runtime, monkeypatch):
    """The key and what GET /api/account shows come from one statement: on
    PostgreSQL one round trip per request."""
    token = new_account(client)
    key = create_key(client, token)["key"]
    assert client.get("/api/account", headers=bearer(key)).status_code == 200  # first use
    reads: list[str] = []
    read = runtime.db.hot_read

    async def counted(query, *args, **kwargs):
        reads.append(query.name)
        return await read(query, *args, **kwargs)

    monkeypatch.setattr(runtime.db, "hot_read", counted)
    response = client.get("/api/account", headers=bearer(key))
    assert response.status_code == 200
    assert reads == [queries.KEY_WITH_ACCOUNT.name]
    assert response.json()["data"]["activeKeys"] == 1
    # Any other route reads the key alone.
    reads.clear()
    assert client.get("/api/account/apikeys", headers=bearer(key)).status_code == 200
    assert reads == [queries.KEY.name]
