"""Abuse limits over HTTP: each is reached, answers 429 with a positive Retry-After,
and lifts by itself when its window ends (a frozen clock moves; nothing sleeps).
Sign-in limits never lock the owner out (issue: email lockout): they hold back the
address that fails, and only slow strangers when an email is under attack.

Every test runs on SQLite (per-process counts), on PostgreSQL (counts in the
database) and on SQLite with Redis (counts in Redis).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from paradarum import keys
from paradarum.ratelimit import DatabaseRateLimiter, FailureMirror, RedisRateLimiter
from paradarum.web.app import create_app
from tests.support import (
    PASSWORD,
    REDIS_URL,
    PeerFromHeader,
    bearer,
    create_key,
    new_account,
    peer,
    reauthenticate,
    signup,
)

LIMITS = {
    "login_failures_per_email_and_address": 3,
    "login_failures_per_address": 5,
    "login_failures_per_email": 4,
    "login_failure_window_seconds": 900,
    "login_throttle_seconds": 10,
    "auth_failures_per_address": 4,
    "auth_failure_window_seconds": 60,
    "key_creations_per_account": 3,
    "key_creation_window_seconds": 3600,
    "zone_additions_per_account": 3,
    "zone_additions_per_address": 5,
    "zone_addition_window_seconds": 600,
}


@pytest.fixture(params=["sqlite", "postgresql", "sqlite+redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend, tmp_path) -> Iterator[str | None]:
    if backend.startswith("sqlite"):
        yield None
        return
    from tests.conftest import _require_postgres
    from tests.support import temporary_postgres_database

    _require_postgres()
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture
def settings_overrides(backend, request) -> dict[str, object]:
    overrides: dict[str, object] = dict(LIMITS)
    if backend.endswith("redis"):
        overrides["redis_url"] = REDIS_URL
        overrides["redis_key_prefix"] = request.getfixturevalue("redis_prefix")
    return overrides


def blocked(response, *, window: int) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["succeeded"] is False and body["data"] is None and body["message"]
    retry = int(response.headers["retry-after"])
    assert 0 < retry <= window
    return retry


def settle(runtime) -> None:
    """Let failures counted on the hot path reach the shared store."""
    assert runtime.auth_failures.settled()


def test_the_backend_is_chosen_from_the_settings(frozen_runtime, backend):
    expected = {
        "sqlite": "MemoryRateLimiter",
        "postgresql": DatabaseRateLimiter.__name__,
        "sqlite+redis": RedisRateLimiter.__name__,
    }[backend]
    assert type(frozen_runtime.limiter).__name__ == expected
    assert isinstance(frozen_runtime.auth_failures, FailureMirror)
    assert frozen_runtime.auth_failures.shared is (backend != "sqlite")


def login(client, email, password, **kwargs):
    return client.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)


def test_failures_for_an_email_from_one_address_block_that_address_only_then_lift(
    frozen_client, clock
):
    guesser, owner = peer("198.51.100.1"), peer("192.0.2.9")
    signup(frozen_client, "ada@example.com")
    for _ in range(LIMITS["login_failures_per_email_and_address"]):
        assert (
            login(frozen_client, "ada@example.com", "wrong pw", headers=guesser).status_code == 401
        )
    # That address waits for that email, even with the right password...
    retry = blocked(login(frozen_client, "ada@example.com", PASSWORD, headers=guesser), window=900)
    blocked(login(frozen_client, "  ADA@example.com", PASSWORD, headers=guesser), window=900)
    # ...while the owner, elsewhere, signs in as always.
    assert login(frozen_client, "ada@example.com", PASSWORD, headers=owner).status_code == 200
    clock.advance(retry)
    assert login(frozen_client, "ada@example.com", PASSWORD, headers=guesser).status_code == 200


def test_an_address_that_keeps_failing_waits_longer_each_time(frozen_client, clock):
    guesser = peer("198.51.100.2")
    signup(frozen_client, "ada@example.com")
    per_window = LIMITS["login_failures_per_email_and_address"]
    for _ in range(per_window):
        assert (
            login(frozen_client, "ada@example.com", "wrong pw", headers=guesser).status_code == 401
        )
    first = blocked(login(frozen_client, "ada@example.com", "wrong", headers=guesser), window=900)
    clock.advance(first)
    for _ in range(per_window):  # the second allowance within four windows
        assert (
            login(frozen_client, "ada@example.com", "wrong pw", headers=guesser).status_code == 401
        )
    # Twice the failures within four windows: blocked until that longer window ends.
    second = blocked(
        login(frozen_client, "ada@example.com", PASSWORD, headers=guesser), window=3600
    )
    assert second > 900 - first


def test_failures_from_one_address_block_every_email_then_lift(frozen_client, clock):
    signup(frozen_client, "ada@example.com")
    for i in range(LIMITS["login_failures_per_address"]):
        assert login(frozen_client, f"nobody{i}@example.com", "wrong password").status_code == 401
    retry = blocked(login(frozen_client, "ada@example.com", PASSWORD), window=900)
    clock.advance(retry)
    assert login(frozen_client, "ada@example.com", PASSWORD).status_code == 200


def test_an_email_under_attack_slows_strangers_but_not_its_owner(frozen_client, clock):
    owner = peer("192.0.2.9")
    signup(frozen_client, "ada@example.com")
    # A successful sign-in makes this address a known one for the account.
    assert login(frozen_client, "ada@example.com", PASSWORD, headers=owner).status_code == 200
    # Distributed guessing: each address fails once, under every per-address limit.
    for i in range(LIMITS["login_failures_per_email"]):
        bot = peer(f"203.0.113.{i + 1}")
        assert login(frozen_client, "ada@example.com", "wrong pw", headers=bot).status_code == 401
    # Strangers now get one attempt per throttle interval between them...
    bot = peer("203.0.113.100")
    assert login(frozen_client, "ada@example.com", "wrong pw", headers=bot).status_code == 401
    retry = blocked(login(frozen_client, "ada@example.com", "again", headers=bot), window=10)
    # ...the owner from a new address waits seconds, not a lockout...
    traveller = peer("198.51.100.77")
    blocked(login(frozen_client, "ada@example.com", PASSWORD, headers=traveller), window=10)
    clock.advance(retry)
    assert login(frozen_client, "ada@example.com", PASSWORD, headers=traveller).status_code == 200
    # ...and from an address it signed in from before, not at all.
    for _ in range(3):
        assert login(frozen_client, "ada@example.com", PASSWORD, headers=owner).status_code == 200


def test_failed_authentications_per_address_block_even_a_good_key_then_lift(
    frozen_client, frozen_runtime, clock
):
    token = new_account(frozen_client)
    key = create_key(frozen_client, token)["key"]
    for _ in range(LIMITS["auth_failures_per_address"]):
        bad = frozen_client.get("/api/account", headers=bearer(keys.generate()))
        assert bad.status_code == 401
    settle(frozen_runtime)
    retry = blocked(frozen_client.get("/api/account", headers=bearer(key)), window=60)
    blocked(frozen_client.get("/api/account", headers=bearer(token)), window=60)
    clock.advance(retry)
    assert frozen_client.get("/api/account", headers=bearer(key)).status_code == 200


def test_key_creation_per_account_is_limited_then_lifts(frozen_client, clock):
    token = new_account(frozen_client)
    created = [create_key(frozen_client, token, f"k{i}") for i in range(3)]
    for entry in created:  # revoking does not give creations back
        frozen_client.delete(f"/api/account/apikeys/{entry['id']}", headers=bearer(token))
    response = frozen_client.post(
        "/api/account/apikeys", json={"name": "one too many"}, headers=bearer(token)
    )
    retry = blocked(response, window=3600)
    other = new_account(frozen_client)  # another account is not affected
    create_key(frozen_client, other)
    clock.advance(retry)
    # By then the sign-in is old: creating a key asks for the password again (step-up).
    token = reauthenticate(frozen_client, token)
    create_key(frozen_client, token, "after the window")


def test_wrong_current_passwords_count_as_failed_sign_ins(frozen_client, clock):
    token = new_account(frozen_client, "ada@example.com")
    for _ in range(LIMITS["login_failures_per_email_and_address"]):
        response = frozen_client.post(
            "/api/account/password",
            json={"currentPassword": "not the password", "newPassword": "a new password!"},
            headers=bearer(token),
        )
        assert response.status_code == 400
        assert "currentPassword" in response.json()["errors"]
    right = {"currentPassword": PASSWORD, "newPassword": "a new password!"}
    retry = blocked(
        frozen_client.post("/api/account/password", json=right, headers=bearer(token)),
        window=900,
    )
    blocked(login(frozen_client, "ada@example.com", PASSWORD), window=900)
    clock.advance(retry)
    # Past the window the sign-in is old too: the password is confirmed again first.
    token = reauthenticate(frozen_client, token)
    assert (
        frozen_client.post("/api/account/password", json=right, headers=bearer(token)).status_code
        == 200
    )


def test_a_forged_x_forwarded_for_does_not_dodge_the_limits(frozen_client, frozen_runtime):
    here = "198.51.100.7"
    token = new_account(frozen_client)
    for i in range(LIMITS["auth_failures_per_address"]):
        forged = peer(here, {"X-Forwarded-For": f"203.0.113.{i}", **bearer(keys.generate())})
        assert frozen_client.get("/api/account", headers=forged).status_code == 401
    settle(frozen_runtime)
    response = frozen_client.get(
        "/api/account", headers=peer(here, {"X-Forwarded-For": "192.0.2.200", **bearer(token)})
    )
    blocked(response, window=60)

    for i in range(LIMITS["login_failures_per_address"]):
        forged = peer(here, {"X-Forwarded-For": f"203.0.113.{i}"})
        email = f"{uuid.uuid4().hex[:8]}@example.com"  # a new email each time
        assert login(frozen_client, email, "wrong password", headers=forged).status_code == 401
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    again = login(
        frozen_client, email, "wrong password", headers=peer(here, {"X-Forwarded-For": "192.0.2.1"})
    )
    blocked(again, window=900)


class TestBehindAProxy:
    @pytest.fixture
    def settings_overrides(self, backend, request) -> dict[str, object]:
        overrides: dict[str, object] = {**LIMITS, "trusted_proxies": ["10.0.0.0/8"]}
        if backend.endswith("redis"):
            overrides["redis_url"] = REDIS_URL
            overrides["redis_key_prefix"] = request.getfixturevalue("redis_prefix")
        return overrides

    def test_the_forwarded_address_is_the_client(self, frozen_client, frozen_runtime):
        proxy = "10.1.2.3"
        token = new_account(frozen_client, headers=peer(proxy, {"X-Forwarded-For": "203.0.113.67"}))
        attacker = peer(proxy, {"X-Forwarded-For": "203.0.113.66"})
        for _ in range(LIMITS["auth_failures_per_address"]):
            bad = frozen_client.get("/api/account", headers={**attacker, **bearer(keys.generate())})
            assert bad.status_code == 401
        settle(frozen_runtime)
        blocked(frozen_client.get("/api/account", headers={**attacker, **bearer(token)}), window=60)
        # Another client behind the same proxy is not blocked...
        other = peer(proxy, {"X-Forwarded-For": "203.0.113.67"})
        assert (
            frozen_client.get("/api/account", headers={**other, **bearer(token)}).status_code == 200
        )
        # ...and a hop the client wrote itself, left of the real one, is ignored.
        spoofed = peer(proxy, {"X-Forwarded-For": "203.0.113.67, 203.0.113.66"})
        blocked(frozen_client.get("/api/account", headers={**spoofed, **bearer(token)}), window=60)
        # The security log records the client, not the proxy.
        events = frozen_client.get("/api/account/audit", headers={**other, **bearer(token)})
        data = events.json()["data"]
        assert {e["event"] for e in data} == {"account.signup", "session.login_succeeded"}
        assert {e["clientAddress"] for e in data} == {"203.0.113.67"}
        # The same header from a peer that is not a trusted proxy is ignored.
        direct = peer("192.0.2.50", {"X-Forwarded-For": "203.0.113.66"})
        assert (
            frozen_client.get("/api/account", headers={**direct, **bearer(token)}).status_code
            == 200
        )


SHARED = pytest.mark.parametrize("backend", ["postgresql", "sqlite+redis"], indirect=True)


@SHARED
def test_a_successful_request_never_asks_the_shared_store(frozen_client, frozen_runtime):
    token = new_account(frozen_client)
    key = create_key(frozen_client, token)["key"]
    store = frozen_runtime.limiter
    calls: list[str] = []
    for name in ("counts", "add", "add_below"):
        original = getattr(store, name)

        async def counted(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return await _original(*args, **kwargs)

        setattr(store, name, counted)
    for _ in range(20):
        assert frozen_client.get("/api/account", headers=bearer(key)).status_code == 200
        assert frozen_client.get("/api/account/apikeys", headers=bearer(token)).status_code == 200
    assert calls == []
    assert frozen_client.get("/api/account", headers=bearer(keys.generate())).status_code == 401
    settle(frozen_runtime)
    assert calls == ["add"]  # a failure is counted in the shared store, off the request


@SHARED
def test_instances_share_sign_in_and_authentication_failures(settings, clock, frozen_runtime):
    from paradarum.passwords import Passwords
    from paradarum.runtime import build_runtime

    other_runtime = build_runtime(
        settings, clock=clock, passwords=Passwords(concurrency=2, memory_kib=1024)
    )
    try:
        with (
            TestClient(PeerFromHeader(create_app(runtime=frozen_runtime))) as one,
            TestClient(PeerFromHeader(create_app(runtime=other_runtime))) as two,
        ):
            signup(one, "ada@example.com")
            token = login(two, "ada@example.com", PASSWORD).json()["data"]["token"]
            for _ in range(LIMITS["login_failures_per_email_and_address"]):
                assert login(one, "ada@example.com", "wrong password").status_code == 401
            # Sign-in limits are asked of the shared store: blocked everywhere at once.
            blocked(login(two, "ada@example.com", PASSWORD), window=900)

            for _ in range(LIMITS["auth_failures_per_address"]):
                assert one.get("/api/account", headers=bearer(keys.generate())).status_code == 401
            settle(frozen_runtime)
            blocked(one.get("/api/account", headers=bearer(token)), window=60)
            # The other instance still serves good credentials without asking the
            # store, and learns of the block at its first failure from the address.
            assert two.get("/api/account", headers=bearer(token)).status_code == 200
            assert two.get("/api/account", headers=bearer(keys.generate())).status_code == 401
            settle(other_runtime)
            blocked(two.get("/api/account", headers=bearer(token)), window=60)
    finally:
        other_runtime.close()


def test_sign_ups_are_limited_per_address_then_lift(frozen_runtime, clock):
    app = PeerFromHeader(create_app(runtime=frozen_runtime))
    limit = frozen_runtime.settings.signups_per_address
    with TestClient(app) as client:
        for n in range(limit):
            signup(client, f"new{n}@example.com", headers=peer("203.0.113.50"))
        refused = client.post(
            "/api/auth/signup",
            json={"email": "one.more@example.com", "password": PASSWORD},
            headers=peer("203.0.113.50"),
        )
        retry = blocked(refused, window=frozen_runtime.settings.signup_window_seconds)
        signup(client, "elsewhere@example.com", headers=peer("203.0.113.51"))
        clock.advance(retry)
        signup(client, "one.more@example.com", headers=peer("203.0.113.50"))


def add_zone(client, token: str, hostname: str, address: str):
    return client.post(
        "/api/account/zones", json={"hostname": hostname}, headers=peer(address, bearer(token))
    )


def test_zone_additions_are_limited_per_account_then_lift(frozen_client, clock):
    """Adding a zone says whether its hostname is active elsewhere (409): probing for
    hostnames costs an addition, taken or not."""
    owner = new_account(frozen_client)
    assert add_zone(frozen_client, owner, "taken.example", "203.0.113.60").status_code == 201
    prober = new_account(frozen_client)
    answers = [
        add_zone(frozen_client, prober, f"probe{n}.example", f"203.0.113.{61 + n}").status_code
        for n in range(3)
    ]
    assert answers == [201, 201, 201]
    # From a fresh address, too: the account's allowance is spent.
    retry = blocked(add_zone(frozen_client, prober, "taken.example", "203.0.113.99"), window=600)
    other = new_account(frozen_client)  # another account is not held back
    assert add_zone(frozen_client, other, "other.example", "203.0.113.98").status_code == 201
    clock.advance(retry)
    assert add_zone(frozen_client, prober, "probe9.example", "203.0.113.99").status_code == 201


def test_zone_additions_are_limited_per_address_whatever_the_account(frozen_client, clock):
    address = "198.51.100.7"
    accounts = [new_account(frozen_client) for _ in range(3)]
    answers = [
        add_zone(frozen_client, accounts[n % 3], f"many{n}.example", address).status_code
        for n in range(5)
    ]
    assert answers == [201] * 5
    # A new account from the same address gets no fresh allowance.
    newcomer = new_account(frozen_client)
    retry = blocked(add_zone(frozen_client, newcomer, "many9.example", address), window=600)
    # Nor is the refusal counted against the account elsewhere.
    assert add_zone(frozen_client, newcomer, "many9.example", "198.51.100.8").status_code == 201
    clock.advance(retry)
    assert add_zone(frozen_client, newcomer, "many10.example", address).status_code == 201
