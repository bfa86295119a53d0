"""The shipped HAProxy configuration in front of a real ``paradarum serve``: what the
server cannot enforce by itself (slow request heads, connections per client address)
the proxy does, and a fresh client is served while one address holds many sockets."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import IN_CI, free_port, start_server, wait_until

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "paradarum.cfg"
PER_CLIENT = int(re.search(r"sc0_conn_cur gt (\d+)", CONFIG.read_text()).group(1))  # type: ignore[union-attr]


def require_haproxy() -> str:
    path = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None
    )
    if path is None:
        reason = "haproxy is not installed (apt-get install -y haproxy)"
        if IN_CI:
            pytest.fail(f"{reason}; it is required when CI=true")
        pytest.skip(reason)
    return path


@contextlib.contextmanager
def running_haproxy(upstream_port: int, workdir: Path, **timeouts: str) -> Iterator[str]:
    """HAProxy with the shipped configuration on a free loopback port, in front of
    ``upstream_port``; ``timeouts`` replace ``timeout <name>`` values. Yields its URL."""
    haproxy = require_haproxy()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = CONFIG.read_text()
    config, bound = re.subn(r"bind 127\.0\.0\.1:8080", f"bind 127.0.0.1:{port}", config)
    config, served = re.subn(r"127\.0\.0\.1:8000", f"127.0.0.1:{upstream_port}", config)
    assert bound == served == 1
    for name, value in timeouts.items():
        config, count = re.subn(rf"timeout {name} \S+", f"timeout {name} {value}", config)
        assert count == 1, name
    path = workdir / "haproxy.cfg"
    path.write_text(config)
    check = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with (workdir / "haproxy.log").open("ab") as log:  # the child keeps its own copy
        process = subprocess.Popen([haproxy, "-db", "-f", str(path)], stdout=log, stderr=log)
    try:
        wait_until(lambda: _accepts(port), timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def slow_heads(port: int, source: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections from ``source``, each starting a request whose head it never
    finishes. The proxy may turn any of them away at once (it resets what it rejects, so
    connecting or sending may fail): such a socket is kept as it is, already closed by the
    proxy. Every socket is closed on the way out, whatever happened."""
    with contextlib.ExitStack() as stack:
        sockets: list[socket.socket] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sockets.append(sock)
            sock.bind((source, 0))
            try:
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: paradarum\r\nX-Slow: ")
            except OSError:  # reset or refused: the proxy turned this one away
                pass
            sock.setblocking(False)
        yield sockets


def _closed(sock: socket.socket) -> bool:
    """Whether the proxy has closed ``sock`` (what it said before closing is read and
    dropped: a slow head is answered ``408`` at the deadline)."""
    while True:
        try:
            if sock.recv(4096) == b"":
                return True
        except BlockingIOError:
            return False
        except OSError:  # reset, or never connected
            return True


def test_one_address_holding_many_slow_sockets_does_not_starve_a_fresh_client(tmp_path):
    env = {
        "PARADARUM_DATA_DIR": str(tmp_path / "data"),
        "PARADARUM_ACCESS_LOG": "false",
        "PARADARUM_TRUSTED_PROXIES": "127.0.0.1",
        # Fewer slots in the server than the hog's share at the proxy: were slow heads
        # passed on, the hog alone would hold every one of them.
        "PARADARUM_MAX_CONNECTIONS": "8",
    }
    server = start_server(env, log_path=tmp_path / "server.log")
    try:
        # The shipped deadlines, so the hog's share stays held while the fresh client asks.
        with (
            running_haproxy(int(server.base_url.rsplit(":", 1)[1]), tmp_path / "haproxy") as proxy,
            slow_heads(int(proxy.rsplit(":", 1)[1]), "127.0.0.2", PER_CLIENT * 2) as hog,
        ):
            # Past its share, the address's connections are turned away, and it never
            # holds more than its share at once.
            wait_until(lambda: sum(_closed(sock) for sock in hog) >= PER_CLIENT, timeout=10)
            assert sum(not _closed(sock) for sock in hog) <= PER_CLIENT
            # A fresh client is served meanwhile, through the proxy, as itself.
            with httpx.Client(
                base_url=proxy, transport=httpx.HTTPTransport(local_address="127.0.0.3")
            ) as fresh:
                for _ in range(3):
                    response = fresh.get("/api/health", timeout=10)
                    assert response.status_code == 200, response.text
            # The slow heads are shed at the proxy's deadline (timeout http-request).
            wait_until(lambda: all(_closed(sock) for sock in hog), timeout=30, interval=0.1)
    finally:
        server.stop()
