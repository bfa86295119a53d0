"""Helpers shared by tests: databases, apps, accounts, real server processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PG_ADMIN_URL = os.environ.get(
    "PARADARUM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PARADARUM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "correct horse battery staple"


def postgres_available(url: str = PG_ADMIN_URL) -> bool:
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception:
        return False


def redis_available() -> bool:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def temporary_redis_prefix() -> Iterator[str]:
    """A key prefix of one's own in the shared Redis; its keys are deleted afterwards."""
    import redis

    prefix = f"paradarum-test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            stale = list(client.scan_iter(match=prefix + "*", count=1000))
            if stale:
                client.delete(*stale)
        finally:
            client.close()


@contextlib.contextmanager
def temporary_postgres_database(
    admin_url: str = PG_ADMIN_URL, *, prefix: str = "paradarum_test"
) -> Iterator[str]:
    """A login role and a database it owns, both uniquely named, on the server
    ``admin_url`` points at (for one test, or one benchmark run); both are dropped
    afterwards. The URL given connects as that role, with a password made here: the
    tests and the servers they start work as an ordinary owner, as a deployment does,
    and the superuser of ``admin_url`` only creates and drops."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    # psycopg takes a plain libpq URL; SQLAlchemy-style ones (postgresql+psycopg://) too.
    admin_url = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    password = secrets.token_urlsafe(24)
    owner = sql.Identifier(name)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                owner, sql.Literal(password)
            )
        )
        try:
            admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(owner, owner))
        except BaseException:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(owner))
            raise
    try:
        url = make_url(admin_url).set(username=name, password=password, database=name)
        yield url.render_as_string(False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(owner))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(owner))


def maintenance_url(url: str) -> str:
    """``url``'s role on the server's ``postgres`` database: where a database's owner
    alters or empties its own database from outside it."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database="postgres").render_as_string(False)


class PeerFromHeader:
    """Test harness around the app: the socket peer is taken from an ``X-Test-Peer``
    header when one is sent, so that one test client (one event loop, one runtime)
    can speak for several client addresses."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-peer":
                    scope = {**scope, "client": (value.decode(), 40000)}
                    break
        await self.app(scope, receive, send)


def peer(address: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers that make a request come from ``address`` (see :class:`PeerFromHeader`)."""
    return {"X-Test-Peer": address, **(headers or {})}


def run(work: Any) -> Any:
    """Run a service coroutine from a synchronous test (its own event loop: only
    for services that touch the database, not the background)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    # A loop runs in this thread already (Playwright's sync API does): use another.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signup(
    client: Any, email: str, password: str = PASSWORD, *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = client.post(
        "/api/auth/signup", json={"email": email, "password": password}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def login(
    client: Any, email: str, password: str = PASSWORD, *, headers: dict[str, str] | None = None
) -> str:
    response = client.post(
        "/api/auth/login", json={"email": email, "password": password}, headers=headers
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["token"])


def reauthenticate(client: Any, token: str, password: str = PASSWORD) -> str:
    """Confirm the password again (step-up): a fresh session of the same account."""
    response = client.post(
        "/api/auth/reauthenticate", json={"password": password}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["token"])


def new_account(
    client: Any, email: str | None = None, *, headers: dict[str, str] | None = None
) -> str:
    """Sign up a fresh account and return a session token for it."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    signup(client, email, headers=headers)
    return login(client, email, headers=headers)


def active_zone(client: Any, runtime: Any, credential: str, hostname: str) -> dict[str, Any]:
    """Make ``hostname`` an active zone of the credential's account, as an operator
    does (``paradarum zones add EMAIL HOSTNAME --verified``): no DNS needed."""
    email = client.get("/api/account", headers=bearer(credential)).json()["data"]["email"]
    zone = run(runtime.zones.add_for(email=email, hostname=hostname, verified=True))
    return {"id": zone.id, "hostname": zone.hostname}


@contextlib.contextmanager
def runtime_for(env: dict[str, str]) -> Iterator[Any]:
    """A runtime of the test's own on the data of a server started with ``env``: for
    what only an operator or Paradarum itself does (no HTTP request can)."""
    from paradarum.config import Settings
    from paradarum.runtime import build_runtime

    values: dict[str, Any] = {"data_dir": Path(env["PARADARUM_DATA_DIR"])}
    if env.get("PARADARUM_DATABASE_URL"):
        values["database_url"] = env["PARADARUM_DATABASE_URL"]
        values["jwt_secret"] = env["PARADARUM_JWT_SECRET"]
    runtime = build_runtime(Settings(**values))
    try:
        yield runtime
    finally:
        runtime.close()


def activate_zone(env: dict[str, str], email: str, hostname: str) -> None:
    """The operator's ``zones add EMAIL HOSTNAME --verified`` on the database of a
    server started with ``env`` (a runtime of the test's own on the same data)."""
    with runtime_for(env) as runtime:
        run(runtime.zones.add_for(email=email, hostname=hostname, verified=True))


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def create_key(client: Any, credential: str, name: str = "test key") -> dict[str, Any]:
    response = client.post("/api/account/apikeys", json={"name": name}, headers=bearer(credential))
    assert response.status_code == 201, response.text
    return response.json()["data"]


@dataclass
class ServerProcess:
    """A real ``paradarum serve`` process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self.kill(signal.SIGKILL)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_process(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    log_path: Path,
    base_url: str,
    ready_path: str = "/api/health",
    cwd: Path | None = None,
    timeout: float = 60,
) -> ServerProcess:
    """Start an HTTP server process in a session of its own (so that :meth:`stop`
    ends its workers too) and wait until ``ready_path`` answers 200."""
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(base_url, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(server.base_url + ready_path, timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start:\n{server.output()}")


def start_server(
    env_overrides: dict[str, str],
    *,
    workers: int = 1,
    log_path: Path,
    port: int | None = None,
    prefix: Sequence[str] = (),
) -> ServerProcess:
    """A real ``paradarum serve``; ``prefix`` goes before the command (e.g.
    ``taskset -c 0`` to pin it, and so its workers, to one CPU)."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env.update(env_overrides)
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "paradarum",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return start_process(argv, env=env, log_path=log_path, base_url=f"http://127.0.0.1:{port}")


def worker_pids(master: int) -> list[int]:
    """The server's worker processes (children of the master process)."""
    children: list[int] = []
    for task in Path(f"/proc/{master}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(pid) for pid in (task / "children").read_text().split()]
    return children


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not found")


def random_secret() -> str:
    return secrets.token_urlsafe(48)


def wait_until(condition: Any, *, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait for work the service does after answering (e.g. a coalesced write)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


async def until(condition: Any, *, timeout: float = 10.0, interval: float = 0.01) -> None:
    """:func:`wait_until` for a test's own event loop (its other tasks keep running)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
