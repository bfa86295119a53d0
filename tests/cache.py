"""A real Varnish with the shipped VCL, in front of a tiny origin the test runs,
plus a recording stand-in for a cache node."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support import IN_CI, free_port

VCL_PATH = Path(__file__).resolve().parents[1] / "deploy" / "varnish" / "paradarum.vcl"


def find_varnishd() -> str | None:
    found = shutil.which("varnishd")
    if found:
        return found
    return "/usr/sbin/varnishd" if os.access("/usr/sbin/varnishd", os.X_OK) else None


def require_varnishd() -> str:
    path = find_varnishd()
    if path is None:
        reason = "varnishd is not installed (apt-get install -y varnish)"
        if IN_CI:
            pytest.fail(f"{reason}; it is required when CI=true")
        pytest.skip(reason)
    return path


class _Handler(BaseHTTPRequestHandler):
    server: Origin

    def do_GET(self) -> None:
        origin = self.server
        with origin.lock:
            key = (self.headers.get("Host", ""), self.path)
            count = next(origin.counters.setdefault(key, itertools.count(1)))
        body = f"{self.path} v{count}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=3600")
        tags = origin.tags.get(self.path)
        if tags:
            self.send_header("X-Cache-Tags", tags)
        for name, value in origin.headers.get(self.path, {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Origin(ThreadingHTTPServer):
    """Answers ``<path> v<n>``: n counts the requests that reached it, per host and path.

    ``tags`` (per path, whatever the host: two sites may share a tag) go out as
    ``X-Cache-Tags``; ``headers`` are more response headers per path."""

    daemon_threads = True

    def __init__(
        self,
        tags: dict[str, str] | None = None,
        headers: dict[str, dict[str, str]] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.lock = threading.Lock()
        self.counters: dict[tuple[str, str], itertools.count[int]] = {}
        self.tags = tags or {}
        self.headers = headers or {}
        self.port = self.server_address[1]


@contextlib.contextmanager
def running_origin(
    tags: dict[str, str] | None = None, headers: dict[str, dict[str, str]] | None = None
) -> Iterator[Origin]:
    origin = Origin(tags, headers)
    thread = threading.Thread(target=origin.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        origin.shutdown()
        origin.server_close()


@dataclass
class Varnish:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, host: str = "www.example.com") -> httpx.Response:
        return httpx.get(self.base_url + path, headers={"Host": host}, timeout=10)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)


@contextlib.contextmanager
def running_varnish(
    origin_port: int, workdir: Path, *, allowed: list[str] | None = None
) -> Iterator[Varnish]:
    """``varnishd -F`` on a free loopback port with the shipped VCL, pointed at the origin.

    ``allowed`` replaces the addresses of the ``purgers`` ACL."""
    varnishd = require_varnishd()
    workdir.mkdir(parents=True, exist_ok=True)
    vcl = re.sub(
        r'(backend default \{[^}]*\.port = )"\d+";',
        rf'\g<1>"{origin_port}";',
        VCL_PATH.read_text(),
    )
    assert f'"{origin_port}"' in vcl
    if allowed is not None:
        entries = "".join(f'    "{address}";\n' for address in allowed)
        vcl, count = re.subn(r"acl purgers \{[^}]*\}", f"acl purgers {{\n{entries}}}", vcl)
        assert count == 1
    vcl_path = workdir / "test.vcl"
    vcl_path.write_text(vcl)
    port = free_port()
    log_path = workdir / "varnishd.log"
    command = [
        varnishd,
        "-F",  # stay in the foreground: a child of the test
        "-n",
        str(workdir / "instance"),
        "-a",
        f"127.0.0.1:{port}",
        "-f",
        str(vcl_path),
        "-s",
        "malloc,32m",
        "-T",
        "none",
        "-p",
        "vsl_space=1M",
        # No privilege separation: as root the default jail would switch to the varnish
        # users, who cannot read the test's private temporary directory; as anyone else
        # there is nothing to switch to. Either way everything runs as the test's user.
        "-j",
        "none",
    ]
    log = log_path.open("ab")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    varnish = Varnish(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"varnishd exited early:\n{varnish.output()}")
            try:
                if httpx.get(varnish.base_url + "/__ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"varnishd did not start:\n{varnish.output()}")
            time.sleep(0.1)
        yield varnish
    finally:
        varnish.stop()
        log.close()


# -- a recording cache node ----------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RecordingNode:
    server: ThreadingHTTPServer
    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Open: requests are answered at once. hold() keeps them waiting until release().
    gate: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()


@contextlib.contextmanager
def recording_node(status: int = 200) -> Iterator[RecordingNode]:
    """A stand-in cache node that records every request and answers ``status``."""
    holder: dict[str, RecordingNode] = {}

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            node = holder["node"]
            node.gate.wait(timeout=60)
            with node.lock:
                node.requests.append(
                    Recorded(
                        self.command, self.path, {k.lower(): v for k, v in self.headers.items()}
                    )
                )
            self.send_response(node.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PURGE = do_BAN = do_GET = _record

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    node = RecordingNode(server=server, status=status)
    node.release()
    holder["node"] = node
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        server.shutdown()
        server.server_close()
