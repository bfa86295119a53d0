"""The edge, in process: HTTP details every client meets (405 with the right Allow,
HEAD, trailing slashes), credentials that are ambiguous or in the URL, and log
lines that stay one line whatever a request holds."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from paradarum import logs
from tests.support import bearer, create_key, new_account, peer


def test_a_method_an_endpoint_does_not_have_is_405_with_the_methods_it_has(client):
    cases = {
        ("PUT", "/api/account/apikeys"): "GET, HEAD, POST",
        ("POST", "/api/account"): "GET, HEAD, PATCH",
        ("GET", "/api/auth/login"): "POST",
        ("PATCH", "/api/account/zones/7"): "DELETE",
    }
    for (method, path), allow in cases.items():
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allow
        assert response.json()["succeeded"] is False


def test_head_answers_pages_and_reads_without_a_body(client):
    for path in ("/account", "/signin", "/api/health"):
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0


def test_a_trailing_slash_is_a_404_envelope_that_names_the_right_path(client):
    response = client.get("/api/account/apikeys/", follow_redirects=False)
    assert response.status_code == 404
    assert "/api/account/apikeys" in response.json()["message"]
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        # Two Authorization headers.
        [("authorization", "Bearer {key}"), ("authorization", "Bearer {other}")],
        # Authorization and X-API-Key with different values.
        [("authorization", "Bearer {key}"), ("x-api-key", "{other}")],
        # Even the same key twice: one credential per request.
        [("x-api-key", "{key}"), ("x-api-key", "{key}")],
    ],
)
def test_more_than_one_credential_is_a_400_never_the_first_one_silently(client, headers):
    token = new_account(client)
    key, other = create_key(client, token)["key"], create_key(client, token)["key"]
    raw = [(name, value.format(key=key, other=other)) for name, value in headers]
    response = client.get("/api/account", headers=raw)
    assert response.status_code == 400
    assert response.json()["message"] == "Send one credential."


def test_a_session_token_in_the_query_string_is_refused_like_a_key(client):
    token = new_account(client)
    for query in (f"token={token}", f"session={token}", f"x={token}"):
        response = client.get(f"/api/account?{query}", headers=bearer(token))
        assert response.status_code == 401, query


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:], root.level = saved


def test_a_log_entry_stays_one_line_whatever_the_path_holds(client, log_lines):
    tricky = "/api/\u2028second-line\u0085third\u202eevil\u2066x"
    client.get(tricky)
    logging.getLogger("paradarum.test").warning("name %s", "a\u2028b\u202ec")
    text = log_lines.getvalue()
    for character in ("\u2028", "\u0085", "\u202e", "\u2066"):
        assert character not in text
    lines = text.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one whole entry
    assert any(entry.get("path", "").startswith("/api/\u2028second-line") for entry in entries)
    assert any(entry.get("message") == "name a\u2028b\u202ec" for entry in entries)


def test_a_header_line_over_16_kib_is_431(client):
    response = client.get("/api/health", headers={"X-Big": "x" * (16 * 1024 + 1)})
    assert response.status_code == 431
    assert response.json()["succeeded"] is False


class TestAccessLogBehindAProxy:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"trusted_proxies": ["10.0.0.0/8"]}

    def test_the_access_log_names_the_client_the_proxy_forwards_for(self, client, log_lines):
        client.get("/api/health", headers=peer("10.1.1.1", {"X-Forwarded-For": "203.0.113.9"}))
        # A forged header from a peer that is not a trusted proxy changes nothing.
        client.get("/api/health", headers=peer("198.51.100.7", {"X-Forwarded-For": "192.0.2.1"}))
        entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        clients = [entry["client"] for entry in entries if entry.get("path") == "/api/health"]
        assert clients == ["203.0.113.9", "198.51.100.7"]


def test_the_access_log_masks_every_kind_of_secret_a_path_can_hold(client, log_lines):
    digest = hashlib.sha256(b"a key").hexdigest()
    argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    for path in (f"/api/x/{digest}", f"/api/x/Bearer {digest[:20]}", f"/api/x/{argon}"):
        client.get(path)
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    paths = [entry["path"] for entry in entries if entry["logger"] == "paradarum.access"]
    assert paths == [
        "/api/x/[hash]",
        "/api/x/Bearer [redacted]",
        "/api/x/[password hash]",
    ]
