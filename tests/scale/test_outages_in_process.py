"""What one instance does when its PostgreSQL connections die or the database goes
away: fail closed with 503 + Retry-After, leave nothing half-written, recover by
itself. The database is taken away per test (see ``database_unreachable``), so the
PostgreSQL server that other tests share keeps running."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event

from paradarum.passwords import Passwords
from tests.scale.cluster import (
    database_unreachable,
    envelope,
    query,
    terminate_backends,
)
from tests.support import PASSWORD, bearer, create_key, new_account, signup


def assert_unavailable(response):
    assert response.status_code == 503, response.text
    body = envelope(response)
    assert body["succeeded"] is False
    assert body["data"] is None
    assert int(response.headers["retry-after"]) > 0
    assert "Traceback" not in response.text and "psycopg" not in response.text


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Only the requests' own statements touch the database: no background
    # notification writes to take the connection a test cuts.
    return {"notifications_enabled": False}


def test_pooled_connections_killed_by_a_restart_are_replaced_unnoticed(client, runtime):
    token = new_account(client)
    key = create_key(client, token)["key"]
    # Fill the pool with several idle connections, as a busy instance would have.
    with ThreadPoolExecutor(8) as pool:
        warm = list(pool.map(lambda _: client.get("/api/account", headers=bearer(key)), range(32)))
    assert {response.status_code for response in warm} == {200}
    assert runtime.db.engine.pool.checkedin() > 0
    url = runtime.settings.database_url
    assert terminate_backends(url) > 0  # what a PostgreSQL restart does to them
    for _ in range(3):
        assert client.get("/api/account", headers=bearer(key)).status_code == 200
        assert client.get("/api/account", headers=bearer(token)).status_code == 200
        assert client.get("/api/account/apikeys", headers=bearer(token)).status_code == 200
    assert create_key(client, token)["key"]


class TestSmallPool:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout": 0.2,
            "notifications_enabled": False,
        }

    def test_an_exhausted_pool_is_a_503_not_a_500(self, client, runtime):
        token = new_account(client)
        key = create_key(client, token)["key"]
        hog = runtime.db.engine.connect()  # the only connection the pool may hand out
        try:
            # (Key and session checks read through a pool of their own, see
            # tests/web/test_hot_path.py; everything else queues here.)
            assert_unavailable(client.get("/api/account/apikeys", headers=bearer(key)))
            assert_unavailable(client.get("/api/account/audit", headers=bearer(token)))
            assert_unavailable(
                client.post("/api/account/apikeys", json={"name": "x"}, headers=bearer(token))
            )
            email = "pool@example.com"
            assert_unavailable(
                client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
            )
        finally:
            hog.close()
        assert client.get("/api/account", headers=bearer(key)).status_code == 200
        signup(client, "pool@example.com")  # the refused sign-up left nothing behind


@pytest.fixture
def outage_client(client, runtime):
    token = new_account(client, "outage@example.com")
    key = create_key(client, token)
    return client, runtime, token, key


def test_database_outage_fails_closed_everywhere_then_recovers(outage_client):
    client, runtime, token, key = outage_client
    raw = key["key"]
    url = runtime.settings.database_url
    before = query(url, "SELECT count(*) FROM api_keys")
    with database_unreachable(url):
        # Credentials that cannot be checked are never let through.
        assert_unavailable(client.get("/api/account", headers=bearer(raw)))
        assert_unavailable(client.get("/api/account", headers={"X-API-Key": raw}))
        assert_unavailable(client.get("/api/account", headers=bearer(token)))
        assert_unavailable(client.get("/api/account/apikeys", headers=bearer(token)))
        # Writes.
        assert_unavailable(
            client.post("/api/account/apikeys", json={"name": "n"}, headers=bearer(token))
        )
        assert_unavailable(
            client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(token))
        )
        assert_unavailable(client.post("/api/auth/logout", headers=bearer(token)))
        assert_unavailable(
            client.post("/api/auth/signup", json={"email": "new@example.com", "password": PASSWORD})
        )
        # Sign-in: a database read, then Argon2, then a write.
        assert_unavailable(
            client.post(
                "/api/auth/login", json={"email": "outage@example.com", "password": PASSWORD}
            )
        )
        assert_unavailable(client.get("/api/health/ready"))
        # Requests that need no database still work.
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/account", headers=bearer("pdm_notakey")).status_code == 401
    # Back without a restart; nothing was written while it was away.
    assert query(url, "SELECT count(*) FROM api_keys") == before
    assert query(url, "SELECT count(*) FROM persons WHERE email = 'new@example.com'") == [(0,)]
    assert client.get("/api/account", headers=bearer(raw)).status_code == 200
    assert client.get("/api/account", headers=bearer(token)).status_code == 200
    assert client.get("/api/health/ready").status_code == 200
    # No connection leaked and no worker thread stuck: more concurrent requests than
    # the pool has connections and the thread pool has threads all succeed.
    with ThreadPoolExecutor(16) as pool:
        after = list(pool.map(lambda _: client.get("/api/account", headers=bearer(raw)), range(80)))
    assert {response.status_code for response in after} == {200}
    assert runtime.db.engine.pool.checkedout() == 0


class _OutageDuringVerify(Passwords):
    """Argon2 runs, then the database goes away before the session is recorded."""

    def __init__(self, outage):
        super().__init__(concurrency=4, memory_kib=1024)
        self.outage = outage

    def verify(self, stored_hash, password):
        result = super().verify(stored_hash, password)
        if self.outage.armed:
            self.outage.start()
        return result


class _Outage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.armed = False
        self._context = None

    def start(self) -> None:
        self.armed = False
        self._context = database_unreachable(self.url)
        self._context.__enter__()

    def stop(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None


def test_outage_between_password_check_and_session_write_gives_no_token(client, runtime):
    url = runtime.settings.database_url
    signup(client, "argon@example.com")
    outage = _Outage(url)
    runtime.accounts._passwords = _OutageDuringVerify(outage)
    try:
        outage.armed = True
        response = client.post(
            "/api/auth/login", json={"email": "argon@example.com", "password": PASSWORD}
        )
        assert_unavailable(response)
        assert "token" not in response.text
    finally:
        outage.stop()
    logins = query(url, "SELECT count(*) FROM audit_events WHERE event = 'session.login_succeeded'")
    assert logins == [(0,)]
    response = client.post(
        "/api/auth/login", json={"email": "argon@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200


def _drop_connection_before(runtime, statement_start: str):
    """Kill this transaction's own server connection just before a statement: the
    connection dies between two statements of one transaction."""
    fired = []

    def before(conn, _cursor, statement, *_args):
        if not fired and statement.lstrip().upper().startswith(statement_start):
            fired.append(True)
            pid = conn.connection.dbapi_connection.info.backend_pid
            query(runtime.settings.database_url, "SELECT pg_terminate_backend(%s)", (pid,))

    event.listen(runtime.db.engine, "before_cursor_execute", before)
    return lambda: event.remove(runtime.db.engine, "before_cursor_execute", before)


def test_connection_lost_mid_create_leaves_no_key_behind(outage_client):
    client, runtime, token, _key = outage_client
    url = runtime.settings.database_url
    before = query(url, "SELECT count(*) FROM api_keys")
    # The key row is inserted; the connection dies before its audit row.
    undo = _drop_connection_before(runtime, "INSERT INTO AUDIT_EVENTS")
    try:
        assert_unavailable(
            client.post("/api/account/apikeys", json={"name": "lost"}, headers=bearer(token))
        )
    finally:
        undo()
    assert query(url, "SELECT count(*) FROM api_keys") == before
    assert query(url, "SELECT count(*) FROM api_keys WHERE name = 'lost'") == [(0,)]
    created = client.post("/api/account/apikeys", json={"name": "lost"}, headers=bearer(token))
    assert created.status_code == 201


def test_connection_lost_mid_revoke_leaves_the_key_active_and_revocable(outage_client):
    client, runtime, token, key = outage_client
    # The UPDATE has run; the connection dies before the transaction commits.
    undo = _drop_connection_before(runtime, "INSERT INTO AUDIT_EVENTS")
    try:
        assert_unavailable(
            client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(token))
        )
    finally:
        undo()
    assert client.get("/api/account", headers=bearer(key["key"])).status_code == 200
    revoked = client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(token))
    assert revoked.status_code == 200  # not "already revoked": nothing was half-applied
    assert client.get("/api/account", headers=bearer(key["key"])).status_code == 401


def test_connections_give_up_on_a_silent_network_instead_of_holding_a_thread(runtime):
    # A partition cannot be staged on a shared loopback; check that every pooled
    # connection carries the timeouts that turn one into an error (then a 503).
    with runtime.db.engine.connect() as conn:
        parameters = conn.connection.dbapi_connection.info.get_parameters()
    assert parameters["tcp_user_timeout"] == "10000"
    assert parameters["keepalives"] == "1"
    assert int(parameters["connect_timeout"]) > 0
    assert "statement_timeout=15000" in parameters["options"]


class TestStuckLockHolder:
    """A peer that holds an account's row lock and then hangs (a partitioned
    instance, say) costs a create at most ``db_statement_timeout``, then a 503."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"db_statement_timeout": 0.5}

    def test_a_create_waiting_on_a_stuck_lock_gives_up_with_a_503(self, client, runtime):
        token = new_account(client, "stuck@example.com")
        key = create_key(client, token)
        other = create_key(client, token)
        url = runtime.settings.database_url
        account_id = client.get("/api/account", headers=bearer(token)).json()["data"]["id"]
        with runtime.db.writing() as stuck:
            # A create's transaction that never ends: it holds the account lock.
            assert runtime.db.lock_account(stuck, account_id)
            assert_unavailable(
                client.post("/api/account/apikeys", json={"name": "x"}, headers=bearer(token))
            )
            # Only creates wait for that lock: reads, revokes and sign-ins go on.
            assert client.get("/api/account", headers=bearer(key["key"])).status_code == 200
            revoked = client.delete(f"/api/account/apikeys/{other['id']}", headers=bearer(token))
            assert revoked.status_code == 200
            signed_in = client.post(
                "/api/auth/login", json={"email": "stuck@example.com", "password": PASSWORD}
            )
            assert signed_in.status_code == 200
        created = client.post("/api/account/apikeys", json={"name": "x"}, headers=bearer(token))
        assert created.status_code == 201
        assert query(url, "SELECT count(*) FROM api_keys WHERE name = 'x'") == [(1,)]
