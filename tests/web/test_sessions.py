"""Sessions that end: sign-out, password change and a deleted account all turn the
JWT into a 401, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import jwt
import pytest
from sqlalchemy import func, select

from paradarum.db.tables import audit_events, revoked_sessions
from paradarum.services.context import ClientInfo, CredentialKind, Principal
from tests.support import PASSWORD, bearer, create_key, login, new_account, run, signup

NEW_PASSWORD = "an entirely new password"


def account_ok(client, credential: str) -> bool:
    response = client.get("/api/account", headers=bearer(credential))
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def test_sign_out_ends_that_token_only(client):
    signup(client, "ada@example.com")
    first, second = login(client, "ada@example.com"), login(client, "ada@example.com")
    response = client.post("/api/auth/logout", headers=bearer(first))
    assert response.status_code == 200 and response.json()["succeeded"] is True
    assert not account_ok(client, first)
    assert client.get("/api/account/apikeys", headers=bearer(first)).status_code == 401
    assert client.post("/api/auth/logout", headers=bearer(first)).status_code == 401
    assert account_ok(client, second)


def test_an_api_key_cannot_sign_out_and_keeps_working(client):
    token = new_account(client)
    key = create_key(client, token)["key"]
    response = client.post("/api/auth/logout", headers=bearer(key))
    assert response.status_code == 400
    assert "revok" in response.json()["message"]
    assert account_ok(client, key)


def test_password_change_ends_every_session_and_the_new_password_works(client):
    signup(client, "ada@example.com")
    sessions = [login(client, "ada@example.com") for _ in range(3)]
    key = create_key(client, sessions[0])["key"]
    response = client.post(
        "/api/account/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=bearer(sessions[1]),
    )
    assert response.status_code == 200, response.text
    for token in sessions:
        assert not account_ok(client, token)
    assert account_ok(client, key)  # keys are not sessions: revoke them to end them
    assert (
        client.post(
            "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
        ).status_code
        == 401
    )
    fresh = login(client, "ada@example.com", NEW_PASSWORD)
    assert account_ok(client, fresh)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currentPassword": "wrong password", "newPassword": NEW_PASSWORD}, "currentPassword"),
        ({"currentPassword": PASSWORD, "newPassword": "short"}, "newPassword"),
        ({"currentPassword": PASSWORD}, "newPassword"),
        ({"currentPassword": PASSWORD, "newPassword": 12345678901}, "newPassword"),
    ],
)
def test_a_refused_password_change_ends_nothing(client, body, field):
    token = new_account(client)
    response = client.post("/api/account/password", json=body, headers=bearer(token))
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert account_ok(client, token)


def test_a_deleted_account_s_token_and_keys_get_401(client, runtime):
    token = new_account(client, "gone@example.com")
    key = create_key(client, token)["key"]
    run(runtime.accounts.delete("gone@example.com"))
    for credential in (token, key):
        assert not account_ok(client, credential)
        assert client.get("/api/account/apikeys", headers=bearer(credential)).status_code == 401
        assert client.post("/api/auth/logout", headers=bearer(credential)).status_code == 401


def test_the_newest_account_deleted_then_a_new_sign_up_does_not_inherit_its_sessions(
    client, runtime
):
    """An id that comes back (SQLite reuses the highest rowid without AUTOINCREMENT)
    must not revive a deleted account's session for whoever signs up next: ids are
    never reused, and a session is bound to a random value of its account."""
    old = new_account(client, "first@example.com")
    old_id = client.get("/api/account", headers=bearer(old)).json()["data"]["id"]
    run(runtime.accounts.delete("first@example.com"))
    fresh = new_account(client, "second@example.com")
    fresh_id = client.get("/api/account", headers=bearer(fresh)).json()["data"]["id"]
    assert fresh_id != old_id
    assert not account_ok(client, old)
    refused = client.post("/api/account/apikeys", json={"name": "x"}, headers=bearer(old))
    assert refused.status_code == 401


def test_a_token_is_refused_when_its_account_s_session_key_differs(client, runtime):
    """Even with the same account id, a token carries the account's session key,
    and a different key (another account, a changed password) is a 401."""
    token = new_account(client, "bound@example.com")
    payload = jwt.decode(token, options={"verify_signature": False})
    forged, _ = runtime.tokens.issue(
        account_id=int(payload["sub"]), session_key="0" * 32, now=runtime.clock()
    )
    assert account_ok(client, token)
    assert not account_ok(client, forged)


def test_an_expired_token_gets_401(frozen_client, clock, frozen_runtime):
    token = new_account(frozen_client)
    clock.advance(frozen_runtime.settings.jwt_lifetime_seconds - 1)
    assert account_ok(frozen_client, token)
    clock.advance(1)
    assert not account_ok(frozen_client, token)


def test_simultaneous_sign_outs_of_one_token_record_one_event(client, runtime):
    token = new_account(client)
    claims = jwt.decode(token, options={"verify_signature": False})
    principal = Principal(
        account_id=int(claims["sub"]),
        kind=CredentialKind.SESSION,
        token_id=claims["jti"],
        token_expires_at_epoch=claims["exp"],
    )

    async def sign_out_together() -> list[object]:
        # Each sign-out's transaction runs on its own database thread, at once.
        return await asyncio.gather(
            *(
                runtime.accounts.logout(principal=principal, client=ClientInfo("192.0.2.1"))
                for _ in range(8)
            ),
            return_exceptions=True,
        )

    assert run(sign_out_together()) == [None] * 8
    with runtime.db.reading() as conn:
        assert conn.execute(select(func.count()).select_from(revoked_sessions)).scalar() == 1
        logouts = conn.execute(
            select(func.count())
            .select_from(audit_events)
            .where(audit_events.c.event == "session.logout")
        ).scalar()
    assert logouts == 1
    assert not account_ok(client, token)


def test_signed_out_tokens_are_forgotten_once_they_have_expired(
    frozen_client, frozen_runtime, clock
):
    token = new_account(frozen_client)
    assert frozen_client.post("/api/auth/logout", headers=bearer(token)).status_code == 200

    def remembered() -> int:
        with frozen_runtime.db.reading() as conn:
            return conn.execute(select(func.count()).select_from(revoked_sessions)).scalar()

    assert remembered() == 1
    assert run(frozen_runtime.accounts.clean_up_sessions()) == 0  # not expired yet
    assert not account_ok(frozen_client, token)
    clock.advance(frozen_runtime.settings.jwt_lifetime_seconds + 1)
    other = new_account(frozen_client)
    assert frozen_client.post("/api/auth/logout", headers=bearer(other)).status_code == 200
    # The periodic clean-up forgets what has expired, and only that.
    assert run(frozen_runtime.accounts.clean_up_sessions()) == 1
    assert remembered() == 1  # only the new one is left
    assert not account_ok(frozen_client, token)  # refused by its expiry now
