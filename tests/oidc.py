"""A local OpenID Connect issuer, and a stand-in for GitHub Actions' token endpoint.

The issuer serves its discovery document and JWKS on a loopback port, with keys
made per test (``cryptography``), rotation, and ways to misbehave (down, slow,
oversized). It signs tokens shaped as GitHub's::

    with oidc_issuer() as issuer:
        settings = Settings(..., oidc_insecure_issuers=[issuer.url])
        token = issuer.sign(issuer.github_claims(audience="https://cdn.example"))

``/actions/token`` answers as ``ACTIONS_ID_TOKEN_REQUEST_URL`` does inside a job:
``GET ...&audience=X`` with ``Authorization: bearer <request token>`` gives
``{"value": "<ID token for X>"}``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/keys"
ACTIONS_PATH = "/actions/token"
REPOSITORY_ID = "690123456"
OWNER_ID = "41234567"
REPOSITORY = "acme/site"


@dataclass
class IssuerKey:
    kid: str
    algorithm: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        codec = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        jwk: dict[str, Any] = codec.to_jwk(self.private.public_key(), as_dict=True)  # type: ignore[attr-defined]
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(algorithm: str = "RS256") -> IssuerKey:
    private: Any
    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return IssuerKey(uuid.uuid4().hex[:16], algorithm, private)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A JWT put together by hand: ``alg: none`` (no ``secret``), or HMAC-SHA256
    with ``secret`` (the public key, as an algorithm-confusion attack would)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


class Issuer(ThreadingHTTPServer):
    """Discovery + JWKS on a free loopback port; counts JWKS fetches.

    ``status`` (of the discovery and JWKS answers), ``stall`` (answers wait until
    the test ends), ``padding`` (bytes added to the JWKS) and ``nested`` (its
    documents nested deeper than a JSON decoder goes) make it misbehave.
    """

    daemon_threads = True

    def __init__(self, algorithm: str = "RS256") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.keys: list[IssuerKey] = [new_key(algorithm)]
        self.jwks_fetches = 0
        self.status = 200
        self.stall = False
        self.padding = 0
        self.nested = False
        self.request_token = uuid.uuid4().hex
        # Claims the Actions stand-in puts in the tokens it hands out (another repository...).
        self.actions_claims: dict[str, Any] = {}
        self.released = threading.Event()
        self.clock = time.time
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The issuer (``iss``), as policies and tokens spell it."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def actions_url(self) -> str:
        """What ``ACTIONS_ID_TOKEN_REQUEST_URL`` holds inside a job (it has a query)."""
        return f"{self.url}{ACTIONS_PATH}?api-version=2.0"

    @property
    def current(self) -> IssuerKey:
        with self.lock:
            return self.keys[-1]

    def rotate(self, algorithm: str = "RS256", *, keep_old: bool = False) -> IssuerKey:
        key = new_key(algorithm)
        with self.lock:
            self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def github_claims(self, *, audience: str, now: float | None = None, **overrides: Any) -> dict:
        """Claims shaped as a GitHub Actions ID token's (push to main of acme/site)."""
        moment = int(self.clock() if now is None else now)
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": f"repo:{REPOSITORY}:ref:refs/heads/main",
            "aud": audience,
            "ref": "refs/heads/main",
            "sha": "a" * 40,
            "repository": REPOSITORY,
            "repository_owner": "acme",
            "repository_owner_id": OWNER_ID,
            "repository_id": REPOSITORY_ID,
            "repository_visibility": "private",
            "run_id": "7001",
            "run_number": "12",
            "run_attempt": "1",
            "actor": "ada",
            "workflow": "Deploy",
            "event_name": "push",
            "ref_type": "branch",
            "job_workflow_ref": f"{REPOSITORY}/.github/workflows/deploy.yml@refs/heads/main",
            "iss": self.url,
            "nbf": moment - 5,
            "iat": moment - 5,
            "exp": moment + 300,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any], *, key: IssuerKey | None = None, **header: Any) -> str:
        key = key or self.current
        headers = {"kid": key.kid, **header}
        return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)

    def document(self, path: str) -> bytes | None:
        if self.nested and path in (DISCOVERY_PATH, JWKS_PATH):
            return b"[" * 5_000 + b"]" * 5_000
        if path == DISCOVERY_PATH:
            return json.dumps(
                {
                    "issuer": self.url,
                    "jwks_uri": self.url + JWKS_PATH,
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                }
            ).encode()
        if path == JWKS_PATH:
            with self.lock:
                self.jwks_fetches += 1
                keys = [key.public_jwk() for key in self.keys]
                padding = "x" * self.padding
            return json.dumps({"keys": keys, "padding": padding}).encode()
        return None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the timeout tests) closes before the answer is written.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        self.released.set()
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Issuer

    def do_GET(self) -> None:
        issuer = self.server
        parts = urlsplit(self.path)
        if parts.path == ACTIONS_PATH:
            self._actions_token(parse_qs(parts.query))
            return
        if issuer.stall:
            issuer.released.wait(60)
        body = issuer.document(parts.path)
        status = issuer.status if body is not None else 404
        self._answer(status, body if status == 200 and body is not None else b"{}")

    def _actions_token(self, query: dict[str, list[str]]) -> None:
        issuer = self.server
        if self.headers.get("Authorization") != f"bearer {issuer.request_token}":
            self._answer(401, b'{"message": "bad request token"}')
            return
        audience = query.get("audience", ["https://github.com/acme"])[0]
        token = issuer.sign(issuer.github_claims(audience=audience, **issuer.actions_claims))
        self._answer(200, json.dumps({"count": 1, "value": token}).encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def oidc_issuer(algorithm: str = "RS256") -> Iterator[Issuer]:
    """A running :class:`Issuer` with one key; stopped afterwards."""
    server = Issuer(algorithm)
    try:
        yield server
    finally:
        server.stop()
