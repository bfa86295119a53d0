"""The security log (GET /api/account/audit): every event once, with the right
actor, newest first, and never a credential."""

from __future__ import annotations

from collections import Counter

import jwt
import pytest

from paradarum.services import audit
from tests.support import PASSWORD, bearer, create_key, login, signup

FIELDS = {
    "id",
    "event",
    "occurredAt",
    "actorType",
    "actorId",
    "keyId",
    "keyPrefix",
    "clientAddress",
    "userAgent",
    "detail",
    "actor",
}
NEW_PASSWORD = "another long password"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The account's own events: notifications (in the log too) are tested on their own.
    return {"notifications_enabled": False}


def jti(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def ua(name: str) -> dict[str, str]:
    return {"User-Agent": name}


def test_every_event_appears_once_with_its_actor_and_no_credential(client):
    signup_response = client.post(
        "/api/auth/signup",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers=ua("signup-agent"),
    )
    assert signup_response.status_code == 201
    failed = client.post(
        "/api/auth/login",
        json={"email": "ada@example.com", "password": "wrong password"},
        headers=ua("guesser"),
    )
    assert failed.status_code == 401
    first = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    ).json()["data"]["token"]
    made_by_session = create_key(client, first, "plugin")
    key = made_by_session["key"]
    for _ in range(3):  # first use, then uses that are not events
        assert client.get("/api/account", headers={"X-API-Key": key, **ua("wp")}).status_code == 200
    made_by_key = create_key(client, key, "made by a key")
    revoked = client.delete(f"/api/account/apikeys/{made_by_key['id']}", headers=bearer(key))
    assert revoked.status_code == 200
    changed = client.post(
        "/api/account/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=bearer(first),
    )
    assert changed.status_code == 200
    second = login(client, "ada@example.com", NEW_PASSWORD)
    assert client.post("/api/auth/logout", headers=bearer(second)).status_code == 200

    # Another account's events never show.
    signup(client, "other@example.com")
    login(client, "other@example.com")

    response = client.get("/api/account/audit", headers=bearer(key))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["succeeded"] is True and body["message"]
    events = body["data"]
    assert all(set(event) == FIELDS for event in events)
    assert Counter(e["event"] for e in events) == {
        audit.Event.SIGNUP: 1,
        audit.Event.LOGIN_FAILED: 1,
        audit.Event.LOGIN_SUCCEEDED: 2,
        audit.Event.KEY_CREATED: 2,
        audit.Event.KEY_FIRST_USED: 1,
        audit.Event.KEY_REVOKED: 1,
        audit.Event.PASSWORD_CHANGED: 1,
        audit.Event.LOGOUT: 1,
    }
    # Newest first: the reverse of the order things happened in.
    assert [e["event"] for e in reversed(events)] == [
        audit.Event.SIGNUP,
        audit.Event.LOGIN_FAILED,
        audit.Event.LOGIN_SUCCEEDED,
        audit.Event.KEY_CREATED,
        audit.Event.KEY_FIRST_USED,
        audit.Event.KEY_CREATED,
        audit.Event.KEY_REVOKED,
        audit.Event.PASSWORD_CHANGED,
        audit.Event.LOGIN_SUCCEEDED,
        audit.Event.LOGOUT,
    ]
    assert [e["occurredAt"] for e in events] == sorted(
        (e["occurredAt"] for e in events), reverse=True
    )
    (signed_up, failed_login, first_login, created_1, first_used, created_2, revoke, password,
     second_login, logout) = reversed(events)  # fmt: skip

    prefix = key[:8]
    assert (signed_up["actorType"], signed_up["actorId"]) == ("anonymous", None)
    assert signed_up["userAgent"] == "signup-agent"
    assert (failed_login["actorType"], failed_login["actorId"]) == ("anonymous", None)
    assert failed_login["userAgent"] == "guesser"
    assert (first_login["actorType"], first_login["actorId"]) == ("session", jti(first))
    assert (created_1["actorType"], created_1["actorId"]) == ("session", jti(first))
    assert (created_1["keyId"], created_1["keyPrefix"]) == (made_by_session["id"], prefix)
    assert (first_used["actorType"], first_used["actorId"]) == ("key", prefix)
    assert (first_used["keyId"], first_used["keyPrefix"], first_used["userAgent"]) == (
        made_by_session["id"],
        prefix,
        "wp",
    )
    assert (created_2["actorType"], created_2["actorId"]) == ("key", prefix)
    assert (created_2["keyId"], created_2["keyPrefix"]) == (
        made_by_key["id"],
        made_by_key["keyPrefix"],
    )
    assert (revoke["actorType"], revoke["actorId"], revoke["keyId"]) == (
        "key",
        prefix,
        made_by_key["id"],
    )
    assert (password["actorType"], password["actorId"]) == ("session", jti(first))
    assert (second_login["actorId"], logout["actorId"]) == (jti(second), jti(second))
    assert logout["actorType"] == "session"
    for event in events:
        assert event["clientAddress"] == "testclient"
        if event["event"] not in (
            audit.Event.KEY_CREATED,
            audit.Event.KEY_FIRST_USED,
            audit.Event.KEY_REVOKED,
        ):
            assert event["keyId"] is None and event["keyPrefix"] is None

    text = response.text
    for secret in (key, made_by_key["key"], key[8:], made_by_key["key"][8:], first, second):
        assert secret not in text
    for secret in (PASSWORD, NEW_PASSWORD, "wrong password"):
        assert secret not in text


def test_the_security_log_pages_newest_first(client):
    token = login_new(client)
    for i in range(6):
        create_key(client, token, f"k{i}")
    everything = client.get("/api/account/audit", headers=bearer(token)).json()["data"]
    assert len(everything) == 8  # sign-up, sign-in, six keys created
    seen: list[dict] = []
    url: str | None = "/api/account/audit?limit=3"
    while url:
        response = client.get(url, headers=bearer(token))
        seen.extend(response.json()["data"])
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    assert client.get("/api/account/audit?limit=0", headers=bearer(token)).status_code == 400
    assert client.get("/api/account/audit?cursor=x", headers=bearer(token)).status_code == 400
    assert client.get("/api/account/audit").status_code == 401


def login_new(client) -> str:
    signup(client, "pager@example.com")
    return login(client, "pager@example.com")
