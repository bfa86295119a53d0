"""Leaked keys stop working by themselves: GitHub's secret scanning partner protocol
(with a real ECDSA key served the way GitHub serves it), public revocation, the
cascade to keys a leaked key created, and the owner's email through a real SMTP
server. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from paradarum import keys
from tests.github import GitHubKeys, github_keys_server
from tests.mail import SmtpServer, smtp_server
from tests.support import bearer, create_key, new_account, peer, wait_until

pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")
GITHUB = "/api/secret-scanning/github"


@pytest.fixture
def github() -> Iterator[GitHubKeys]:
    with github_keys_server() as server:
        yield server


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(directory=tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def settings_overrides(github: GitHubKeys, smtp: SmtpServer) -> dict[str, object]:
    return {
        "secret_scanning_keys_url": github.url,
        "smtp_url": smtp.url(),
        "mail_from": "Paradarum <no-reply@paradarum.test>",
        # The test creates accounts through the API and uses them at once.
        "email_verification": "off",
        "public_revocations_per_address": 3,
    }


def report(*items: dict[str, str]) -> bytes:
    return json.dumps(list(items)).encode()


def alert(token: str, url: str = "https://github.com/someone/repo/blob/main/.env") -> dict:
    return {"token": token, "type": "paradarum_api_key", "url": url, "source": "content"}


def leak_mails(smtp: SmtpServer, to: str) -> list:
    return [
        received
        for received in smtp.messages()
        if to in received.rcpt_tos and "found in public" in str(received.message["Subject"])
    ]


def email_of(client, token: str) -> str:
    return client.get("/api/account", headers=bearer(token)).json()["data"]["email"]


def test_a_signed_report_revokes_active_keys_labels_each_token_and_tells_the_owner(
    client, github, smtp
):
    token = new_account(client)
    email = email_of(client, token)
    active = create_key(client, token, "deploy script")
    revoked = create_key(client, token, "old one")
    client.delete(f"/api/account/apikeys/{revoked['id']}", headers=bearer(token))
    random_string = "not a key at all, just text"
    body = report(alert(active["key"]), alert(revoked["key"]), alert(random_string))

    response = client.post(GITHUB, content=body, headers={**github.headers(body)})
    assert response.status_code == 200, response.text
    feedback = response.json()
    assert isinstance(feedback, list)  # GitHub's format, not the envelope
    assert [entry["label"] for entry in feedback] == [
        "true_positive",
        "true_positive",
        "false_positive",
    ]
    assert feedback[0]["token_hash"] == keys.hash_key(active["key"])
    assert all(entry["token_type"] == "paradarum_api_key" for entry in feedback)
    assert active["key"] not in response.text

    # Dead on its next request.
    assert client.get("/api/account", headers=bearer(active["key"])).status_code == 401
    listed = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    leaked = next(entry for entry in listed if entry["id"] == active["id"])
    assert leaked["revokedReason"] == "leaked"
    assert "github.com/someone/repo" in leaked["revokedDetail"]
    events = client.get("/api/account/audit", headers=bearer(token)).json()["data"]
    assert any(e["event"] == "key.leaked" and e["keyId"] == active["id"] for e in events)

    # One email to the owner, saying which key, where, and what to do; no key in it.
    wait_until(lambda: len(leak_mails(smtp, email)) == 1)
    message = leak_mails(smtp, email)[0].message
    text = message.get_body(("plain",)).get_content()
    assert "deploy script" in text and active["keyPrefix"] in text
    assert "github.com/someone/repo" in text
    assert active["key"] not in message.as_string()
    assert message.get_body(("html",)) is not None


@pytest.mark.parametrize("forgery", ["bad signature", "unknown identifier", "other bytes", "none"])
def test_a_report_without_a_valid_signature_is_a_401_and_revokes_nothing(client, github, forgery):
    token = new_account(client)
    key = create_key(client, token)["key"]
    body = report(alert(key))
    headers = github.headers(body)
    if forgery == "bad signature":
        headers["Github-Public-Key-Signature"] = github.sign(b"[]")[:-8] + "AAAAAAA="
    elif forgery == "unknown identifier":
        headers["Github-Public-Key-Identifier"] = "f" * 64
    elif forgery == "other bytes":
        headers["Github-Public-Key-Signature"] = github.sign(body + b" ")
    else:
        headers = {}
    response = client.post(
        GITHUB, content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 401
    assert response.json()["succeeded"] is False
    assert client.get("/api/account", headers=bearer(key)).status_code == 200


def test_keys_created_by_a_leaked_key_are_revoked_with_it_those_from_the_panel_are_not(
    client, github, smtp
):
    token = new_account(client)
    email = email_of(client, token)
    leaked = create_key(client, token, "ci")
    made_by_leaked = create_key(client, leaked["key"], "made by the ci key")
    made_further = create_key(client, made_by_leaked["key"], "made by that one")
    from_panel = create_key(client, token, "made in the panel")
    body = report(alert(leaked["key"]))
    assert client.post(GITHUB, content=body, headers=github.headers(body)).status_code == 200

    for created in (leaked, made_by_leaked, made_further):
        assert client.get("/api/account", headers=bearer(created["key"])).status_code == 401
    assert client.get("/api/account", headers=bearer(from_panel["key"])).status_code == 200
    listed = {
        k["id"]: k for k in client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    }
    owner = listed[from_panel["id"]]["createdBy"]
    assert owner["kind"] == "member" and owner["keyPrefix"] is None
    assert listed[made_by_leaked["id"]]["createdBy"] == {
        "kind": "key",
        "keyPrefix": leaked["keyPrefix"],
        "memberId": owner["memberId"],
        "email": owner["email"],
        "policyId": None,
        "subject": None,
    }
    assert listed[made_by_leaked["id"]]["revokedReason"] == "leaked"
    # The notice lists what went with the leaked key.
    wait_until(lambda: len(leak_mails(smtp, email)) == 1)
    text = leak_mails(smtp, email)[0].message.get_body(("plain",)).get_content()
    assert made_by_leaked["keyPrefix"] in text and made_further["keyPrefix"] in text
    assert from_panel["keyPrefix"] not in text


def test_public_revocation_answers_the_same_for_a_match_and_a_miss_and_is_rate_limited(client):
    token = new_account(client)
    key = create_key(client, token)["key"]
    miss = client.post(
        "/api/credentials/revoke",
        json={"credentials": [keys.generate(), "garbage"]},
        headers=peer("198.51.100.4"),
    )
    hit = client.post(
        "/api/credentials/revoke", json={"credentials": [key]}, headers=peer("198.51.100.4")
    )
    assert miss.status_code == hit.status_code == 202
    assert miss.json() == hit.json()
    assert client.get("/api/account", headers=bearer(key)).status_code == 401
    again = client.post(
        "/api/credentials/revoke", json={"credentials": ["x"]}, headers=peer("198.51.100.4")
    )
    assert again.status_code == 202  # the third of three
    limited = client.post(
        "/api/credentials/revoke", json={"credentials": ["x"]}, headers=peer("198.51.100.4")
    )
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    elsewhere = client.post(
        "/api/credentials/revoke", json={"credentials": ["x"]}, headers=peer("198.51.100.5")
    )
    assert elsewhere.status_code == 202


def test_a_new_key_is_announced_to_the_owner_by_email(client, smtp):
    token = new_account(client)
    email = email_of(client, token)
    created = client.post(
        "/api/account/apikeys",
        json={"name": "WordPress"},
        headers={**bearer(token), "User-Agent": "curl/8.5"},
    ).json()["data"]

    def announced() -> list:
        return [
            r
            for r in smtp.messages()
            if email in r.rcpt_tos and "added" in str(r.message["Subject"])
        ]

    wait_until(lambda: len(announced()) == 1)
    text = announced()[0].message.get_body(("plain",)).get_content()
    assert "WordPress" in text and created["keyPrefix"] in text and "curl/8.5" in text
    assert created["key"] not in announced()[0].message.as_string()

    def recorded() -> bool:
        # Recorded after the relay accepted the message (its own transaction).
        events = client.get("/api/account/audit", headers=bearer(token)).json()["data"]
        return any(
            e["event"] == "notification.sent" and email in (e["detail"] or "") for e in events
        )

    wait_until(recorded)
