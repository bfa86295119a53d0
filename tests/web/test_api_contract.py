"""HTTP behaviour of API.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from paradarum import keys
from tests.support import PASSWORD, bearer, create_key, new_account, signup

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def assert_envelope(response, succeeded: bool):
    body = response.json()
    assert set(body) >= {"succeeded", "message", "data"}
    assert body["succeeded"] is succeeded
    assert isinstance(body["message"], str) and body["message"]
    return body


def assert_unauthorized(response):
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = assert_envelope(response, False)
    assert body == {"succeeded": False, "message": "Missing or invalid credentials.", "data": None}


def test_signup_normalises_email_and_refuses_duplicates(client):
    data = signup(client, "  Ada@Example.COM ")
    assert data["email"] == "ada@example.com"
    assert data["id"] > 0 and TIMESTAMP.match(data["createdAt"])
    again = client.post("/api/auth/signup", json={"email": "ADA@example.com", "password": PASSWORD})
    assert again.status_code == 409
    assert_envelope(again, False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ada@example.com", "password": "short"}, "password"),
        ({"email": "ada@example.com", "password": "x" * 1025}, "password"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": 5, "password": PASSWORD}, "email"),
        ({"password": PASSWORD}, "email"),
    ],
)
def test_signup_validation_errors_name_the_field(client, body, field):
    response = client.post("/api/auth/signup", json=body)
    assert response.status_code == 400
    assert field in assert_envelope(response, False)["errors"]


def test_signup_can_be_turned_off(client, runtime):
    runtime.settings.signup_enabled = False
    response = client.post("/api/auth/signup", json={"email": "a@b.co", "password": PASSWORD})
    assert response.status_code == 403
    assert_envelope(response, False)


def test_login_wrong_email_and_wrong_password_get_the_same_401(client):
    signup(client, "ada@example.com")
    wrong_password = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": "wrong password!"}
    )
    wrong_email = client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert wrong_password.json() == wrong_email.json()


def test_login_returns_a_bearer_token_with_expiry(client):
    signup(client, "ada@example.com")
    response = client.post(
        "/api/auth/login", json={"email": "ADA@example.com", "password": PASSWORD}
    )
    data = assert_envelope(response, True)["data"]
    assert data["tokenType"] == "Bearer"
    assert TIMESTAMP.match(data["expiresAt"])
    assert response.headers["cache-control"] == "no-store"
    assert not data["token"].startswith("pdm_")


def test_account_with_jwt_and_with_key(client):
    token = new_account(client, "ada@example.com")
    key = create_key(client, token)["key"]
    for headers in (bearer(token), bearer(key), {"X-API-Key": key}):
        response = client.get("/api/account", headers=headers)
        data = assert_envelope(response, True)["data"]
        assert data["email"] == "ada@example.com"
        assert data["activeKeys"] == 1
        assert data["keyLimit"] == 10


def test_create_key_returns_the_raw_key_once(client):
    token = new_account(client)
    response = client.post(
        "/api/account/apikeys", json={"name": "  WordPress purge plugin "}, headers=bearer(token)
    )
    assert response.status_code == 201
    body = assert_envelope(response, True)
    assert body["message"] == "API key created"
    data = body["data"]
    assert re.match(r"^pdm_[A-Za-z0-9]{28}$", data["key"])
    assert keys.is_well_formed(data["key"])
    assert data["keyPrefix"] == data["key"][:8]
    assert data["name"] == "WordPress purge plugin"
    assert TIMESTAMP.match(data["createdAt"])
    listed = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    assert "key" not in listed[0] and "keyHash" not in listed[0]
    assert data["key"] not in client.get("/api/account/apikeys", headers=bearer(token)).text


@pytest.mark.parametrize(
    "name",
    [
        "Zürich ✓ 日本語 🚀",
        "a",
        "x" * 100,
        "emoji 👩‍👩‍👧‍👦 family",
        "<img src=x onerror=alert(1)>",
        "'; DROP TABLE api_keys; --",
    ],
)
def test_unicode_names_round_trip_exactly(client, name):
    token = new_account(client)
    created = create_key(client, token, name)
    assert created["name"] == name
    listed = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    assert listed[0]["name"] == name


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "tab\there"},
        {"name": "line\nbreak"},
        {"name": "nul\x00"},
        # Characters that make one name look like another (a revoke dialog that
        # names the wrong key): bidirectional overrides and isolates, zero-width
        # spaces, line separators.
        {"name": "right-to-left \u202e text"},
        {"name": "isolate \u2066x\u2069"},
        {"name": "zero\u200bwidth"},
        {"name": "line\u2028separator"},
        {"name": "bom\ufeff"},
        {"name": 123},
        {"name": None},
        {"name": ["a"]},
        {},
        {"nome": "typo"},
    ],
)
def test_invalid_names_are_400_with_field_errors(client, body):
    token = new_account(client)
    response = client.post("/api/account/apikeys", json=body, headers=bearer(token))
    assert response.status_code == 400
    assert "name" in assert_envelope(response, False)["errors"]


def test_list_is_newest_first_with_revoked_included(client):
    token = new_account(client)
    ids = [create_key(client, token, f"k{i}")["id"] for i in range(3)]
    client.delete(f"/api/account/apikeys/{ids[0]}", headers=bearer(token))
    listed = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    assert [k["id"] for k in listed] == list(reversed(ids))
    assert [k["isRevoked"] for k in listed] == [False, False, True]
    for entry in listed:
        assert set(entry) >= {"id", "name", "keyPrefix", "createdAt", "lastUsedAt", "isRevoked"}
        assert entry["lastUsedAt"] is None


def test_eleventh_active_key_is_refused(client):
    token = new_account(client)
    for i in range(10):
        create_key(client, token, f"k{i}")
    response = client.post("/api/account/apikeys", json={"name": "k10"}, headers=bearer(token))
    assert response.status_code == 400
    assert "10" in assert_envelope(response, False)["message"]
    # Revoking frees a slot.
    first = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"][-1]
    assert (
        client.delete(f"/api/account/apikeys/{first['id']}", headers=bearer(token)).status_code
        == 200
    )
    create_key(client, token, "k10")


def test_revoke_statuses(client):
    token = new_account(client)
    other = new_account(client)
    key = create_key(client, token)
    foreign = create_key(client, other)
    path = f"/api/account/apikeys/{key['id']}"
    response = client.delete(path, headers=bearer(token))
    data = assert_envelope(response, True)["data"]
    assert data["isRevoked"] is True and data["id"] == key["id"]
    assert TIMESTAMP.match(data["revokedAt"])
    assert client.delete(path, headers=bearer(token)).status_code == 400
    assert client.delete("/api/account/apikeys/999999", headers=bearer(token)).status_code == 404
    assert (
        client.delete(f"/api/account/apikeys/{foreign['id']}", headers=bearer(token)).status_code
        == 404
    )
    assert client.get("/api/account", headers=bearer(foreign["key"])).status_code == 200
    for bad in ("abc", "0", "-1", "1.5", str(2**64)):
        assert (
            client.delete(f"/api/account/apikeys/{bad}", headers=bearer(token)).status_code == 400
        )


def test_revoked_key_gets_401_on_the_very_next_request(client):
    token = new_account(client)
    key = create_key(client, token)
    assert client.get("/api/account", headers=bearer(key["key"])).status_code == 200
    client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(token))
    assert_unauthorized(client.get("/api/account", headers=bearer(key["key"])))
    assert_unauthorized(client.get("/api/account", headers={"X-API-Key": key["key"]}))


def test_a_key_can_manage_keys_including_revoking_itself(client):
    token = new_account(client)
    key = create_key(client, token)
    second = create_key(client, key["key"], "made by a key")
    assert second["name"] == "made by a key"
    assert (
        client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(key["key"])).status_code
        == 200
    )
    assert_unauthorized(client.get("/api/account/apikeys", headers=bearer(key["key"])))


def test_last_used_at_is_set_by_success_only(client):
    token = new_account(client)
    key = create_key(client, token)
    typo = key["key"][:-1] + ("A" if key["key"][-1] != "A" else "B")
    assert client.get("/api/account", headers=bearer(typo)).status_code == 401
    listed = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    assert listed[0]["lastUsedAt"] is None
    client.get("/api/account", headers={"X-API-Key": key["key"], "User-Agent": "wp-plugin/1.0"})
    listed = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    assert TIMESTAMP.match(listed[0]["lastUsedAt"])
    assert listed[0]["lastUsedUserAgent"] == "wp-plugin/1.0"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Bearer pdm_tooShort"},
        {"Authorization": "Bearer " + keys.generate()},  # well-formed, unknown
        {"Authorization": "Bearer two words"},
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": keys.generate()},
        {"Authorization": "Bearer \xfcn\xefc\xf8d\xe9".encode("latin-1")},
    ],
)
def test_bad_credentials_all_get_the_same_401(client, headers):
    assert_unauthorized(client.get("/api/account", headers=headers))
    assert_unauthorized(client.get("/api/account/apikeys", headers=headers))


def test_keys_in_the_query_string_are_refused(client):
    token = new_account(client)
    key = create_key(client, token)["key"]
    for query in (f"api_key={key}", f"key={key}", f"x={key}", "token=abc", f"k=%70dm_{key[4:]}"):
        assert_unauthorized(client.get(f"/api/account?{query}"))
        # Even together with a valid header: a key in a URL is a leaked key.
        assert_unauthorized(client.get(f"/api/account?{query}", headers=bearer(key)))


def test_unknown_route_and_wrong_method_get_envelopes(client):
    response = client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert_envelope(response, False)
    response = client.put("/api/account/apikeys", json={})
    assert response.status_code == 405
    assert "allow" in response.headers
    assert_envelope(response, False)


def test_malformed_json_wrong_types_non_json_and_huge_bodies(client):
    token = new_account(client)
    h = {**bearer(token), "Content-Type": "application/json"}
    response = client.post("/api/account/apikeys", content=b"{not json", headers=h)
    assert response.status_code == 400
    assert "body" in assert_envelope(response, False)["errors"]
    response = client.post("/api/account/apikeys", content=b"[1, 2]", headers=h)
    assert response.status_code == 400
    response = client.post("/api/account/apikeys", content=b"\xff\xfe", headers=h)
    assert response.status_code == 400
    response = client.post(
        "/api/account/apikeys",
        content=b"name=x",
        headers={**bearer(token), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert_envelope(response, False)
    big = b'{"name": "' + b"x" * (64 * 1024) + b'"}'
    response = client.post("/api/account/apikeys", content=big, headers=h)
    assert response.status_code == 413
    assert_envelope(response, False)


def test_chunked_body_over_the_limit_is_413(client):
    def chunks():
        for _ in range(70):
            yield b"x" * 1024

    response = client.post(
        "/api/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_unexpected_error_is_a_generic_500_envelope(client, runtime, monkeypatch):
    token = new_account(client)

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(runtime.apikeys, "list", explode)
    response = client.get("/api/account/apikeys", headers=bearer(token))
    assert response.status_code == 500
    body = assert_envelope(response, False)
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert body["data"] is None


def test_health_is_open(client):
    response = client.get("/api/health")
    assert assert_envelope(response, True)["data"] == {"status": "ok", "jobs": None}
    assert client.get("/api/health/ready").status_code == 200


def test_readiness_counts_the_queues_jobs_by_kind_and_state(client):
    token = new_account(client, "counted@example.com")
    create_key(client, token)  # "a key was added": an email, queued or sent
    ready = assert_envelope(client.get("/api/health/ready"), True)["data"]
    jobs = ready["jobs"]
    assert set(jobs) == {"purge", "email", "webhook"}
    assert all(set(states) == {"queued", "running", "done", "failed"} for states in jobs.values())
    assert sum(jobs["email"].values()) == 1


def test_readiness_reads_the_schema_not_just_the_connection(client, runtime):
    """A database that answers but holds no schema is not ready (503, no detail)."""
    with runtime.db.writing() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    response = client.get("/api/health/ready")
    assert response.status_code == 503
    assert assert_envelope(response, False)["data"] is None
    assert "alembic" not in response.text


def test_security_headers_on_every_response(client):
    for response in (
        client.get("/api/health"),
        client.get("/api/nope"),
        client.get("/api/account"),
    ):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


def test_login_is_rate_limited_per_email_and_address_even_for_the_right_password(client, runtime):
    signup(client, "ada@example.com")
    limit = runtime.settings.login_failures_per_email_and_address
    for _ in range(limit):
        r = client.post(
            "/api/auth/login", json={"email": "ada@example.com", "password": "wrong-wrong"}
        )
        assert r.status_code == 401
    blocked = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert_envelope(blocked, False)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/auth/signup",
            b'{"email": "a@b.co", "password": "\\ud800\\ud800\\ud800\\ud800\\ud800x"}',
        ),
        ("/api/auth/login", b'{"email": "\\udfff@b.co", "password": "0123456789"}'),
        ("/api/auth/login", b'{"email": "a@b.co", "password": "\\ud800 0123456789"}'),
    ],
)
def test_lone_surrogates_are_a_400_not_a_500(client, path, body):
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert_envelope(response, False)


def test_lone_surrogate_in_a_key_name_is_a_400(client):
    token = new_account(client)
    response = client.post(
        "/api/account/apikeys",
        content=b'{"name": "bad \\ud83d name"}',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/health"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/signup"),
        ("GET", "/api/nope"),
    ],
)
def test_a_key_in_the_query_string_is_401_on_open_routes_too(client, method, path):
    key = keys.generate()
    response = client.request(
        method, f"{path}?api_key={key}", json={"email": "a@b.co", "password": PASSWORD}
    )
    assert_unauthorized(response)


def test_pdm_inside_an_opaque_value_is_not_mistaken_for_a_key(client):
    token = new_account(client)
    response = client.get("/api/account/apikeys?cursor=xpdm_abc", headers=bearer(token))
    assert response.status_code == 400  # an invalid cursor, not a leaked key


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("1234567890", "common passwords"),
        ("password12", "common passwords"),
        ("qwertyuiop", "common passwords"),
        ("my sense of humour", "email"),  # holds the email's name part, "sense"
    ],
)
def test_well_known_passwords_and_ones_built_from_the_email_are_refused(client, password, why):
    email = "sense@example.com" if why == "email" else "ada@example.com"
    response = client.post("/api/auth/signup", json={"email": email, "password": password})
    assert response.status_code == 400, response.text
    assert why in " ".join(response.json()["errors"]["password"])


def test_an_email_with_invisible_or_direction_characters_is_refused(client):
    for email in ("ad\u202ea@example.com", "ada\u200b@example.com", "ada@exa\u2066mple.com"):
        response = client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
        assert response.status_code == 400, email
        assert "email" in response.json()["errors"]
