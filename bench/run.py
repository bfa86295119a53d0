"""Load benchmark for key verification: ``make bench`` (see README, "Performance").

One run starts ``paradarum serve`` (one worker, pinned to CPU 0 where ``taskset``
exists), loads it with ``wrk`` pinned to CPU 1, and prints one table with every
scenario measured side by side, so that ratios compare numbers taken minutes apart
on the same (possibly shared, possibly noisy) machine:

* open ``GET /api/health``; key-authed and JWT-authed ``GET /api/account``;
  key-authed ``GET /api/account/apikeys``;
* a hot-key scenario (64 connections, one key) and the ``lastUsedAt`` writes it
  caused, counted by a database trigger the benchmark adds to its throwaway
  database (so the count is what reached the table, from any process);
* a scale scenario: the same key-authed request with 1,000,000 other keys seeded
  straight into a second database;
* the same on PostgreSQL when ``PARADARUM_DATABASE_URL`` points at a server (a
  throwaway database is created there and dropped afterwards);
* a peer: Django + DRF + djangorestframework-api-key under gunicorn (1 worker,
  SQLite), installed into ``bench/.peer-venv``.

Scenarios are interleaved over ``--rounds`` rounds and the median is reported.
Results are written to ``bench/results/<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PEER_DIR = BENCH / "peer"
PEER_VENV = BENCH / ".peer-venv"
PEER_PACKAGES = ["django", "djangorestframework", "djangorestframework-api-key", "gunicorn"]
PASSWORD = "bench-password-" + secrets.token_hex(8)
HAS_TASKSET = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


# -- processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if HAS_TASKSET else argv


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def launch(
    name: str, argv: list[str], *, env: dict[str, str], port: int, log_path: Path, cwd: Path
) -> Server:
    log = log_path.open("ab")
    process = subprocess.Popen(
        pinned(0, argv),
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited early:\n{log_path.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/api/health", timeout=1).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{name} did not start:\n{log_path.read_text()[-4000:]}")


def paradarum_env(data_dir: Path, database_url: str | None, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env["PARADARUM_DATA_DIR"] = str(data_dir)
    env["PARADARUM_JWT_SECRET"] = secret
    if database_url:
        env["PARADARUM_DATABASE_URL"] = database_url
    return env


def paradarum_bin() -> str:
    candidate = Path(sys.executable).parent / "paradarum"
    return str(candidate) if candidate.exists() else "paradarum"


def start_paradarum(name: str, env: dict[str, str], work: Path) -> Server:
    port = free_port()
    argv = [paradarum_bin(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return launch(name, argv, env=env, port=port, log_path=work / f"{name}.log", cwd=work)


def migrate(env: dict[str, str]) -> None:
    subprocess.run([paradarum_bin(), "db", "upgrade"], env=env, check=True, capture_output=True)


# -- memory ------------------------------------------------------------------------


class RssSampler:
    """Samples VmRSS of a process (and its children) while a load runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss_kib(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _pids(self) -> list[int]:
        pids = [self.pid]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            pids.extend(int(child) for child in children)
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            # The largest single process: the worker (gunicorn's master is tiny).
            self.peak_kib = max(self.peak_kib, *(self.rss_kib(p) for p in self._pids()))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# -- wrk ---------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    peak_rss_mib: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing it from the Debian packages (apt-get install wrk)")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is required (apt-get install wrk)")
    return found


def run_wrk(
    wrk: str,
    url: str,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    warmup: float,
    pid: int,
) -> Load:
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    threads = "2"

    def call(duration: float, latency: bool) -> str:
        argv = [
            wrk,
            "-t",
            threads,
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            "5s",
        ]
        if latency:
            argv.append("--latency")
        argv += [*header_args, url]
        done = subprocess.run(pinned(1, argv), capture_output=True, text=True, check=True)
        return done.stdout

    if warmup > 0:
        call(warmup, False)
    with RssSampler(pid) as sampler:
        out = call(seconds, True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non_2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors_match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    socket_errors = sum(int(g) for g in errors_match.groups()) if errors_match else 0
    return Load(
        rps=rps,
        p50_ms=p50,
        p99_ms=p99,
        requests=requests,
        non_2xx=int(non_2xx_match.group(1)) if non_2xx_match else 0,
        socket_errors=socket_errors,
        peak_rss_mib=round(sampler.peak_kib / 1024, 1),
    )


@dataclass
class Scenario:
    name: str
    server: Server
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 32
    runs: list[Load] = field(default_factory=list)

    def measure(self, wrk: str, args: argparse.Namespace) -> None:
        load = run_wrk(
            wrk,
            self.server.base_url + self.path,
            self.headers,
            connections=self.connections,
            seconds=args.seconds,
            warmup=args.warmup,
            pid=self.server.pid,
        )
        self.runs.append(load)
        print(
            f"  {self.name:<34} {load.rps:>9.0f} req/s  p50 {load.p50_ms:6.2f} ms  "
            f"p99 {load.p99_ms:6.2f} ms  non-2xx {load.non_2xx}  rss {load.peak_rss_mib} MiB",
            flush=True,
        )

    def summary(self) -> dict[str, Any]:
        rps = [r.rps for r in self.runs]
        return {
            "name": self.name,
            "path": self.path,
            "connections": self.connections,
            "rps_median": round(statistics.median(rps), 1),
            "rps_runs": [round(x, 1) for x in rps],
            "p50_ms": round(statistics.median(r.p50_ms for r in self.runs), 3),
            "p99_ms": round(statistics.median(r.p99_ms for r in self.runs), 3),
            "non_2xx": sum(r.non_2xx for r in self.runs),
            "socket_errors": sum(r.socket_errors for r in self.runs),
            "requests": sum(r.requests for r in self.runs),
            "peak_rss_mib": max(r.peak_rss_mib for r in self.runs),
        }


def interleave(scenarios: list[Scenario], wrk: str, args: argparse.Namespace) -> None:
    for round_no in range(1, args.rounds + 1):
        print(f" round {round_no}/{args.rounds}", flush=True)
        for scenario in scenarios:
            scenario.measure(wrk, args)


# -- paradarum setup ---------------------------------------------------------------


@dataclass
class Credentials:
    jwt: str
    key: str
    hot_key: str
    hot_key_id: int


def sign_in_and_create_keys(base_url: str) -> Credentials:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        body = {"email": email, "password": PASSWORD}
        client.post("/api/auth/signup", json=body).raise_for_status()
        token = client.post("/api/auth/login", json=body).json()["data"]["token"]
        auth = {"Authorization": f"Bearer {token}"}
        key = client.post("/api/account/apikeys", json={"name": "bench"}, headers=auth)
        hot = client.post("/api/account/apikeys", json={"name": "hot"}, headers=auth)
        key.raise_for_status()
        hot.raise_for_status()
        # The benchmark key's first use happens here, not under load.
        client.get("/api/account", headers={"X-API-Key": key.json()["data"]["key"]})
    return Credentials(
        jwt=token,
        key=key.json()["data"]["key"],
        hot_key=hot.json()["data"]["key"],
        hot_key_id=int(hot.json()["data"]["id"]),
    )


class Store:
    """Direct database access for seeding and for counting ``lastUsedAt`` writes."""

    def __init__(self, *, sqlite_path: Path | None = None, pg_url: str | None = None) -> None:
        self.sqlite_path = sqlite_path
        self.pg_url = pg_url

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        if self.sqlite_path is not None:
            conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            try:
                yield conn
            finally:
                conn.close()
        else:
            import psycopg

            with psycopg.connect(self.pg_url or "", autocommit=True) as conn:
                yield conn

    def add_write_counter(self) -> None:
        """A trigger that counts every UPDATE which really changed ``last_used_at``."""
        with self.connect() as conn:
            conn.execute("CREATE TABLE bench_usage_writes (key_id BIGINT NOT NULL)")
            if self.sqlite_path is not None:
                conn.execute(
                    "CREATE TRIGGER bench_count_usage AFTER UPDATE OF last_used_at ON api_keys "
                    "WHEN NEW.last_used_at IS NOT OLD.last_used_at "
                    "BEGIN INSERT INTO bench_usage_writes VALUES (NEW.id); END"
                )
            else:
                conn.execute(
                    "CREATE FUNCTION bench_count_usage() RETURNS trigger AS $$ BEGIN "
                    "INSERT INTO bench_usage_writes VALUES (NEW.id); RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
                conn.execute(
                    "CREATE TRIGGER bench_count_usage AFTER UPDATE OF last_used_at ON api_keys "
                    "FOR EACH ROW WHEN (NEW.last_used_at IS DISTINCT FROM OLD.last_used_at) "
                    "EXECUTE FUNCTION bench_count_usage()"
                )

    def usage_writes(self, key_id: int) -> int:
        with self.connect() as conn:
            sql = "SELECT count(*) FROM bench_usage_writes WHERE key_id = " + str(int(key_id))
            return int(conn.execute(sql).fetchone()[0])

    def backdate_last_use(self, key_id: int, minutes: int) -> None:
        """Pretend the key was last used ``minutes`` ago (as if a minute had passed)."""
        when = datetime.now(UTC) - timedelta(minutes=minutes)
        with self.connect() as conn:
            if self.sqlite_path is not None:
                value: Any = when.replace(tzinfo=None).isoformat(sep=" ")
                conn.execute(
                    "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (value, int(key_id))
                )
            else:
                conn.execute(
                    "UPDATE api_keys SET last_used_at = %s WHERE id = %s", (when, int(key_id))
                )
            conn.execute("DELETE FROM bench_usage_writes")

    def seed_keys(self, count: int, per_account: int = 10) -> float:
        """``count`` keys (10 per account, like real accounts at the limit), straight
        into the tables with precomputed hashes. Returns the seconds it took."""
        started = time.perf_counter()
        now = datetime.now(UTC).replace(tzinfo=None)
        n_accounts = (count + per_account - 1) // per_account
        salt = secrets.token_hex(8)

        def hashes(start: int, stop: int) -> Iterator[str]:
            sha = hashlib.sha256
            for i in range(start, stop):
                yield sha(f"{salt}:{i}".encode()).hexdigest()

        with self.connect() as conn:
            if self.sqlite_path is not None:
                stamp = now.isoformat(sep=" ")
                base = int(conn.execute("SELECT coalesce(max(id), 0) FROM accounts").fetchone()[0])
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO accounts (id, email, password_hash, created_at, session_epoch) "
                    "VALUES (?, ?, 'seeded', ?, 0)",
                    (
                        (base + a + 1, f"seed-{salt}-{a}@example.com", stamp)
                        for a in range(n_accounts)
                    ),
                )
                conn.executemany(
                    "INSERT INTO api_keys (account_id, name, key_prefix, key_hash, created_at) "
                    "VALUES (?, 'seeded', ?, ?, ?)",
                    (
                        (base + i // per_account + 1, "pdm_" + h[:4], h, stamp)
                        for i, h in enumerate(hashes(0, count))
                    ),
                )
                conn.execute("COMMIT")
                conn.execute("ANALYZE")
            else:
                stamp_pg = now.replace(tzinfo=UTC)
                row = conn.execute("SELECT coalesce(max(id), 0) FROM accounts").fetchone()
                base = int(row[0])
                with conn.transaction():
                    with conn.cursor().copy(
                        "COPY accounts (id, email, password_hash, created_at, session_epoch) "
                        "FROM STDIN"
                    ) as copy:
                        for a in range(n_accounts):
                            copy.write_row(
                                (base + a + 1, f"seed-{salt}-{a}@example.com", "x", stamp_pg, 0)
                            )
                    with conn.cursor().copy(
                        "COPY api_keys (account_id, name, key_prefix, key_hash, created_at) "
                        "FROM STDIN"
                    ) as copy:
                        for i, h in enumerate(hashes(0, count)):
                            copy.write_row(
                                (base + i // per_account + 1, "seeded", "pdm_" + h[:4], h, stamp_pg)
                            )
                    conn.execute(
                        "SELECT setval(pg_get_serial_sequence('accounts', 'id'), "
                        "(SELECT max(id) FROM accounts))"
                    )
                conn.execute("ANALYZE accounts")
                conn.execute("ANALYZE api_keys")
        return time.perf_counter() - started


# -- PostgreSQL throwaway databases --------------------------------------------------


@contextlib.contextmanager
def throwaway_pg_database(url: str) -> Iterator[str]:
    """A uniquely named database on the server ``url`` points at, dropped after."""
    import psycopg

    admin = url.replace("postgresql+psycopg://", "postgresql://", 1)
    admin = admin.replace("postgres://", "postgresql://", 1)
    name = f"paradarum_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"warning: could not drop the database {name}: {exc}", file=sys.stderr)


# -- the peer ----------------------------------------------------------------------


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ".installed"
    if not marker.exists():
        print("Installing the peer (Django + DRF + djangorestframework-api-key + gunicorn)")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
        marker.write_text("ok\n")
    return python


def start_peer(work: Path) -> tuple[Server, str]:
    python = ensure_peer_venv()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")}
    env["PEER_DB"] = str(work / "peer.sqlite3")
    env["DJANGO_SETTINGS_MODULE"] = "peersite.settings"
    env["PYTHONPATH"] = str(PEER_DIR)
    subprocess.run(
        [str(python), "-m", "django", "migrate", "--noinput"],
        env=env,
        check=True,
        capture_output=True,
    )
    created = subprocess.run(
        [str(python), "-m", "peersite.make_key"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = created.stdout.strip()
    port = free_port()
    argv = [
        str(PEER_VENV / "bin" / "gunicorn"),
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "peersite.wsgi:application",
    ]
    server = launch("peer", argv, env=env, port=port, log_path=work / "peer.log", cwd=PEER_DIR)
    return server, key


# -- one backend -------------------------------------------------------------------


def ratio(a: Scenario, b: Scenario) -> float:
    """Median of the per-round ratios: each pair was measured a few seconds apart,
    so a burst of load from elsewhere on the machine skews one pair, not all."""
    pairs = [x.rps / y.rps for x, y in zip(a.runs, b.runs, strict=True) if y.rps]
    return round(statistics.median(pairs), 3) if pairs else 0.0


def bench_backend(
    label: str,
    *,
    wrk: str,
    args: argparse.Namespace,
    work: Path,
    database_urls: tuple[str | None, str | None],
    store_for: Callable[[Path, str | None], Store],
    peer: tuple[Server, str] | None,
) -> dict[str, Any]:
    secret = secrets.token_urlsafe(48)
    main_dir, scale_dir = work / f"{label}-main", work / f"{label}-scale"
    main_env = paradarum_env(main_dir, database_urls[0], secret)
    scale_env = paradarum_env(scale_dir, database_urls[1], secret)
    servers: list[Server] = []
    try:
        print(f"\n== {label} ==", flush=True)
        main = start_paradarum(f"{label}-main", main_env, work)
        servers.append(main)
        creds = sign_in_and_create_keys(main.base_url)
        store = store_for(main_dir, database_urls[0])
        store.add_write_counter()
        key_h = {"X-API-Key": creds.key}
        jwt_h = {"Authorization": f"Bearer {creds.jwt}"}
        health = Scenario("open GET /api/health", main, "/api/health")
        key_account = Scenario("key GET /api/account", main, "/api/account", key_h)
        jwt_account = Scenario("JWT GET /api/account", main, "/api/account", jwt_h)
        key_list = Scenario("key GET /api/account/apikeys", main, "/api/account/apikeys", key_h)
        scenarios = [health, key_account, jwt_account, key_list]

        scale: Scenario | None = None
        seed_seconds = None
        if args.keys > 0:
            migrate(scale_env)
            scale_store = store_for(scale_dir, database_urls[1])
            print(f" seeding {args.keys:,} keys straight into the database ...", flush=True)
            seed_seconds = round(scale_store.seed_keys(args.keys), 1)
            print(f" seeded in {seed_seconds} s", flush=True)
            scale_server = start_paradarum(f"{label}-scale", scale_env, work)
            servers.append(scale_server)
            scale_creds = sign_in_and_create_keys(scale_server.base_url)
            scale = Scenario(
                f"key GET /api/account, {args.keys:,} keys",
                scale_server,
                "/api/account",
                {"X-API-Key": scale_creds.key},
            )
            # Right after the 1-key case in every round, so the two are paired.
            scenarios.insert(scenarios.index(key_account) + 1, scale)

        peer_scenarios: list[Scenario] = []
        if peer is not None:
            peer_server, peer_key = peer
            peer_scenarios = [
                Scenario("peer open GET /api/health", peer_server, "/api/health"),
                Scenario(
                    "peer key GET /api/account",
                    peer_server,
                    "/api/account",
                    {"Authorization": f"Api-Key {peer_key}"},
                ),
            ]
            scenarios.extend(peer_scenarios)

        interleave(scenarios, wrk, args)

        # Hot key: 64 connections on one key that has never been used (the first
        # use happens under load), then again once its lastUsedAt is over a minute old.
        hot_h = {"X-API-Key": creds.hot_key}
        hot_first = Scenario("hot key, first use (64 conns)", main, "/api/account", hot_h, 64)
        hot_first.measure(wrk, argparse.Namespace(**{**vars(args), "warmup": 0}))
        first_writes = store.usage_writes(creds.hot_key_id)
        store.backdate_last_use(creds.hot_key_id, minutes=2)
        hot_stale = Scenario("hot key, stale by 2 min (64 conns)", main, "/api/account", hot_h, 64)
        hot_stale.measure(wrk, argparse.Namespace(**{**vars(args), "warmup": 0}))
        stale_writes = store.usage_writes(creds.hot_key_id)

        main_hwm = vm_hwm_mib(main.pid)
        result: dict[str, Any] = {
            "backend": label,
            "scenarios": {s.name: s.summary() for s in scenarios},
            "ratios": {
                "key/open": ratio(key_account, health),
                "jwt/open": ratio(jwt_account, health),
                "key list/open": ratio(key_list, health),
            },
            "hot_key": {
                "first_use": {**hot_first.summary(), "last_used_writes": first_writes},
                "stale": {**hot_stale.summary(), "last_used_writes": stale_writes},
            },
            "server_vm_hwm_mib": main_hwm,
        }
        if scale is not None:
            result["scale"] = {
                "keys": args.keys,
                "seed_seconds": seed_seconds,
                "ratio_vs_1_key": ratio(scale, key_account),
            }
        if peer_scenarios:
            result["peer_ratio_key"] = ratio(key_account, peer_scenarios[1])
            result["peer_own_ratio"] = ratio(peer_scenarios[1], peer_scenarios[0])
        return result
    finally:
        for server in servers:
            server.stop()


def vm_hwm_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# -- output ------------------------------------------------------------------------


def print_table(result: dict[str, Any]) -> None:
    print(f"\n### {result['backend']}")
    head = f"| {'scenario':<38} | {'conns':>5} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} "
    head += f"| {'non-2xx':>7} | {'peak RSS MiB':>12} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    rows = list(result["scenarios"].values())
    rows += [
        {**result["hot_key"]["first_use"]},
        {**result["hot_key"]["stale"]},
    ]
    for row in rows:
        non_2xx = row["non_2xx"] + row["socket_errors"]
        print(
            f"| {row['name']:<38} | {row['connections']:>5} | {row['rps_median']:>8.0f} "
            f"| {row['p50_ms']:>7.2f} | {row['p99_ms']:>7.2f} | {non_2xx:>7} "
            f"| {row['peak_rss_mib']:>12} |"
        )
    r = result["ratios"]
    print(f"\nkey/open {r['key/open']:.2f}   JWT/open {r['jwt/open']:.2f}   ", end="")
    print(f"key list/open {r['key list/open']:.2f}")
    hot = result["hot_key"]
    first, stale = hot["first_use"], hot["stale"]
    print(
        f"hot key lastUsedAt writes: first use {first['last_used_writes']} "
        f"({first['requests']} requests), after 2 min {stale['last_used_writes']} "
        f"({stale['requests']} requests)"
    )
    if "scale" in result:
        s = result["scale"]
        print(f"{s['keys']:,} keys vs 1 key: {s['ratio_vs_1_key']:.2f}", end="")
        print(f" (seeded in {s['seed_seconds']} s)")
    if "peer_ratio_key" in result:
        print(
            f"key-authed vs peer key-authed: {result['peer_ratio_key']:.1f}x   "
            f"(peer's own key/open {result['peer_own_ratio']:.2f})"
        )
    print(f"server VmHWM (whole run): {result['server_vm_hwm_mib']} MiB")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "pinned": HAS_TASKSET,
        "load_average_at_start": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3, help="measured seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=1, help="warm-up seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (median kept)")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for the scale case")
    parser.add_argument("--no-peer", action="store_true", help="skip the Django peer")
    parser.add_argument(
        "--backend",
        choices=["all", "sqlite", "postgresql"],
        default="all",
        help="PostgreSQL runs when PARADARUM_DATABASE_URL is set",
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items()},
        "results": [],
    }
    pg_url = os.environ.get("PARADARUM_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="paradarum-bench-") as tmp:
        work = Path(tmp)
        peer = None if args.no_peer else start_peer(work)
        try:
            if args.backend in ("all", "sqlite"):
                report["results"].append(
                    bench_backend(
                        "sqlite",
                        wrk=wrk,
                        args=args,
                        work=work,
                        database_urls=(None, None),
                        store_for=lambda d, _u: Store(sqlite_path=d / "paradarum.db"),
                        peer=peer,
                    )
                )
            if args.backend in ("all", "postgresql") and pg_url:
                try:
                    with (
                        throwaway_pg_database(pg_url) as main_url,
                        throwaway_pg_database(pg_url) as scale_url,
                    ):
                        report["results"].append(
                            bench_backend(
                                "postgresql",
                                wrk=wrk,
                                args=args,
                                work=work,
                                database_urls=(main_url, scale_url),
                                store_for=lambda _d, u: Store(pg_url=u),
                                peer=peer,
                            )
                        )
                except Exception as exc:  # e.g. the shared server restarted mid-run
                    print(f"PostgreSQL run failed: {exc!r}", file=sys.stderr)
                    report["postgresql_error"] = repr(exc)
            elif args.backend == "postgresql":
                raise SystemExit("set PARADARUM_DATABASE_URL=postgresql://... for PostgreSQL")
        finally:
            if peer is not None:
                peer[0].stop()
    report["machine"]["load_average_at_end"] = os.getloadavg()
    report["elapsed_seconds"] = round((datetime.now(UTC) - started).total_seconds())
    for result in report["results"]:
        print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nResults written to {out.relative_to(ROOT)} ({report['elapsed_seconds']} s)")


if __name__ == "__main__":
    main()
