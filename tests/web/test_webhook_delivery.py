"""Webhook deliveries, the ``webhook`` kind of the job queue, against a real receiver
on a loopback address (admitted by ``PARADARUM_WEBHOOK_ALLOWED_NETWORKS``): signed as
the Standard Webhooks specification says (verified with its own library), retried for
a day and given up, a receiver that hangs or redirects, a restart with deliveries
pending, DNS rebinding (the tests' own DNS server), the endpoint disabled and its owner
emailed. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.testclient import TestClient

from paradarum.db.migrate import upgrade
from paradarum.db.tables import notifications, webhook_deliveries
from paradarum.passwords import Passwords
from paradarum.runtime import Runtime, build_runtime
from paradarum.web.app import create_app
from paradarum_client.keyformat import PATTERN
from tests.conftest import make_settings
from tests.support import (
    bearer,
    create_key,
    login,
    new_account,
    random_secret,
    run,
    wait_until,
)
from tests.webhooks import Receiver, receiver


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # The queue is driven by the tests (deliver()), so that each attempt is theirs.
    return {
        "webhook_allowed_networks": ["127.0.0.1/32"],
        "webhooks_enabled": False,
        "notifications_enabled": False,
        "webhook_timeout_seconds": 2.0,
    }


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def deliver(runtime: Runtime) -> int:
    """One pass of the webhook kind: claim what is due, send it, record the outcome."""
    return int(run(runtime.webhook_delivery.run_once()))


def add_webhook(client: Any, session: str, url: str, events: list[str] | None = None) -> Any:
    body = {"url": url, "events": events or ["api_key.revoked"]}
    response = client.post("/api/account/webhooks", json=body, headers=bearer(session))
    assert response.status_code == 201, response.text
    return response.json()["data"]


def revoke_a_key(client: Any, session: str) -> dict[str, Any]:
    key = create_key(client, session)
    revoked = client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(session))
    assert revoked.status_code == 200, revoked.text
    return key


def deliveries(runtime: Runtime) -> list[Any]:
    with runtime.db.reading() as conn:
        return list(
            conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)).all()
        )


_SECRETS: dict[str, str] = {}


def own_runtime(
    tmp_path: Any, database_url: str | None, *, clock: Any = None, **overrides: Any
) -> Runtime:
    values: dict[str, Any] = {
        # Runtimes of one test share the server secret, as a restarted server does:
        # the signing secrets are sealed under it.
        "jwt_secret": _SECRETS.setdefault(str(tmp_path), random_secret()),
        "notifications_enabled": False,
        "webhooks_enabled": False,
        "webhook_allowed_networks": ["127.0.0.1/32"],
        **overrides,
    }
    settings = make_settings(tmp_path / "data", database_url, **values)
    runtime = build_runtime(
        settings,
        passwords=Passwords(concurrency=2, memory_kib=1024),
        **({"clock": clock} if clock is not None else {}),
    )
    upgrade(runtime.db)
    return runtime


# -- the done-when ----------------------------------------------------------------------


def test_revoking_a_key_sends_one_api_key_revoked_signed_as_the_specification_says(
    client, runtime, hook
):
    session = new_account(client)
    endpoint = add_webhook(client, session, hook.url)
    key = revoke_a_key(client, session)

    assert deliver(runtime) == 1
    assert deliver(runtime) == 0
    (request,) = hook.requests()
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "api_key.revoked"
    assert payload["data"]["id"] == key["id"]
    assert payload["data"]["keyPrefix"] == key["keyPrefix"]
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{hook.port}"
    assert key["key"].encode() not in request.body
    other = add_webhook(client, new_account(client), hook.url)
    with pytest.raises(WebhookVerificationError):
        Webhook(other["secret"]).verify(request.body, request.headers)
    log = client.get(
        f"/api/account/webhooks/{endpoint['id']}/deliveries", headers=bearer(session)
    ).json()["data"]
    assert [(e["status"], e["attempts"], e["responseStatus"]) for e in log] == [
        ("delivered", 1, 204)
    ]
    assert log[0]["deliveredAt"] is not None and log[0]["lastError"] is None


def test_during_a_roll_s_grace_period_both_secrets_verify(client, runtime, hook):
    session = new_account(client)
    endpoint = add_webhook(client, session, hook.url)
    path = f"/api/account/webhooks/{endpoint['id']}/roll"
    new = client.post(path, json={}, headers=bearer(session)).json()["data"]
    revoke_a_key(client, session)
    deliver(runtime)
    (request,) = hook.requests()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(endpoint["secret"]).verify(request.body, request.headers)
    Webhook(new["secret"]).verify(request.body, request.headers)

    latest = client.post(path, json={"gracePeriodMinutes": 0}, headers=bearer(session))
    revoke_a_key(client, session)
    deliver(runtime)
    last = hook.requests()[-1]
    Webhook(latest.json()["data"]["secret"]).verify(last.body, last.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new["secret"]).verify(last.body, last.headers)


def test_a_resent_delivery_carries_the_same_message(client, runtime, hook):
    session = new_account(client)
    endpoint = add_webhook(client, session, hook.url)
    revoke_a_key(client, session)
    deliver(runtime)
    path = f"/api/account/webhooks/{endpoint['id']}/deliveries"
    (first,) = client.get(path, headers=bearer(session)).json()["data"]
    assert client.post(f"{path}/{first['id']}/resend", headers=bearer(session)).status_code == 201
    assert deliver(runtime) == 1
    one, two = hook.requests()
    assert one.body == two.body
    assert one.headers["webhook-id"] == two.headers["webhook-id"] == first["messageId"]
    Webhook(endpoint["secret"]).verify(two.body, two.headers)


# -- failures ---------------------------------------------------------------------------


def test_a_failing_receiver_is_retried_for_a_day_then_the_endpoint_is_disabled(
    frozen_client, frozen_runtime, clock
):
    with receiver(mode="fail") as failing:
        email = "failing@example.com"
        session = new_account(frozen_client, email)
        endpoint = add_webhook(frozen_client, session, failing.url)
        revoke_a_key(frozen_client, session)
        start = clock()
        attempts = 0
        while True:
            assert deliver(frozen_runtime) == 1
            attempts += 1
            (row,) = deliveries(frozen_runtime)
            if row.status != "queued":
                break
            assert row.last_error == "HTTP 500" and row.response_status == 500
            assert clock() < row.next_attempt_at <= start + timedelta(hours=24)
            assert deliver(frozen_runtime) == 0  # not due yet
            clock.now = row.next_attempt_at
        assert row.status == "failed" and row.attempts == attempts > 10
        assert start + timedelta(hours=23) < clock() <= start + timedelta(hours=24)
        requests = failing.requests()
        assert len(requests) == attempts
        # Every attempt carried the same message and body.
        assert len({r.headers["webhook-id"] for r in requests}) == 1
        assert len({r.body for r in requests}) == 1

    session = login(frozen_client, email)  # a day later: the first session has expired
    path = f"/api/account/webhooks/{endpoint['id']}"
    shown = frozen_client.get(path, headers=bearer(session)).json()["data"]
    assert shown["enabled"] is False and shown["disabledAt"] is not None
    assert "failed for a day" in shown["disabledReason"] and "HTTP 500" in shown["disabledReason"]
    assert shown["failingSince"] is not None
    with frozen_runtime.db.reading() as conn:
        kinds = list(conn.execute(select(notifications.c.kind)).scalars())
    assert kinds.count("webhook_disabled") == 1
    log = frozen_client.get("/api/account/audit", headers=bearer(session)).json()["data"]
    assert [e["event"] for e in log].count("webhook.disabled") == 1

    # Nothing is queued for a disabled endpoint; enabling it clears why it was disabled.
    revoke_a_key(frozen_client, session)
    assert len(deliveries(frozen_runtime)) == 1
    again = frozen_client.patch(path, json={"enabled": True}, headers=bearer(session))
    shown = again.json()["data"]
    assert shown["enabled"] and shown["disabledAt"] is None and shown["failingSince"] is None


def test_a_success_meanwhile_keeps_the_endpoint_enabled(frozen_client, frozen_runtime, clock, hook):
    email = "meanwhile@example.com"
    session = new_account(frozen_client, email)
    endpoint = add_webhook(frozen_client, session, hook.url)
    hook.mode = "fail"
    revoke_a_key(frozen_client, session)
    deliver(frozen_runtime)
    hook.mode = "ok"
    revoke_a_key(frozen_client, session)
    clock.advance(1)
    deliver(frozen_runtime)  # the second event gets through; the first is retried
    hook.mode = "fail"
    while any(row.status == "queued" for row in deliveries(frozen_runtime)):
        clock.now = min(
            row.next_attempt_at for row in deliveries(frozen_runtime) if row.status == "queued"
        )
        deliver(frozen_runtime)
    assert [row.status for row in deliveries(frozen_runtime)] == ["failed", "delivered"]
    session = login(frozen_client, email)
    shown = frozen_client.get(
        f"/api/account/webhooks/{endpoint['id']}", headers=bearer(session)
    ).json()["data"]
    assert shown["enabled"] is True and shown["failingSince"] is not None


def test_the_owner_is_emailed_when_an_endpoint_is_disabled(tmp_path, database_url, clock):
    from paradarum.services.jobs import Claim, Outcome
    from paradarum.services.webhook_jobs import WebhookJob
    from tests.mail import smtp_server

    with smtp_server(directory=tmp_path / "smtp") as smtp:
        runtime = own_runtime(
            tmp_path, database_url, clock=clock, smtp_url=smtp.url(), email_verification="off"
        )
        try:
            with TestClient(create_app(runtime=runtime)) as client:
                email = "owner@example.com"
                session = new_account(client, email)
                endpoint = add_webhook(client, session, "http://127.0.0.1:9/hooks?token=abc")
                revoke_a_key(client, session)
            (row,) = deliveries(runtime)
            clock.advance(25 * 3600)  # a retry now would be a day after the event: given up
            claim = Claim(
                id=row.id,
                account_id=row.account_id,
                attempt=0,
                created_at=row.created_at,
                job=WebhookJob(endpoint["id"], row.message_id, row.payload),
            )
            assert run(runtime.webhook_delivery.record(claim, Outcome.retry("HTTP 503")))
            run(runtime.email_delivery.run_once())
        finally:
            runtime.close()
    (mail,) = [m for m in smtp.messages() if "webhook" in str(m.message["Subject"])]
    assert mail.rcpt_tos == [email]
    text = mail.message.get_body(("plain",)).get_content()
    assert "127.0.0.1:9/hooks" in text and "token=abc" not in text
    assert "HTTP 503" in text


def test_a_receiver_that_hangs_is_given_up_on_and_retried(client, runtime):
    with receiver(mode="hang") as hanging:
        session = new_account(client)
        add_webhook(client, session, hanging.url)
        revoke_a_key(client, session)
        assert deliver(runtime) == 1
        (row,) = deliveries(runtime)
        assert row.status == "queued" and row.attempts == 1
        assert row.last_error == "no answer within 2 s"
        assert row.next_attempt_at is not None


def test_a_redirect_is_never_followed(client, runtime):
    with receiver(mode="redirect") as redirecting:
        session = new_account(client)
        add_webhook(client, session, redirecting.url)
        revoke_a_key(client, session)
        deliver(runtime)
        assert [r.path for r in redirecting.requests()] == ["/hooks"]
        (row,) = deliveries(runtime)
        assert row.status == "queued" and row.response_status == 302
        assert row.last_error == "HTTP 302: redirects are not followed"


def test_pending_deliveries_are_sent_once_each_after_a_restart(tmp_path, database_url, hook):
    first = own_runtime(tmp_path, database_url)
    with TestClient(create_app(runtime=first)) as client:
        session = new_account(client)
        add_webhook(client, session, hook.url, ["api_key.created", "api_key.revoked"])
        for _ in range(3):
            revoke_a_key(client, session)
    first.close()
    assert hook.requests() == []

    # Two processes' worth of loops on the same database, sending on their own.
    second = own_runtime(tmp_path, database_url, webhooks_enabled=True)
    third = own_runtime(tmp_path, database_url, webhooks_enabled=True)
    try:
        with TestClient(create_app(runtime=second)), TestClient(create_app(runtime=third)):
            wait_until(
                lambda: all(row.status == "delivered" for row in deliveries(second)),
                timeout=30,
            )
        rows = deliveries(second)
    finally:
        second.close()
        third.close()
    assert len(rows) == 6 and all(row.attempts == 1 for row in rows)
    received = sorted(request.headers["webhook-id"] for request in hook.requests())
    assert received == sorted(row.message_id for row in rows)


# -- where requests may go --------------------------------------------------------------


def test_dns_that_changes_after_the_url_was_saved_reaches_nothing(tmp_path, database_url):
    """DNS rebinding: the name resolved to an allowed address when the URL was saved,
    and to another one when the event is sent (a loopback address with a receiver of
    its own). Nothing reaches it; the retry, once DNS is back, goes out."""
    from tests.dns import running_dns

    name = "hooks.paradarum.test"
    with (
        receiver("127.0.0.1") as allowed,
        receiver("127.0.0.2", port=allowed.port) as private,
        running_dns(tmp_path / "dns", hosts=[(name, "127.0.0.1")]) as dns,
    ):
        runtime = own_runtime(tmp_path, database_url, dns_resolver=dns.setting)
        try:
            with TestClient(create_app(runtime=runtime)) as client:
                session = new_account(client)
                endpoint = add_webhook(client, session, f"http://{name}:{allowed.port}/hooks")
                dns.set_hosts([(name, "127.0.0.2")])
                revoke_a_key(client, session)
                assert deliver(runtime) == 1
                (row,) = deliveries(runtime)
                assert row.status == "queued"
                assert row.last_error == (
                    f"not sent: {name} resolves to 127.0.0.2, a loopback address; "
                    "webhooks are sent to public addresses only"
                )
                assert private.requests() == [] and allowed.requests() == []

                dns.set_hosts([(name, "127.0.0.1")])
                with runtime.db.writing() as conn:
                    conn.execute(update(webhook_deliveries).values(next_attempt_at=runtime.clock()))
                assert deliver(runtime) == 1
        finally:
            runtime.close()
        assert private.requests() == []
        (request,) = allowed.requests()
        assert request.headers["host"] == f"{name}:{allowed.port}"
        Webhook(endpoint["secret"]).verify(request.body, request.headers)


def test_an_address_no_longer_admitted_at_send_time_is_not_sent_to(tmp_path, database_url, hook):
    first = own_runtime(tmp_path, database_url)
    with TestClient(create_app(runtime=first)) as client:
        session = new_account(client)
        add_webhook(client, session, hook.url)
        revoke_a_key(client, session)
    first.close()
    # The operator narrowed the allowed networks since (a restart with new settings).
    narrowed = own_runtime(tmp_path, database_url, webhook_allowed_networks=[])
    try:
        assert deliver(narrowed) == 1
        (row,) = deliveries(narrowed)
    finally:
        narrowed.close()
    assert hook.requests() == []
    assert row.status == "queued" and "127.0.0.1 is a loopback address" in row.last_error


def test_no_delivered_body_carries_a_raw_key(client, runtime, hook):
    session = new_account(client)
    add_webhook(client, session, hook.url, ["api_key.created", "api_key.revoked"])
    key = revoke_a_key(client, session)
    while deliver(runtime):
        pass
    bodies = [request.body.decode() for request in hook.requests()]
    assert {json.loads(body)["type"] for body in bodies} == {"api_key.created", "api_key.revoked"}
    for body in bodies:
        assert key["key"] not in body and not PATTERN.search(body)
