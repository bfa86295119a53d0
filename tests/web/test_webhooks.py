"""Webhooks on SQLite and PostgreSQL: endpoints, signed deliveries checked with the
Standard Webhooks reference library, retries, giving up, turning off, redirects,
hangs, where a URL may point (at creation and at send time, DNS included)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from paradarum.db.tables import jobs, webhook_endpoints
from paradarum.runtime import Runtime
from paradarum.services.queue import JobKind
from paradarum.services.webhooks import WebhookEvent, address_allowed, url_problem
from tests.dns import running_dns
from tests.support import bearer, create_key, login, new_account, run
from tests.webhooks import Receiver, webhook_receiver

KEY = re.compile(r"pdm_[A-Za-z0-9]{28}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The worker is driven by the tests (one pass at a time, a frozen clock).
    return {
        "webhook_allowed_networks": ["127.0.0.0/8"],
        "webhooks_enabled": False,
        "notifications_enabled": False,
        "email_verification": "off",
        "webhook_timeout_seconds": 1.0,
    }


def deliver(runtime: Runtime) -> int:
    return int(run(runtime.queue.workers[JobKind.WEBHOOK].drain()))


def subscribe(client, token: str, url: str, events: list[str] | None = None) -> dict:
    response = client.post(
        "/api/account/webhooks",
        json={"url": url, "events": events or ["api_key.revoked"]},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def deliveries(client, token: str, endpoint_id: int) -> list[dict]:
    response = client.get(f"/api/account/webhooks/{endpoint_id}/deliveries", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()["data"]


def revoke(client, token: str, key: dict) -> None:
    response = client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(token))
    assert response.status_code == 200, response.text


# -- rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_private_loopback_link_local_and_metadata_addresses_are_refused(address):
    assert not address_allowed(address, [])


def test_public_addresses_and_the_operators_networks_are_allowed():
    import ipaddress

    assert address_allowed("8.8.8.8", [])
    assert address_allowed("2606:4700:4700::1111", [])
    assert address_allowed("127.0.0.1", [ipaddress.ip_network("127.0.0.0/8")])
    assert not address_allowed("10.0.0.1", [ipaddress.ip_network("127.0.0.0/8")])


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/", "http"),
        ("file:///etc/passwd", "http"),
        ("https://user:pw@example.com/", "password"),
        ("https:///nohost", "host"),
        ("https://exa mple.com/", "spaces"),
    ],
)
def test_only_plain_http_and_https_urls_are_taken(url, problem):
    found = url_problem(url)
    assert found is not None and problem in found


# -- endpoints ------------------------------------------------------------------------


def test_an_endpoint_shows_its_secret_once_and_is_managed_with_a_session(frozen_client, receiver):
    token = new_account(frozen_client, "hooks@example.com")
    created = subscribe(frozen_client, token, receiver.url(), ["api_key.revoked", "zone.verified"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["api_key.revoked", "zone.verified"]
    assert created["enabled"] is True
    listed = frozen_client.get("/api/account/webhooks", headers=bearer(token)).json()["data"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "secret" not in listed[0]
    one = frozen_client.get(f"/api/account/webhooks/{created['id']}", headers=bearer(token))
    assert "secret" not in one.json()["data"]

    patched = frozen_client.patch(
        f"/api/account/webhooks/{created['id']}",
        json={"events": ["api_key.created"], "enabled": False},
        headers=bearer(token),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["events"] == ["api_key.created"]
    assert patched.json()["data"]["enabled"] is False

    rolled = frozen_client.post(
        f"/api/account/webhooks/{created['id']}/secret", headers=bearer(token)
    ).json()["data"]
    assert rolled["secret"].startswith("whsec_") and rolled["secret"] != created["secret"]

    key = create_key(frozen_client, token)
    for method, path in (
        ("GET", "/api/account/webhooks"),
        ("POST", "/api/account/webhooks"),
        ("DELETE", f"/api/account/webhooks/{created['id']}"),
    ):
        refused = frozen_client.request(
            method, path, json={"url": receiver.url(), "events": ["x"]}, headers=bearer(key["key"])
        )
        assert refused.status_code == 403, (method, path, refused.text)

    other = new_account(frozen_client, "other@example.com")
    assert (
        frozen_client.get(f"/api/account/webhooks/{created['id']}", headers=bearer(other))
    ).status_code == 404
    deleted = frozen_client.delete(f"/api/account/webhooks/{created['id']}", headers=bearer(token))
    assert deleted.status_code == 200
    assert frozen_client.get("/api/account/webhooks", headers=bearer(token)).json()["data"] == []


def test_unknown_events_and_bad_bodies_are_a_clear_400(frozen_client, receiver):
    token = new_account(frozen_client, "bad@example.com")
    for body in (
        {"url": receiver.url(), "events": ["api_key.exploded"]},
        {"url": receiver.url(), "events": []},
        {"url": receiver.url()},
        {"url": 5, "events": ["api_key.revoked"]},
        {"url": "ftp://example.com/", "events": ["api_key.revoked"]},
    ):
        refused = frozen_client.post("/api/account/webhooks", json=body, headers=bearer(token))
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["succeeded"] is False


def test_the_signing_secret_is_sealed_in_the_database(frozen_client, frozen_runtime, receiver):
    token = new_account(frozen_client, "sealed@example.com")
    created = subscribe(frozen_client, token, receiver.url())
    with frozen_runtime.db.reading() as conn:
        stored = conn.execute(select(webhook_endpoints.c.secret_sealed)).scalar_one()
    assert created["secret"] not in stored
    assert created["secret"].removeprefix("whsec_") not in stored


class TestPrivateUrls:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"webhooks_enabled": False, "email_verification": "off"}

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://10.0.0.5/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://0x7f000001/hook",
        ],
    )
    def test_a_url_to_a_private_address_is_refused_at_creation(self, frozen_client, url):
        token = new_account(frozen_client, "private@example.com")
        refused = frozen_client.post(
            "/api/account/webhooks",
            json={"url": url, "events": ["api_key.revoked"]},
            headers=bearer(token),
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"]["url"]


class TestDnsRebinding:
    """A name that resolved to a public address at creation and to a private one at
    send time is not sent to: the check runs again after DNS, at every attempt."""

    @pytest.fixture
    def dns(self, tmp_path: Path):
        with running_dns(tmp_path / "dns", hosts=[("hooks.rebind.test", "8.8.8.8")]) as server:
            yield server

    @pytest.fixture
    def settings_overrides(self, dns) -> dict[str, object]:
        return {
            "webhooks_enabled": False,
            "email_verification": "off",
            "dns_resolver": dns.setting,
            "webhook_timeout_seconds": 1.0,
        }

    def test_an_answer_that_changes_to_a_private_address_is_refused_at_send_time(
        self, frozen_client, frozen_runtime, dns, receiver
    ):
        token = new_account(frozen_client, "rebind@example.com")
        refused = frozen_client.post(
            "/api/account/webhooks",
            json={"url": "http://nothing.rebind.test/", "events": ["api_key.revoked"]},
            headers=bearer(token),
        )
        assert refused.status_code == 400 and "does not resolve" in refused.text
        url = f"http://hooks.rebind.test:{receiver.port}/hook"
        endpoint = subscribe(frozen_client, token, url)  # 8.8.8.8: public
        dns.set_hosts([("hooks.rebind.test", "127.0.0.1")])  # and now the receiver's
        revoke(frozen_client, token, create_key(frozen_client, token))
        assert deliver(frozen_runtime) == 1
        (log,) = deliveries(frozen_client, token, endpoint["id"])
        assert log["status"] == "queued" and "127.0.0.1" in log["error"]
        assert receiver.received() == []
        # At creation too, once the name points there.
        again = frozen_client.post(
            "/api/account/webhooks",
            json={"url": url, "events": ["api_key.revoked"]},
            headers=bearer(token),
        )
        assert again.status_code == 400 and "127.0.0.1" in again.text


class TestAllowedByName:
    @pytest.fixture
    def dns(self, tmp_path: Path):
        with running_dns(tmp_path / "dns", hosts=[("hooks.allowed.test", "127.0.0.1")]) as s:
            yield s

    @pytest.fixture
    def settings_overrides(self, dns) -> dict[str, object]:
        return {
            "webhooks_enabled": False,
            "email_verification": "off",
            "dns_resolver": dns.setting,
            "webhook_allowed_networks": ["127.0.0.1/32"],
        }

    def test_the_request_goes_to_the_checked_address_with_the_urls_host(
        self, frozen_client, frozen_runtime, receiver
    ):
        """The system resolver does not know the name: the request reached the receiver
        because it was sent to the address the check resolved, with the name as Host."""
        token = new_account(frozen_client, "byname@example.com")
        created = subscribe(frozen_client, token, f"http://hooks.allowed.test:{receiver.port}/hook")
        receiver.set(secret=created["secret"])
        revoke(frozen_client, token, create_key(frozen_client, token))
        assert deliver(frozen_runtime) == 1
        (got,) = receiver.received()
        assert got.headers["host"] == f"hooks.allowed.test:{receiver.port}"
        assert got.verified


# -- deliveries -----------------------------------------------------------------------


def test_a_revoked_key_sends_one_signed_event_without_the_key(
    frozen_client, frozen_runtime, receiver
):
    token = new_account(frozen_client, "signed@example.com")
    endpoint = subscribe(
        frozen_client,
        token,
        receiver.url(),
        ["api_key.created", "api_key.revoked", "api_key.rolled"],
    )
    receiver.set(secret=endpoint["secret"])
    key = create_key(frozen_client, token, "deploy")
    revoke(frozen_client, token, key)
    other = create_key(frozen_client, token, "rolled")
    rolled = frozen_client.post(
        f"/api/account/apikeys/{other['id']}/roll",
        json={"gracePeriodMinutes": 0},
        headers=bearer(token),
    )
    assert rolled.status_code == 201
    assert deliver(frozen_runtime) == 4
    got = receiver.received()
    assert all(delivery.verified for delivery in got)
    types = sorted(delivery.event["type"] for delivery in got)
    assert types == ["api_key.created", "api_key.created", "api_key.revoked", "api_key.rolled"]
    (revoked,) = [d for d in got if d.event["type"] == "api_key.revoked"]
    assert revoked.event["data"]["key"] == {
        "id": key["id"],
        "name": "deploy",
        "keyPrefix": key["keyPrefix"],
    }
    assert revoked.webhook_id.startswith("msg_")
    assert revoked.headers["content-type"] == "application/json"
    raw_keys = {key["key"], other["key"], rolled.json()["data"]["key"]}
    for delivery in got:
        assert not KEY.search(delivery.body.decode())
        assert not any(raw in delivery.body.decode() for raw in raw_keys)
    log = deliveries(frozen_client, token, endpoint["id"])
    assert {(item["status"], item["result"]) for item in log} == {("done", "HTTP 200")}
    assert deliver(frozen_runtime) == 0  # each once


def test_a_leaked_key_and_a_verified_zone_are_events_too(frozen_client, frozen_runtime, receiver):
    token = new_account(frozen_client, "leaky@example.com")
    endpoint = subscribe(frozen_client, token, receiver.url(), ["api_key.leaked"])
    receiver.set(secret=endpoint["secret"])
    key = create_key(frozen_client, token)
    reported = frozen_client.post("/api/credentials/revoke", json={"credentials": [key["key"]]})
    assert reported.status_code == 202
    assert deliver(frozen_runtime) == 1
    (leaked,) = receiver.received()
    assert leaked.verified and leaked.event["type"] == "api_key.leaked"
    assert leaked.event["data"]["key"]["keyPrefix"] == key["keyPrefix"]
    assert key["key"] not in leaked.body.decode()


def test_expiring_and_expired_keys_are_announced_once_each(
    frozen_client, frozen_runtime, receiver, clock
):
    from datetime import timedelta

    from paradarum_client.models import rfc3339

    token = new_account(frozen_client, "expiry@example.com")
    endpoint = subscribe(
        frozen_client, token, receiver.url(), ["api_key.expiring", "api_key.expired"]
    )
    receiver.set(secret=endpoint["secret"])
    expires = clock.now.replace(microsecond=0) + timedelta(days=8)
    created = frozen_client.post(
        "/api/account/apikeys",
        json={"name": "short-lived", "expiresAt": rfc3339(expires)},
        headers=bearer(token),
    )
    assert created.status_code == 201
    webhooks = frozen_runtime.webhooks
    assert run(webhooks.announce_expiries()) == 0  # 8 days left
    clock.advance(1.5 * 86400)
    assert run(webhooks.announce_expiries()) == 1
    assert run(webhooks.announce_expiries()) == 0
    clock.advance(7 * 86400)
    assert run(webhooks.announce_expiries()) == 1
    assert run(webhooks.announce_expiries()) == 0
    assert deliver(frozen_runtime) == 2
    assert sorted(d.event["type"] for d in receiver.received()) == [
        "api_key.expired",
        "api_key.expiring",
    ]
    assert all(d.signed for d in receiver.received())


def test_a_failing_receiver_is_retried_with_backoff_for_a_day_then_turned_off_and_the_owner_told(
    frozen_client, frozen_runtime, receiver, clock
):
    token = new_account(frozen_client, "failing@example.com")
    endpoint = subscribe(frozen_client, token, receiver.url())
    receiver.set(secret=endpoint["secret"], mode="fail")
    revoke(frozen_client, token, create_key(frozen_client, token))
    assert deliver(frozen_runtime) == 1
    (log,) = deliveries(frozen_client, token, endpoint["id"])
    assert (log["status"], log["attempts"], log["result"]) == ("queued", 1, "HTTP 500")
    waits = []
    while log["status"] == "queued":
        wait = (_time(log["nextAttemptAt"]) - clock.now).total_seconds()
        waits.append(wait)
        clock.advance(wait + 0.001)  # the answer's times are to the millisecond
        assert deliver(frozen_runtime) == 1
        token = login(frozen_client, "failing@example.com")  # sessions last an hour
        (log,) = deliveries(frozen_client, token, endpoint["id"])
    assert log["status"] == "failed"
    assert waits[0] < waits[1] < waits[2] < waits[3]  # exponential
    assert max(waits) <= 3600 * 1.25
    assert 20 * 3600 <= sum(waits) <= 24 * 3600  # a day of retries
    attempts = len(receiver.received())
    assert attempts == log["attempts"] == len(waits) + 1
    assert all(d.signed for d in receiver.received())
    assert len({d.webhook_id for d in receiver.received()}) == 1  # the same message

    # Still on: not a whole day since the first failure. The next failure after that
    # turns it off.
    token = login(frozen_client, "failing@example.com")
    assert frozen_client.get(
        f"/api/account/webhooks/{endpoint['id']}", headers=bearer(token)
    ).json()["data"]["enabled"]
    clock.advance(24 * 3600 - sum(waits))
    token = login(frozen_client, "failing@example.com")
    revoke(frozen_client, token, create_key(frozen_client, token))
    assert deliver(frozen_runtime) == 1
    attempts += 1
    turned_off = frozen_client.get(
        f"/api/account/webhooks/{endpoint['id']}", headers=bearer(token)
    ).json()["data"]
    assert turned_off["enabled"] is False and "24 hours" in turned_off["disabledReason"]
    assert turned_off["failingSince"] is not None
    with frozen_runtime.db.reading() as conn:
        emails = conn.execute(select(jobs.c.payload).where(jobs.c.kind == "email")).scalars()
        assert any("webhook_disabled" in payload for payload in emails)

    # Nothing more is sent; once it works again, a person turns it on and resends.
    revoke(frozen_client, token, create_key(frozen_client, token))
    assert deliver(frozen_runtime) == 0
    receiver.set(mode="ok")
    on = frozen_client.patch(
        f"/api/account/webhooks/{endpoint['id']}", json={"enabled": True}, headers=bearer(token)
    )
    assert on.json()["data"]["enabled"] is True and on.json()["data"]["disabledReason"] is None
    resent = frozen_client.post(
        f"/api/account/webhooks/{endpoint['id']}/deliveries/{log['id']}/resend",
        headers=bearer(token),
    )
    assert resent.status_code == 202, resent.text
    assert resent.json()["data"]["status"] == "queued"
    assert deliver(frozen_runtime) == 1
    assert len(receiver.received()) == attempts + 1
    assert [item["status"] for item in deliveries(frozen_client, token, endpoint["id"])] == [
        "queued",  # the one that turned it off: retried, now that it is on again
        "done",  # resent
    ]
    missing = frozen_client.post(
        f"/api/account/webhooks/{endpoint['id']}/deliveries/999999/resend",
        headers=bearer(token),
    )
    assert missing.status_code == 404


def test_a_redirect_is_never_followed(frozen_client, frozen_runtime, receiver):
    token = new_account(frozen_client, "redirect@example.com")
    endpoint = subscribe(frozen_client, token, receiver.url())
    receiver.set(secret=endpoint["secret"], mode="redirect")
    revoke(frozen_client, token, create_key(frozen_client, token))
    assert deliver(frozen_runtime) == 1
    (log,) = deliveries(frozen_client, token, endpoint["id"])
    assert log["status"] == "queued" and "redirects are not followed" in log["error"]
    assert log["result"] == "HTTP 302"
    assert receiver.received("/followed") == []


def test_a_receiver_that_hangs_times_out_and_is_retried(frozen_client, frozen_runtime, receiver):
    token = new_account(frozen_client, "hang@example.com")
    endpoint = subscribe(frozen_client, token, receiver.url())
    receiver.set(secret=endpoint["secret"], mode="hang")
    revoke(frozen_client, token, create_key(frozen_client, token))
    assert deliver(frozen_runtime) == 1
    (log,) = deliveries(frozen_client, token, endpoint["id"])
    assert log["status"] == "queued" and "no answer within 1 s" in log["error"]


def test_a_huge_answer_is_not_read_whole(frozen_client, frozen_runtime, receiver):
    token = new_account(frozen_client, "huge@example.com")
    endpoint = subscribe(frozen_client, token, receiver.url())
    receiver.set(secret=endpoint["secret"], mode="huge")
    revoke(frozen_client, token, create_key(frozen_client, token))
    assert deliver(frozen_runtime) == 1
    (log,) = deliveries(frozen_client, token, endpoint["id"])
    assert log["status"] == "done"


def test_member_events_can_be_emitted_by_name(frozen_runtime, frozen_client, receiver):
    """The events other parts of Paradarum raise go through one function."""
    from paradarum.services.webhooks import emit

    token = new_account(frozen_client, "members@example.com")
    endpoint = subscribe(frozen_client, token, receiver.url(), ["member.joined"])
    receiver.set(secret=endpoint["secret"])
    account_id = frozen_client.get("/api/account", headers=bearer(token)).json()["data"]["id"]
    with frozen_runtime.db.writing() as conn:
        for event in (WebhookEvent.MEMBER_JOINED, WebhookEvent.MEMBER_REMOVED):
            emit(
                conn,
                frozen_runtime.db,
                account_id=account_id,
                event=event,
                data={"member": {"email": "new@example.com"}},
                now=frozen_runtime.clock(),
            )
    assert deliver(frozen_runtime) == 1  # subscribed to joined only
    assert receiver.received()[0].event["type"] == "member.joined"


def _time(value: str):
    from paradarum_client.models import parse_time

    return parse_time(value)
