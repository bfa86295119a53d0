"""SQLite's hot reads keep their rows only while no connection has committed
(``db/hotrows.py``): a commit by any other connection is seen by the next turn of
the event loop, an unchanged database is not read again, and a row that depends
on the time (``activeKeys``) is kept only until its answer changes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest

from paradarum import keys
from paradarum.db import queries
from paradarum_client.models import rfc3339
from tests.support import bearer, create_key, login, signup

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _statements(db) -> list[str]:
    seen: list[str] = []
    db._sqlite_reader().set_trace_callback(seen.append)
    return seen


def test_a_kept_row_is_read_again_once_another_connection_commits(client, runtime):
    signup(client, "kept@example.com")
    token = login(client, "kept@example.com")
    raw = create_key(client, token)["key"]
    lookup = (keys.hash_key(raw),)
    db = runtime.db
    at = datetime.now(UTC)

    async def scenario() -> None:
        first = await db.hot_read(queries.KEY, lookup, at=at, keep=True)
        assert first is not None and first[3]  # usable
        seen = _statements(db)

        # Later turns, nothing committed: only SQLite's change counter is asked,
        # once per turn, however many reads the turn makes.
        await asyncio.sleep(0)
        assert await db.hot_read(queries.KEY, lookup, at=at, keep=True) == first
        assert await db.hot_read(queries.KEY, lookup, at=at, keep=True) == first
        assert seen == ["PRAGMA data_version"]

        # Another connection (as another process would) revokes the key.
        other = sqlite3.connect(db.sqlite_path)
        with other:
            other.execute(
                "UPDATE api_keys SET revoked_at = '2026-12-01 00:00:00.000000' WHERE key_hash = ?",
                lookup,
            )
        other.close()
        await asyncio.sleep(0)
        seen.clear()
        after = await db.hot_read(queries.KEY, lookup, at=at, keep=True)
        assert after is not None and not after[3]  # revoked
        assert seen[0] == "PRAGMA data_version" and any("key_hash" in s for s in seen[1:])

    asyncio.run(scenario())
    # And over HTTP: the key is refused on the next request.
    assert client.get("/api/account", headers=bearer(raw)).status_code == 401


def test_a_revoke_through_the_api_is_seen_by_the_next_request(client):
    signup(client, "next@example.com")
    token = login(client, "next@example.com")
    created = create_key(client, token)
    for _ in range(3):  # kept now
        assert client.get("/api/account", headers=bearer(created["key"])).status_code == 200
    revoked = client.delete(f"/api/account/apikeys/{created['id']}", headers=bearer(token))
    assert revoked.status_code == 200
    assert client.get("/api/account", headers=bearer(created["key"])).status_code == 401
    # Sessions are kept the same way: signing out ends the token at once.
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 200
    assert client.get("/api/account", headers=bearer(token)).status_code == 401


def test_active_keys_follows_the_clock_without_a_commit(frozen_client, clock, runtime_db):
    signup(frozen_client, "clock@example.com")
    token = login(frozen_client, "clock@example.com")
    expires = clock.now + timedelta(hours=1)
    body = {"name": "expiring", "expiresAt": rfc3339(expires)}
    assert (
        frozen_client.post("/api/account/apikeys", json=body, headers=bearer(token)).status_code
        == 201
    )
    forever = create_key(frozen_client, token, name="forever")["key"]

    def active() -> int:
        response = frozen_client.get("/api/account", headers=bearer(forever))
        assert response.status_code == 200
        return int(response.json()["data"]["activeKeys"])

    seen = _statements(runtime_db)

    def summaries() -> int:
        return len([statement for statement in seen if "count(*)" in statement])

    # The key's first use writes (lastUsedAt, the security log): commits. Once
    # they are done, answers come from the kept row.
    for _ in range(50):
        before = summaries()
        assert active() == 2
        if summaries() == before:
            break
        time.sleep(0.05)
    else:
        pytest.fail("every answer read the database again")
    seen.clear()

    clock.advance(3600 + 1)  # past the expiry: no commit, yet the count changes
    assert active() == 1
    assert summaries() == 1
    clock.advance(-7200)  # a clock that goes back is answered for its own moment
    assert active() == 2


@pytest.fixture
def runtime_db(frozen_runtime):
    return frozen_runtime.db


def test_a_row_for_a_moment_is_kept_from_that_moment_until_its_answer_changes(
    frozen_client, clock, runtime_db
):
    signup(frozen_client, "moments@example.com")
    token = login(frozen_client, "moments@example.com")
    start = clock.now
    for hours in (1, 2):
        body = {"name": f"{hours} h", "expiresAt": rfc3339(start + timedelta(hours=hours))}
        response = frozen_client.post("/api/account/apikeys", json=body, headers=bearer(token))
        assert response.status_code == 201
    account_id = frozen_client.get("/api/account", headers=bearer(token)).json()["data"]["id"]
    db = runtime_db

    async def active(at) -> int:
        await asyncio.sleep(0)  # a turn of its own, as a request would have
        row = await db.hot_read(queries.SUMMARY, (account_id, account_id), at=at, keep=True)
        assert row is not None and len(row) == 6  # the "until" column is not returned
        return int(row[4])

    seen = _statements(db)

    def read_again() -> bool:
        count = len([statement for statement in seen if "count(*)" in statement])
        seen.clear()
        return count > 0

    async def scenario() -> list[tuple[int, bool]]:
        # The first answer may come from the row GET /api/account kept above.
        await active(start)
        read_again()
        moments = [
            timedelta(minutes=59),  # before the first expiry: kept, same answer
            timedelta(minutes=61),  # one expired: read again
            timedelta(minutes=30),  # earlier than the row kept: read again
            timedelta(hours=3),  # both expired: read again
        ]
        return [(await active(start + moment), read_again()) for moment in moments]

    assert asyncio.run(scenario()) == [(2, False), (1, True), (2, True), (0, True)]
