"""Helpers for tests that run several real ``paradarum serve`` instances on one
PostgreSQL database, and for tests that take that database away."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support import (
    PASSWORD,
    ServerProcess,
    bearer,
    free_port,
    maintenance_url,
    random_secret,
    start_server,
)


def instance_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """What every instance of one deployment shares: database and signing secret.

    Abuse limits are per process and would turn a load test into a 429 test, so
    they are lifted here; the rules under test (key limit, revoke) are not limits
    of that kind.
    """
    env = {
        "PARADARUM_DATABASE_URL": database_url,
        "PARADARUM_JWT_SECRET": random_secret(),
        "PARADARUM_DATA_DIR": str(data_dir),
        "PARADARUM_AUTH_FAILURES_PER_ADDRESS": "1000000",
        "PARADARUM_KEY_CREATIONS_PER_ACCOUNT": "1000000",
        "PARADARUM_LOGIN_FAILURES_PER_ADDRESS": "1000000",
        "PARADARUM_ACCESS_LOG": "false",
    }
    env.update(extra)
    return env


def start_together(env: dict[str, str], count: int, log_dir: Path) -> list[ServerProcess]:
    """Start ``count`` instances at the same moment (each runs migrations on start)."""
    barrier = threading.Barrier(count)

    def start(index: int) -> ServerProcess:
        barrier.wait()
        return start_server(env, log_path=log_dir / f"instance-{index}.log")

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(start, index) for index in range(count)]
    servers: list[ServerProcess] = []
    errors: list[BaseException] = []
    for future in futures:
        try:
            servers.append(future.result())
        except BaseException as exc:
            errors.append(exc)
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]
    return servers


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def sha256_hex(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@contextlib.contextmanager
def database_unreachable(url: str) -> Iterator[None]:
    """Take one test database away from every client, as an outage would, without
    touching the PostgreSQL server that other tests share: new connections are
    refused and the live ones are terminated. Always given back on exit."""
    name = database_name(url)
    with psycopg.connect(maintenance_url(url), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            terminate_backends(url, admin=admin)
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def terminate_backends(url: str, *, admin: psycopg.Connection[Any] | None = None) -> int:
    """Kill every server-side connection to one database (what a restart does to it)."""
    sql = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()"
    )
    if admin is not None:
        row = admin.execute(sql, (database_name(url),)).fetchone()
    else:
        with psycopg.connect(maintenance_url(url), autocommit=True) as own:
            row = own.execute(sql, (database_name(url),)).fetchone()
    return int(row[0]) if row else 0


def pg_dump(url: str) -> str:
    """Every row of every table, as ``pg_dump`` writes it."""
    return subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def envelope(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) >= {"succeeded", "message", "data"}, body
    return body


@dataclass
class Outcome:
    """One request made under load. ``status`` is None when no HTTP answer came."""

    instance: int
    op: str
    status: int | None
    started_in: str
    ended_in: str
    body: dict[str, Any] | None = None
    retry_after: str | None = None


@dataclass
class Account:
    token: str
    key: str  # an active key, never revoked
    revoked_key: str  # revoked before the load starts
    signed_out_token: str  # signed out before the load starts


class Load:
    """Threads hammering every instance with reads and writes until stopped.

    Each thread owns one account and cycles: create a key, revoke it, then
    authenticate with the account's active key, its session, a revoked key and a
    signed-out session. ``phase`` is a label the test moves along; every outcome
    records the phase it started and ended in.
    """

    def __init__(self, base_urls: list[str], accounts: list[Account]) -> None:
        self.base_urls = base_urls
        self.accounts = accounts
        self.phase = "before"
        self.outcomes: list[Outcome] = []
        self.created: list[tuple[int, str, int, str]] = []  # (instance, name, id, key)
        self.revoked: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index,), daemon=True)
            for index in range(len(accounts))
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def count(self, predicate: Callable[[Outcome], bool]) -> int:
        with self._lock:
            return sum(1 for outcome in self.outcomes if predicate(outcome))

    def _request(
        self, http: httpx.Client, instance: int, op: str, method: str, path: str, **kwargs: Any
    ) -> Outcome:
        started = self.phase
        try:
            response = http.request(method, self.base_urls[instance] + path, **kwargs)
        except httpx.HTTPError:
            outcome = Outcome(instance, op, None, started, self.phase)
        else:
            try:
                body = response.json()
            except ValueError:
                body = None
            outcome = Outcome(
                instance,
                op,
                response.status_code,
                started,
                self.phase,
                body,
                response.headers.get("retry-after"),
            )
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _run(self, index: int) -> None:
        account = self.accounts[index]
        step = index
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                step += 1
                instance = step % len(self.base_urls)
                created = self._request(
                    http,
                    instance,
                    "create",
                    "POST",
                    "/api/account/apikeys",
                    json={"name": f"load {index}.{step}"},
                    headers=bearer(account.token),
                )
                if created.status == 201 and created.body is not None:
                    data = created.body["data"]
                    with self._lock:
                        self.created.append((instance, data["name"], data["id"], data["key"]))
                    revoked = self._request(
                        http,
                        instance,
                        "revoke",
                        "DELETE",
                        f"/api/account/apikeys/{data['id']}",
                        headers=bearer(account.token),
                    )
                    if revoked.status == 200:
                        with self._lock:
                            self.revoked.append(data["id"])
                for op, credential in (
                    ("key", account.key),
                    ("session", account.token),
                    ("revoked-key", account.revoked_key),
                    ("signed-out-session", account.signed_out_token),
                ):
                    self._request(
                        http, instance, op, "GET", "/api/account", headers=bearer(credential)
                    )


def prepare_account(base_url: str, email: str) -> Account:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        assert (
            http.post("/api/auth/signup", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )

        def login() -> str:
            response = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            assert response.status_code == 200, response.text
            return str(response.json()["data"]["token"])

        token, signed_out = login(), login()
        assert http.post("/api/auth/logout", headers=bearer(signed_out)).status_code == 200
        keys = []
        for name in ("active", "revoked"):
            response = http.post("/api/account/apikeys", json={"name": name}, headers=bearer(token))
            assert response.status_code == 201, response.text
            keys.append(response.json()["data"])
        revoked = http.delete(f"/api/account/apikeys/{keys[1]['id']}", headers=bearer(token))
        assert revoked.status_code == 200
    return Account(token, keys[0]["key"], keys[1]["key"], signed_out)


def wait_until(condition: Callable[[], bool], *, timeout: float = 60, what: str = "") -> None:
    """Poll ``condition``; a generous bound, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or condition}")
        time.sleep(0.05)


