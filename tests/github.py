"""A stand-in for GitHub's secret scanning keys endpoint, signing with real ECDSA keys.

Tests point ``PARADARUM_SECRET_SCANNING_KEYS_URL`` at it and sign report bodies
the way GitHub does::

    with github_keys_server() as github:
        settings = Settings(..., secret_scanning_keys_url=github.url)
        body = json.dumps([{"token": key, "type": "paradarum_api_key", "url": ""}]).encode()
        client.post("/api/secret-scanning/github", content=body, headers=github.headers(body))
        assert github.requests == 1
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

KEYS_PATH = "/meta/public_keys/secret_scanning"


@dataclass
class SigningKey:
    identifier: str
    private: ec.EllipticCurvePrivateKey
    current: bool

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


def new_signing_key(curve: ec.EllipticCurve | None = None) -> SigningKey:
    """A fresh key pair; like GitHub's, its identifier is the SHA-256 of the public key."""
    private = ec.generate_private_key(curve or ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(hashlib.sha256(der).hexdigest(), private, current=True)


def sign(key: SigningKey, body: bytes) -> str:
    """``Github-Public-Key-Signature``: base64 of the DER ECDSA/SHA-256 signature."""
    return base64.b64encode(key.private.sign(body, ec.ECDSA(hashes.SHA256()))).decode("ascii")


class GitHubKeys(ThreadingHTTPServer):
    """Serves ``{"public_keys": [...]}`` on a free loopback port and counts requests.

    ``status`` and ``delay`` make it misbehave; :meth:`stop` takes it down.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.keys: list[SigningKey] = [new_signing_key()]
        self.requests = 0
        self.status = 200
        self.delay = 0.0
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{KEYS_PATH}"

    @property
    def identifier(self) -> str:
        """The current signing key's identifier (``Github-Public-Key-Identifier``)."""
        return self.current.identifier

    @property
    def current(self) -> SigningKey:
        with self.lock:
            return next(key for key in reversed(self.keys) if key.current)

    def sign(self, body: bytes) -> str:
        """Sign ``body`` with the current key, as GitHub would."""
        return sign(self.current, body)

    def headers(self, body: bytes) -> dict[str, str]:
        key = self.current
        return {
            "Github-Public-Key-Identifier": key.identifier,
            "Github-Public-Key-Signature": sign(key, body),
            "Content-Type": "application/json",
        }

    def rotate(self, curve: ec.EllipticCurve | None = None) -> SigningKey:
        """Publish a new current key beside the old ones (now not current)."""
        key = new_signing_key(curve)
        with self.lock:
            for old in self.keys:
                old.current = False
            self.keys.append(key)
        return key

    def withdraw(self, identifier: str) -> None:
        with self.lock:
            self.keys = [key for key in self.keys if key.identifier != identifier]

    def document(self) -> bytes:
        with self.lock:
            entries = [
                {"key_identifier": k.identifier, "key": k.public_pem(), "is_current": k.current}
                for k in self.keys
            ]
        return json.dumps({"public_keys": entries}).encode()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the timeout tests) closes before the answer is written.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        """Take the server down: from now on connections are refused."""
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: GitHubKeys

    def do_GET(self) -> None:
        github = self.server
        with github.lock:
            github.requests += 1
            status, delay = github.status, github.delay
        if delay:
            time.sleep(delay)
        body = github.document() if status == 200 and self.path == KEYS_PATH else b"{}"
        self.send_response(status if self.path == KEYS_PATH else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def github_keys_server() -> Iterator[GitHubKeys]:
    """A running :class:`GitHubKeys` with one current P-256 key; stopped afterwards."""
    server = GitHubKeys()
    try:
        yield server
    finally:
        server.stop()
