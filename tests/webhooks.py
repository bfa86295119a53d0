"""A webhook receiver for tests: a real HTTP server on a loopback address that keeps
every request it gets and answers as the test says.

``mode``: ``ok`` (204), ``fail`` (500), ``hang`` (holds the request, answering only
when the test is done), ``redirect`` (302 to another path of its own, so that a
followed redirect would show as a second request). Signatures are checked by the
tests with the Standard Webhooks library itself (``standardwebhooks.Webhook``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "fail", "hang", "redirect"]


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    host: str
    port: int
    mode: Mode = "ok"
    received: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    def requests(self) -> list[Request]:
        with self.lock:
            return list(self.received)


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.receiver
        with receiver.lock:
            receiver.received.append(
                Request(
                    self.path, {name.lower(): value for name, value in self.headers.items()}, body
                )
            )
        if receiver.mode == "hang":
            receiver.done.wait(60)
            return
        if receiver.mode == "redirect" and self.path != "/followed":
            self.send_response(302)
            self.send_header("Location", f"http://{receiver.host}:{receiver.port}/followed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = 500 if receiver.mode == "fail" else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def receiver(host: str = "127.0.0.1", port: int = 0, mode: Mode = "ok") -> Iterator[Receiver]:
    """A receiver on ``host`` (any loopback address: 127.0.0.2 is another host for
    the address policy), on ``port`` (0: a free one)."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    state = Receiver(host, int(server.server_address[1]), mode)
    handler.receiver = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.done.set()
        server.shutdown()
        server.server_close()
