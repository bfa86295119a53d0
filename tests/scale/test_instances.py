"""Every rule of API.md holds across instances exactly as in one process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from paradarum.config import Settings
from paradarum.db.migrate import head_revision
from paradarum.db.tables import metadata
from paradarum.runtime import open_database
from tests.scale.cluster import envelope, pg_dump, query, sha256_hex
from tests.support import PASSWORD, bearer

pytestmark = pytest.mark.slow


def _signup_and_login(base_url: str, email: str) -> str:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        created = http.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text
        signed_in = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        return str(signed_in.json()["data"]["token"])


def _all_at_once(calls: list[tuple[str, str, str, dict[str, str], object]]) -> list[httpx.Response]:
    """Fire (method, base_url, path, headers, json) requests behind one barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: tuple[str, str, str, dict[str, str], object]) -> httpx.Response:
        method, base_url, path, headers, body = call
        with httpx.Client(base_url=base_url, timeout=60) as http:
            barrier.wait()
            return http.request(method, path, headers=headers, json=body)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_instances_started_together_migrate_once_without_errors(two_instances, pg_url):
    ran = [server for server in two_instances if "Running upgrade" in server.output()]
    assert len(ran) == 1  # the other waited for the lock, then found nothing to do
    for server in two_instances:
        log = server.output()
        assert "already exists" not in log
        assert "Traceback" not in log
        ready = httpx.get(server.base_url + "/api/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
    db = open_database(Settings(database_url=pg_url))
    try:
        head = head_revision(db)
    finally:
        db.close()
    assert query(pg_url, "SELECT version_num FROM alembic_version") == [(head,)]
    tables = {
        row[0]
        for row in query(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables >= set(metadata.tables)


def test_thirty_creates_over_two_instances_give_exactly_ten_keys(two_instances, pg_url):
    a, b = (server.base_url for server in two_instances)
    token = _signup_and_login(a, "limit@example.com")
    calls = [
        ("POST", (a, b)[i % 2], "/api/account/apikeys", bearer(token), {"name": f"key {i}"})
        for i in range(30)
    ]
    responses = _all_at_once(calls)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 10 + [400] * 20, statuses
    for response in responses:
        body = envelope(response)
        if response.status_code == 400:
            assert "10 active API keys" in body["message"]
    rows = query(pg_url, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
    assert rows == [(10,)]
    # Three revoked (one through each instance, one more): exactly three free slots.
    created = [r.json()["data"]["id"] for r in responses if r.status_code == 201]
    for base, key_id in zip((a, b, a), created[:3], strict=True):
        revoked = httpx.delete(
            f"{base}/api/account/apikeys/{key_id}", headers=bearer(token), timeout=30
        )
        assert revoked.status_code == 200
    statuses = sorted(response.status_code for response in _all_at_once(calls))
    assert statuses == [201] * 3 + [400] * 27, statuses
    rows = query(pg_url, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
    assert rows == [(10,)]


def test_ten_revokes_over_two_instances_have_exactly_one_winner(two_instances, pg_url):
    a, b = (server.base_url for server in two_instances)
    token = _signup_and_login(b, "revoke@example.com")
    for round_ in range(3):
        created = httpx.post(
            (a, b)[round_ % 2] + "/api/account/apikeys",
            json={"name": "contested"},
            headers=bearer(token),
            timeout=30,
        )
        assert created.status_code == 201
        key_id = created.json()["data"]["id"]
        calls = [
            ("DELETE", (a, b)[i % 2], f"/api/account/apikeys/{key_id}", bearer(token), None)
            for i in range(10)
        ]
        responses = _all_at_once(calls)
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] + [400] * 9, statuses
        winner = next(response for response in responses if response.status_code == 200)
        assert envelope(winner)["data"]["isRevoked"] is True
        for loser in responses:
            if loser.status_code == 400:
                assert envelope(loser)["message"] == "This API key is already revoked."
        events = query(
            pg_url,
            "SELECT count(*) FROM audit_events WHERE event = 'key.revoked' AND key_id = %s",
            (key_id,),
        )
        assert events == [(1,)]


def test_key_revoked_on_one_instance_is_refused_by_the_other_on_the_next_request(two_instances):
    a, b = (server.base_url for server in two_instances)
    token = _signup_and_login(a, "next@example.com")
    with httpx.Client(timeout=30) as http:
        for revoke_on, use_on in ((a, b), (b, a), (a, a), (b, b)):
            created = http.post(
                revoke_on + "/api/account/apikeys", json={"name": "k"}, headers=bearer(token)
            )
            assert created.status_code == 201
            key, key_id = created.json()["data"]["key"], created.json()["data"]["id"]
            # Used on the other instance first, so that anything it might keep
            # about the key is warm.
            for _ in range(3):
                assert http.get(use_on + "/api/account", headers=bearer(key)).status_code == 200
            revoked = http.delete(f"{revoke_on}/api/account/apikeys/{key_id}", headers=bearer(key))
            assert revoked.status_code == 200
            after = http.get(use_on + "/api/account", headers=bearer(key))
            assert after.status_code == 401
            assert after.headers["www-authenticate"].startswith("Bearer")
            assert http.get(use_on + "/api/account", headers={"X-API-Key": key}).status_code == 401


def test_session_from_one_instance_works_on_the_other_until_signed_out(two_instances):
    a, b = (server.base_url for server in two_instances)
    token = _signup_and_login(a, "session@example.com")
    with httpx.Client(timeout=30) as http:
        on_b = http.get(b + "/api/account", headers=bearer(token))
        assert on_b.status_code == 200
        assert on_b.json()["data"]["email"] == "session@example.com"
        key = http.post(b + "/api/account/apikeys", json={"name": "x"}, headers=bearer(token))
        assert key.status_code == 201
        assert http.post(b + "/api/auth/logout", headers=bearer(token)).status_code == 200
        assert http.get(a + "/api/account", headers=bearer(token)).status_code == 401


def test_a_dump_has_every_key_as_sha256_and_no_raw_key_whichever_instance_made_it(
    two_instances, pg_url
):
    a, b = (server.base_url for server in two_instances)
    token = _signup_and_login(a, "dump@example.com")
    raw_keys = []
    with httpx.Client(timeout=30) as http:
        for base in (a, b, a, b):
            created = http.post(
                base + "/api/account/apikeys", json={"name": "d"}, headers=bearer(token)
            )
            assert created.status_code == 201
            raw_keys.append(created.json()["data"]["key"])
        assert http.get(b + "/api/account", headers=bearer(raw_keys[0])).status_code == 200
    stored = {row[0] for row in query(pg_url, "SELECT key_hash FROM api_keys")}
    assert stored == {sha256_hex(raw) for raw in raw_keys}
    dump = pg_dump(pg_url)
    for raw in raw_keys:
        assert sha256_hex(raw) in dump
        assert raw not in dump and raw[4:] not in dump
    for server in two_instances:  # nor in any instance's log
        assert not any(raw in server.output() for raw in raw_keys)


def test_simultaneous_sign_outs_of_one_session_over_two_instances_never_fail(two_instances):
    a, b = (server.base_url for server in two_instances)
    for round_ in range(3):
        token = _signup_and_login(a, f"logout{round_}@example.com")
        calls = [
            ("POST", (a, b)[i % 2], "/api/auth/logout", bearer(token), None) for i in range(10)
        ]
        statuses = [response.status_code for response in _all_at_once(calls)]
        # Each sign-out either ended the session or found it already ended.
        assert set(statuses) <= {200, 401}, statuses
        assert 200 in statuses
        assert httpx.get(b + "/api/account", headers=bearer(token), timeout=30).status_code == 401