def assert_acknowledged_writes_present(url: str, load: Load) -> None:
    """Every 201 is a stored key with the SHA-256 of what was handed out; every
    200 revoke is stored as revoked."""
    rows = {
        row[0]: row[1:] for row in query(url, "SELECT id, name, key_hash, revoked_at FROM api_keys")
    }
    assert load.created, "the load acknowledged no creates"
    for _instance, name, key_id, raw in load.created:
        assert key_id in rows, f"acknowledged key {key_id} is missing"
        assert rows[key_id][:2] == (name, sha256_hex(raw))
    for key_id in load.revoked:
        assert rows[key_id][2] is not None, f"acknowledged revoke of {key_id} is missing"


def assert_nothing_half_written(url: str) -> None:
    """A key and its audit row are written in one transaction: never one alone."""
    orphans = query(
        url,
        "SELECT k.id FROM api_keys k WHERE NOT EXISTS (SELECT 1 FROM audit_events e "
        "WHERE e.key_id = k.id AND e.event = 'key.created')",
    )
    assert orphans == []
    unaudited_revokes = query(
        url,
        "SELECT k.id FROM api_keys k WHERE k.revoked_at IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM audit_events e WHERE e.key_id = k.id AND e.event = 'key.revoked')",
    )
    assert unaudited_revokes == []
    audited_missing = query(
        url,
        "SELECT e.key_id FROM audit_events e WHERE e.event = 'key.revoked' AND NOT EXISTS "
        "(SELECT 1 FROM api_keys k WHERE k.id = e.key_id AND k.revoked_at IS NOT NULL)",
    )
    assert audited_missing == []
    over_limit = query(
        url,
        "SELECT account_id FROM api_keys WHERE revoked_at IS NULL "
        "GROUP BY account_id HAVING count(*) > 10",
    )
    assert over_limit == []


def postgres_binaries() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian keeps them in
    /usr/lib/postgresql/<version>/bin, outside PATH), or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class ThrowawayPostgres:
    """A PostgreSQL server of the test's own: ``initdb`` into a temporary directory, on a
    free port, trust authentication on 127.0.0.1 only. Stopping and starting it is the
    test's business alone: the machine's own PostgreSQL is never touched.

    initdb refuses to run as root: then the cluster belongs to the ``postgres`` user (or
    ``nobody``), and its commands run as that user (``runuser``)."""

    def __init__(self, root: Path) -> None:
        binaries = postgres_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL's initdb is not installed")
        self.bin = binaries
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            import pwd

            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    entry = pwd.getpwnam(name)
                    self.user = name
                    os.chown(root, entry.pw_uid, entry.pw_gid)
                    break
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bin / program), *args]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        subprocess.run(argv, check=True, timeout=120, capture_output=True, cwd=self.root)

    def running(self) -> bool:
        argv = [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]
        return subprocess.run(argv, check=False, timeout=30).returncode == 0

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        """Fast shutdown: sessions are cut, as when a server goes away."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stopped for the body, started again on exit whatever happened."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    root = Path(tempfile.mkdtemp(prefix="paradarum-pg-"))
    server = None
    try:
        server = ThrowawayPostgres(root)
        yield server
    finally:
        if server is not None:
            server.close()
        shutil.rmtree(root, ignore_errors=True)
