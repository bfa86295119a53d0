"""Webhooks: endpoints per account, managed by owners and admins, URLs refused unless
they resolve to public addresses (a real DNS server, dnsmasq, for names), events queued
in the transaction of the action for the endpoints that subscribe, never carrying a
raw key; and the audit export as streamed NDJSON. On SQLite and PostgreSQL.

Sending is tested in test_webhook_delivery.py."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from paradarum.db.tables import webhook_deliveries, webhook_endpoints
from paradarum.runtime import Runtime
from paradarum_client.keyformat import PATTERN
from tests.support import active_zone, bearer, create_key, new_account, reauthenticate, run

RECEIVER = "http://127.0.0.1:9/hooks"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allowed_networks": ["127.0.0.1/32"], "notifications_enabled": False}


def add_webhook(
    client: Any, session: str, url: str = RECEIVER, events: list[str] | None = None
) -> Any:
    body = {"url": url, "events": events or ["api_key.revoked"]}
    response = client.post("/api/account/webhooks", json=body, headers=bearer(session))
    assert response.status_code == 201, response.text
    return response.json()["data"]


def deliveries(runtime: Runtime) -> list[Any]:
    with runtime.db.reading() as conn:
        return list(
            conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)).all()
        )


def payloads(runtime: Runtime) -> list[dict[str, Any]]:
    return [json.loads(row.payload) for row in deliveries(runtime)]


# -- events -------------------------------------------------------------------------------


def test_revoking_a_key_queues_one_api_key_revoked_per_subscribed_endpoint(client, runtime):
    session = new_account(client)
    revoked = add_webhook(client, session, RECEIVER, ["api_key.revoked"])
    assert revoked["secret"].startswith("whsec_")
    created = add_webhook(client, session, RECEIVER + "?created", ["api_key.created"])
    paused = add_webhook(client, session, RECEIVER + "?paused", ["api_key.revoked"])
    client.patch(
        f"/api/account/webhooks/{paused['id']}", json={"enabled": False}, headers=bearer(session)
    )
    add_webhook(client, new_account(client), RECEIVER + "?other", ["api_key.revoked"])
    key = create_key(client, session, "deploy")
    assert (
        client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(session)).status_code
        == 200
    )

    rows = deliveries(runtime)
    assert sorted((row.endpoint_id, row.event) for row in rows) == sorted(
        [(revoked["id"], "api_key.revoked"), (created["id"], "api_key.created")]
    )
    (message,) = [json.loads(row.payload) for row in rows if row.event == "api_key.revoked"]
    assert set(message) == {"type", "timestamp", "data"}
    assert message["data"]["id"] == key["id"]
    assert message["data"]["keyPrefix"] == key["keyPrefix"]
    assert message["data"]["reason"] == "user"
    assert all(row.message_id.startswith("msg_") and row.status == "queued" for row in rows)

    log = client.get(
        f"/api/account/webhooks/{revoked['id']}/deliveries", headers=bearer(session)
    ).json()["data"]
    assert [(entry["event"], entry["status"], entry["attempts"]) for entry in log] == [
        ("api_key.revoked", "queued", 0)
    ]
    assert log[0]["payload"] == message


def test_no_queued_event_carries_a_raw_key(client, runtime):
    every = ["api_key.created", "api_key.revoked", "api_key.leaked", "api_key.rolled"]
    session = new_account(client)
    add_webhook(client, session, RECEIVER, every)
    raw: list[str] = []
    first = create_key(client, session, "first")
    raw.append(first["key"])
    rolled = client.post(
        f"/api/account/apikeys/{first['id']}/roll",
        json={"gracePeriodMinutes": 0},
        headers=bearer(reauthenticate(client, session)),
    )
    assert rolled.status_code == 201, rolled.text
    raw.append(rolled.json()["data"]["key"])
    child = client.post(
        "/api/account/apikeys", json={"name": "made by a key"}, headers=bearer(raw[1])
    )
    assert child.status_code == 201, child.text
    raw.append(child.json()["data"]["key"])
    # A key's name that holds a key is cut to its prefix too.
    named = create_key(client, session, f"copy of {raw[2]}")
    raw.append(named["key"])
    assert client.post("/api/credentials/revoke", json={"credentials": [raw[1]]}).status_code == 202

    stored = [row.payload for row in deliveries(runtime)]
    assert {json.loads(text)["type"] for text in stored} == set(every)
    for text in stored:
        assert not PATTERN.search(text), text
        assert not any(key in text for key in raw)
    events = payloads(runtime)
    leaked = next(e for e in events if e["type"] == "api_key.leaked")
    assert leaked["data"]["keyPrefix"] == raw[1][:8]
    assert [k["keyPrefix"] for k in leaked["data"]["alsoRevoked"]] == [raw[2][:8]]
    cascade = next(e for e in events if e["type"] == "api_key.revoked")
    assert cascade["data"]["keyPrefix"] == raw[2][:8] and cascade["data"]["reason"] == "leaked"
    rolled_event = next(e for e in events if e["type"] == "api_key.rolled")
    assert rolled_event["data"]["replacedBy"]["keyPrefix"] == raw[1][:8]


def test_zone_verified_and_member_events_are_queued(client, runtime):
    from tests.web.test_teams import join

    session = new_account(client)
    add_webhook(client, session, RECEIVER, ["zone.verified", "member.joined", "member.removed"])
    active_zone(client, runtime, session, "www.example.com")
    joined = join(client, runtime, session, "viewer")
    removed = client.request(
        "DELETE",
        f"/api/account/members/{joined['member_id']}",
        json={"keys": "revoke"},
        headers=bearer(reauthenticate(client, session)),
    )
    assert removed.status_code == 200, removed.text
    events = {event["type"]: event["data"] for event in payloads(runtime)}
    assert events["zone.verified"]["hostname"] == "www.example.com"
    assert events["member.joined"]["email"] == joined["email"]
    assert events["member.joined"]["role"] == "viewer"
    assert events["member.removed"]["memberId"] == joined["member_id"]
    assert events["member.removed"]["keys"] == "revoke"


def test_keys_about_to_expire_and_expired_are_announced_once_each(
    frozen_client, frozen_runtime, clock
):
    session = new_account(frozen_client)
    add_webhook(frozen_client, session, RECEIVER, ["api_key.expiring", "api_key.expired"])
    expires = clock() + timedelta(days=10)
    response = frozen_client.post(
        "/api/account/apikeys",
        json={"name": "short", "expiresAt": expires.isoformat()},
        headers=bearer(session),
    )
    assert response.status_code == 201, response.text
    sweep = frozen_runtime.webhooks.announce_key_times
    assert run(sweep()) == 0
    clock.advance(4 * 86400)
    assert run(sweep()) == 1
    assert run(sweep()) == 0
    clock.advance(7 * 86400)
    assert run(sweep()) == 1
    assert run(sweep()) == 0
    assert [(e["type"], e["data"]["keyPrefix"]) for e in payloads(frozen_runtime)] == [
        ("api_key.expiring", response.json()["data"]["keyPrefix"]),
        ("api_key.expired", response.json()["data"]["keyPrefix"]),
    ]


# -- where events may go --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.2/hooks",
        "http://[::1]/hooks",
        "http://[::ffff:10.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
        "http://100.64.0.1/hooks",
        "ftp://example.com/hooks",
        "http://user:secret@example.com/hooks",
        "https://example.com/hooks#part",
        "http://localhost/hooks",
        "http://2130706433/hooks",
        "https://" + "a" * 2000 + ".example.com/",
    ],
)
def test_a_url_that_is_not_public_http_is_refused_at_creation(client, url):
    session = new_account(client)
    response = client.post(
        "/api/account/webhooks",
        json={"url": url, "events": ["api_key.revoked"]},
        headers=bearer(session),
    )
    assert response.status_code == 400, response.text
    assert "url" in response.json()["errors"]


def test_a_name_is_refused_when_dns_gives_it_a_private_address(tmp_path, database_url):
    from starlette.testclient import TestClient

    from paradarum.db.migrate import upgrade
    from paradarum.passwords import Passwords
    from paradarum.runtime import build_runtime
    from paradarum.web.app import create_app
    from tests.conftest import make_settings
    from tests.dns import running_dns

    name = "hooks.paradarum.test"
    with running_dns(tmp_path / "dns", hosts=[(name, "127.0.0.2")]) as dns:
        settings = make_settings(
            tmp_path / "data",
            database_url,
            dns_resolver=dns.setting,
            webhook_allowed_networks=["127.0.0.1/32"],
            notifications_enabled=False,
        )
        runtime = build_runtime(settings, passwords=Passwords(concurrency=2, memory_kib=1024))
        upgrade(runtime.db)
        try:
            with TestClient(create_app(runtime=runtime)) as client:
                session = new_account(client)
                url = f"http://{name}:8080/hooks"
                refused = client.post(
                    "/api/account/webhooks",
                    json={"url": url, "events": ["api_key.revoked"]},
                    headers=bearer(session),
                )
                assert refused.status_code == 400, refused.text
                (problem,) = refused.json()["errors"]["url"]
                assert "resolves to 127.0.0.2, a loopback address" in problem
                unknown = client.post(
                    "/api/account/webhooks",
                    json={"url": "http://nowhere.paradarum.test/", "events": ["zone.verified"]},
                    headers=bearer(session),
                )
                assert unknown.status_code == 400
                assert "no address" in unknown.json()["errors"]["url"][0]
                dns.set_hosts([(name, "127.0.0.1")])
                endpoint = add_webhook(client, session, url)
                assert endpoint["url"] == url
                # A change of URL is checked the same way.
                dns.set_hosts([(name, "127.0.0.2"), ("other.paradarum.test", "10.1.2.3")])
                moved = client.patch(
                    f"/api/account/webhooks/{endpoint['id']}",
                    json={"url": "https://other.paradarum.test/in"},
                    headers=bearer(session),
                )
                assert moved.status_code == 400
                assert "10.1.2.3, a private address" in moved.json()["errors"]["url"][0]
        finally:
            runtime.close()


# -- managing endpoints -------------------------------------------------------------------


def test_an_endpoint_is_listed_read_changed_and_deleted_without_its_secret(client, runtime):
    session = new_account(client)
    created = add_webhook(client, session, RECEIVER, ["api_key.revoked", "api_key.created"])
    assert created["events"] == ["api_key.created", "api_key.revoked"]
    assert created["enabled"] and created["disabledAt"] is None
    listed = client.get("/api/account/webhooks", headers=bearer(session)).json()["data"]
    assert [entry["id"] for entry in listed] == [created["id"]]
    assert "secret" not in listed[0]
    path = f"/api/account/webhooks/{created['id']}"
    changed = client.patch(path, json={"events": ["zone.verified"]}, headers=bearer(session))
    assert changed.status_code == 200 and changed.json()["data"]["events"] == ["zone.verified"]
    assert client.patch(path, json={}, headers=bearer(session)).status_code == 400
    assert client.get(path, headers=bearer(new_account(client))).status_code == 404
    key = create_key(client, session)
    client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(session))
    assert client.delete(path, headers=bearer(session)).status_code == 200
    assert client.get(path, headers=bearer(session)).status_code == 404
    assert client.get("/api/account/webhooks", headers=bearer(session)).json()["data"] == []
    assert deliveries(runtime) == []
    log = client.get("/api/account/audit", headers=bearer(session)).json()["data"]
    names = {entry["event"] for entry in log}
    assert {"webhook.created", "webhook.updated", "webhook.deleted"} <= names


@pytest.mark.parametrize("events", [[], ["key.revoked"], "api_key.revoked", None])
def test_an_unknown_event_or_none_is_a_400(client, events):
    session = new_account(client)
    response = client.post(
        "/api/account/webhooks",
        json={"url": RECEIVER, "events": events},
        headers=bearer(session),
    )
    assert response.status_code == 400, response.text


def test_urls_and_secrets_are_set_with_a_session_and_keys_may_do_the_rest(client):
    session = new_account(client)
    key = create_key(client, session)["key"]
    endpoint = add_webhook(client, session)
    path = f"/api/account/webhooks/{endpoint['id']}"
    body = {"url": RECEIVER, "events": ["api_key.revoked"]}
    assert client.post("/api/account/webhooks", json=body, headers=bearer(key)).status_code == 403
    assert client.post(f"{path}/roll", json={}, headers=bearer(key)).status_code == 403
    moved = client.patch(path, json={"url": RECEIVER + "x"}, headers=bearer(key))
    assert moved.status_code == 403
    assert client.get(path, headers=bearer(key)).status_code == 200
    assert client.patch(path, json={"enabled": False}, headers=bearer(key)).status_code == 200


def test_only_owners_and_admins_manage_webhooks(client, runtime):
    from tests.web.test_teams import join

    owner = new_account(client)
    add_webhook(client, owner)
    for role in ("viewer", "developer"):
        member = join(client, runtime, owner, role)
        response = client.get("/api/account/webhooks", headers=bearer(member["session"]))
        assert response.status_code == 403
        assert "admin" in response.json()["message"]
    admin = join(client, runtime, owner, "admin")
    assert client.get("/api/account/webhooks", headers=bearer(admin["session"])).status_code == 200
    add_webhook(client, admin["session"])


def test_a_roll_gives_a_new_secret_and_keeps_the_old_one_for_the_grace_period(client):
    session = new_account(client)
    endpoint = add_webhook(client, session)
    path = f"/api/account/webhooks/{endpoint['id']}/roll"
    rolled = client.post(path, json={}, headers=bearer(session))
    assert rolled.status_code == 200, rolled.text
    new = rolled.json()["data"]
    assert new["secret"].startswith("whsec_") and new["secret"] != endpoint["secret"]
    assert new["previousSecretExpiresAt"] is not None
    at_once = client.post(path, json={"gracePeriodMinutes": 0}, headers=bearer(session))
    assert at_once.json()["data"]["previousSecretExpiresAt"] is None
    too_long = client.post(path, json={"gracePeriodMinutes": 10081}, headers=bearer(session))
    assert too_long.status_code == 400


def test_a_delivery_is_resent_as_a_new_delivery_of_the_same_message(client, runtime):
    session = new_account(client)
    endpoint = add_webhook(client, session)
    key = create_key(client, session)
    client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(session))
    path = f"/api/account/webhooks/{endpoint['id']}/deliveries"
    (first,) = client.get(path, headers=bearer(session)).json()["data"]
    again = client.post(f"{path}/{first['id']}/resend", headers=bearer(session))
    assert again.status_code == 201, again.text
    assert again.json()["data"]["messageId"] == first["messageId"]
    assert again.json()["data"]["payload"] == first["payload"]
    assert again.json()["data"]["id"] != first["id"]
    log = client.get(f"{path}?limit=1", headers=bearer(session))
    assert len(log.json()["data"]) == 1 and 'rel="next"' in log.headers["link"]
    assert client.post(f"{path}/999999/resend", headers=bearer(session)).status_code == 404
    client.patch(
        f"/api/account/webhooks/{endpoint['id']}", json={"enabled": False}, headers=bearer(session)
    )
    assert client.post(f"{path}/{first['id']}/resend", headers=bearer(session)).status_code == 400


def test_an_account_holds_at_most_ten_endpoints(client):
    session = new_account(client)
    for number in range(10):
        add_webhook(client, session, f"{RECEIVER}?n={number}")
    response = client.post(
        "/api/account/webhooks",
        json={"url": RECEIVER, "events": ["api_key.revoked"]},
        headers=bearer(session),
    )
    assert response.status_code == 400
    assert "10" in response.json()["message"]


def test_the_secret_is_sealed_at_rest(client, runtime):
    session = new_account(client)
    endpoint = add_webhook(client, session)
    with runtime.db.reading() as conn:
        sealed = conn.execute(select(webhook_endpoints.c.secret_sealed)).scalar_one()
    assert sealed.startswith("v1:")
    assert endpoint["secret"].removeprefix("whsec_") not in sealed


# -- the audit export -----------------------------------------------------------------------


def test_the_audit_export_streams_ndjson_oldest_first_from_since(client, monkeypatch):
    from paradarum.services import audit

    monkeypatch.setattr(audit, "EXPORT_PAGE", 2)  # several pages, read one after another
    session = new_account(client)
    for number in range(3):
        create_key(client, session, f"key {number}")
    response = client.get("/api/account/audit-log/export", headers=bearer(session))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    log = client.get("/api/account/audit", headers=bearer(session)).json()["data"]
    assert lines == list(reversed(log))
    assert [entry["event"] for entry in lines][-3:] == ["key.created"] * 3

    since = lines[-2]["occurredAt"]
    later = client.get(
        "/api/account/audit-log/export", params={"since": since}, headers=bearer(session)
    )
    expected = [entry for entry in lines if entry["occurredAt"] >= since]
    assert [json.loads(line) for line in later.text.splitlines()] == expected
    assert 0 < len(expected) < len(lines)

    other = client.get("/api/account/audit-log/export", headers=bearer(new_account(client)))
    assert all(json.loads(line)["event"] != "key.created" for line in other.text.splitlines())


@pytest.mark.parametrize(
    "since", ["yesterday", "2026-11-01", "2026-11-01T00:00:00", "2026-13-01T00:00:00Z", ""]
)
def test_a_bad_since_is_a_400(client, since):
    session = new_account(client)
    response = client.get(
        "/api/account/audit-log/export", params={"since": since}, headers=bearer(session)
    )
    assert response.status_code == 400
    assert "since" in response.json()["errors"]
