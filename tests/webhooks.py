"""A webhook receiver for tests, on a loopback port: it verifies every delivery's
signature with the Standard Webhooks reference library (``standardwebhooks``), and
can be told to fail, hang or redirect."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support import free_port


@dataclass
class Delivery:
    """One request the receiver got, and whether its signature verified."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    # Verified against the signature alone: the timestamp is a frozen clock's.
    signed: bool

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        receiver = self.server
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        with receiver.lock:
            mode, secret = receiver.mode, receiver.secret
        verified = signed = False
        if secret is not None:
            hook = Webhook(secret)
            try:
                hook.verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            with contextlib.suppress(KeyError, ValueError):
                moment = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
                expected = hook.sign(headers["webhook-id"], moment, body)
                signed = expected in headers["webhook-signature"].split(" ")
        with receiver.lock:
            receiver.deliveries.append(Delivery(self.path, headers, body, verified, signed))
        if self.path == "/followed":
            self._answer(200)
            return
        if mode == "hang":
            receiver.release.wait(60)
            return
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{receiver.port}/followed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10 * 1024 * 1024))
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(10 * 16):
                    self.wfile.write(b"x" * 65536)
            return
        self._answer(500 if mode == "fail" else 200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class Receiver(ThreadingHTTPServer):
    """``mode``: ``ok`` (200), ``fail`` (500), ``hang`` (no answer until released),
    ``redirect`` (302 to ``/followed`` on itself), ``huge`` (a 10 MiB answer)."""

    daemon_threads = True

    def __init__(self, secret: str | None = None) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.lock = threading.Lock()
        self.port = self.server_address[1]
        self.secret = secret
        self.mode = "ok"
        self.release = threading.Event()
        self.deliveries: list[Delivery] = []

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def received(self, path: str = "/hook") -> list[Delivery]:
        with self.lock:
            return [delivery for delivery in self.deliveries if delivery.path == path]

    def set(self, *, mode: str | None = None, secret: str | None = None) -> None:
        with self.lock:
            if mode is not None:
                self.mode = mode
            if secret is not None:
                self.secret = secret


@contextlib.contextmanager
def webhook_receiver(secret: str | None = None) -> Iterator[Receiver]:
    receiver = Receiver(secret)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.shutdown()
        receiver.server_close()
