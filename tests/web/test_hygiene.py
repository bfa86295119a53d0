"""Hygiene: caching and security headers, what reaches the logs, and the cost of a
failed sign-in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import argon2
import pytest
from sqlalchemy import select

from paradarum import keys, logs
from paradarum.db.tables import api_keys, persons
from tests.support import PASSWORD, bearer, create_key, login, new_account, signup

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def explode(*_args, **_kwargs):
    raise RuntimeError("boom")


def assert_security_headers(response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["permissions-policy"]
    if response.request.url.path.startswith("/api"):
        assert response.headers["cache-control"] == "no-store", response.request.url


def test_every_response_carries_the_security_headers(client, runtime, monkeypatch):
    token = new_account(client)
    h = {**bearer(token), "Content-Type": "application/json"}
    responses = [
        client.get("/api/health"),
        client.get("/openapi.json"),
        client.get("/"),
        client.get("/api/nope"),
        client.put("/api/account/apikeys", json={}),
        client.get("/api/account"),
        client.post("/api/account/apikeys", content=b"{", headers=h),
        client.post("/api/account/apikeys", content=b"x=1", headers={**h, "Content-Type": "a/b"}),
        client.post("/api/account/apikeys", content=b"x" * 70_000, headers=h),
        client.post("/api/auth/login", json={"email": "a@b.co", "password": "wrong password"}),
        client.post("/api/auth/signup", json={"email": "s@example.com", "password": PASSWORD}),
        client.post("/api/auth/login", json={"email": "s@example.com", "password": PASSWORD}),
        client.post("/api/account/apikeys", json={"name": "k"}, headers=bearer(token)),
    ]
    monkeypatch.setattr(runtime.apikeys, "list", explode)
    responses.append(client.get("/api/account/apikeys", headers=bearer(token)))
    assert {r.status_code for r in responses} >= {200, 201, 400, 401, 404, 405, 413, 415, 500}
    for response in responses:
        assert_security_headers(response)


def test_responses_that_carry_a_key_or_a_token_are_never_stored(client):
    signup(client, "ada@example.com")
    signed_in = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    token = signed_in.json()["data"]["token"]
    created = client.post("/api/account/apikeys", json={"name": "k"}, headers=bearer(token))
    for response in (signed_in, created):
        assert response.headers["cache-control"] == "no-store"


def test_the_database_engine_hides_parameters(runtime):
    assert runtime.db.engine.hide_parameters is True


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every logger, SQLAlchemy's statements included, as the server writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    engine_logger = logging.getLogger("sqlalchemy.engine")
    # The test client's own request log (httpx, on the calling side) is not the
    # server's: it prints the URL it was asked to fetch.
    client_logger = logging.getLogger("httpx")
    saved = (root.handlers[:], root.level, engine_logger.level, client_logger.level)
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    engine_logger.setLevel(logging.INFO)  # statements, with parameters if not hidden
    client_logger.setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        engine_logger.setLevel(saved[2])
        client_logger.setLevel(saved[3])


def test_a_full_run_with_forced_500s_logs_no_key_password_token_or_hash(
    client, runtime, json_logs, monkeypatch
):
    passwords = [PASSWORD, "a second long password", "wrong password!"]
    signup(client, "ada@example.com")
    assert (
        client.post(
            "/api/auth/login", json={"email": "ada@example.com", "password": passwords[2]}
        ).status_code
        == 401
    )
    first = login(client, "ada@example.com")
    created = [create_key(client, first, f"k{i}") for i in range(3)]
    raw = [c["key"] for c in created]
    assert client.get("/api/account", headers=bearer(raw[0])).status_code == 200
    assert client.get("/api/account", headers={"X-API-Key": raw[1]}).status_code == 200
    typo = raw[0][:-1] + ("x" if raw[0][-1] != "x" else "y")
    assert client.get("/api/account", headers=bearer(typo)).status_code == 401
    # Credentials in a URL are refused, and the URL's query is never logged.
    for query in (f"api_key={raw[2]}", f"token={first}", "token=s3cr3t-in-a-query"):
        assert client.get(f"/api/account?{query}", headers=bearer(raw[2])).status_code == 401
    assert client.get("/api/account/audit", headers=bearer(first)).status_code == 200
    client.delete(f"/api/account/apikeys/{created[2]['id']}", headers=bearer(first))

    # Forced 500 no. 1: a database error carrying a key hash (a duplicate key).
    monkeypatch.setattr(keys, "generate", lambda: raw[0])
    duplicate = client.post("/api/account/apikeys", json={"name": "dup"}, headers=bearer(raw[1]))
    assert duplicate.status_code == 500
    monkeypatch.undo()
    # Forced 500 no. 2: an unexpected exception deep in a request with a password.
    monkeypatch.setattr(runtime.passwords, "hash", explode)
    changed = client.post(
        "/api/account/password",
        json={"currentPassword": PASSWORD, "newPassword": passwords[1]},
        headers=bearer(first),
    )
    assert changed.status_code == 500
    monkeypatch.undo()
    changed = client.post(
        "/api/account/password",
        json={"currentPassword": PASSWORD, "newPassword": passwords[1]},
        headers=bearer(first),
    )
    assert changed.status_code == 200
    second = login(client, "ada@example.com", passwords[1])
    assert client.post("/api/auth/logout", headers=bearer(second)).status_code == 200

    text = json_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    # The scan means something: the 500s, the statements and the requests are there.
    errors = [line for line in lines if line["level"] == "error" and "exception" in line]
    assert len(errors) == 2
    assert any("IntegrityError" in line["exception"] for line in errors)
    assert any("INSERT INTO api_keys" in line["message"] for line in lines)
    assert any(line.get("path") == "/api/account" for line in lines)

    with runtime.db.reading() as conn:
        password_hashes = conn.execute(select(persons.c.password_hash)).scalars().all()
        key_hashes = conn.execute(select(api_keys.c.key_hash)).scalars().all()
    secrets = {
        *raw,
        *(key[8:] for key in raw),
        typo,
        *passwords,
        first,
        second,
        *(token.rsplit(".", 1)[1] for token in (first, second)),
        *password_hashes,
        *(h.rsplit("$", 1)[1] for h in password_hashes),
        *key_hashes,
        "s3cr3t-in-a-query",
        runtime.tokens._secret,
    }
    assert len(key_hashes) == 3 and len(password_hashes) == 1
    for secret in secrets:
        assert secret not in text, f"a secret reached the logs: {secret[:6]}…"
    assert "?" not in "".join(str(line.get("path", "")) for line in lines)


def test_unknown_email_and_wrong_password_each_cost_one_argon2_verification(client, monkeypatch):
    signup(client, "ada@example.com")
    verifications: list[str] = []
    original = argon2.PasswordHasher.verify

    def counted(self, hash, password):
        verifications.append(password)
        return original(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counted)

    def attempt(email: str, password: str) -> int:
        verifications.clear()
        response = client.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code in (200, 401)
        return len(verifications)

    assert attempt("nobody@example.com", PASSWORD) == 1
    assert attempt("ada@example.com", "wrong password") == 1
    assert attempt("ada@example.com", PASSWORD) == 1
    assert attempt("no\x00body@example.com", PASSWORD) == 1
    assert attempt("x" * 320, PASSWORD) == 1


def test_a_blocked_sign_in_costs_no_argon2_verification(client, runtime, monkeypatch):
    signup(client, "ada@example.com")
    for _ in range(runtime.settings.login_failures_per_email):
        client.post("/api/auth/login", json={"email": "ada@example.com", "password": "wrong one!"})
    calls: list[int] = []
    monkeypatch.setattr(argon2.PasswordHasher, "verify", lambda *a: calls.append(1))
    response = client.post("/api/auth/login", json={"email": "ada@example.com", "password": "x"})
    assert response.status_code == 429
    assert calls == []
