"""The webhook service (services/webhooks.py) called directly on a real runtime,
SQLite and PostgreSQL: who an event is queued for, the grace period of a rolled secret
at its bounds, changes and resends refused, and keys' expiry announced once, at the
exact moments the rules name."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from paradarum.db.tables import webhook_deliveries, webhook_endpoints
from paradarum.errors import Forbidden, ValidationFailed
from paradarum.runtime import Runtime
from paradarum.services import webhooks
from paradarum.services.apikeys import KeySettings
from paradarum.services.context import Principal
from paradarum.services.webhooks import (
    EXPIRED_LOOKBACK,
    EXPIRING_WITHIN,
    MAX_SECRET_GRACE,
    DeliveryNotFound,
    DeliveryStatus,
    Event,
    WebhookNotFound,
)
from tests.services.principals import (
    CLIENT,
    RECEIVER,
    WEBHOOK_SETTINGS,
    audit,
    events,
    key_principal,
    owner,
    subscribe,
)
from tests.support import run

HOUR = timedelta(hours=1)


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {**WEBHOOK_SETTINGS, "notifications_enabled": False}


def endpoint_row(runtime: Runtime, endpoint_id: int) -> Any:
    with runtime.db.reading() as conn:
        return conn.execute(
            select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
        ).first()


def deliveries(runtime: Runtime, endpoint_id: int) -> list[Any]:
    with runtime.db.reading() as conn:
        return list(
            conn.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.endpoint_id == endpoint_id)
                .order_by(webhook_deliveries.c.id)
            ).all()
        )


def emit(runtime: Runtime, account_id: int, event: Event, data: dict[str, Any]) -> int:
    return int(
        run(
            runtime.db.write(
                lambda conn: webhooks.emit(
                    conn, account_id=account_id, event=event, data=data, now=runtime.clock()
                )
            )
        )
    )


def test_an_event_is_queued_once_for_each_enabled_endpoint_that_subscribes(runtime):
    principal = owner(runtime)
    both = subscribe(runtime, principal, "zone.verified", "api_key.created")
    other_event = subscribe(runtime, principal, "api_key.created")
    paused = subscribe(runtime, principal, "zone.verified")
    run(
        runtime.webhooks.update(
            principal=principal, endpoint_id=paused, client=CLIENT, enabled=False
        )
    )
    elsewhere = subscribe(runtime, owner(runtime), "zone.verified")
    data = {"id": 7, "hostname": "queued.example.com"}
    assert emit(runtime, principal.account_id, Event.ZONE_VERIFIED, data) == 1
    assert [len(deliveries(runtime, e)) for e in (both, other_event, paused, elsewhere)] == [
        1,
        0,
        0,
        0,
    ]
    (row,) = deliveries(runtime, both)
    body = json.loads(row.payload)
    assert (body["type"], body["data"]) == ("zone.verified", data)
    assert row.message_id.startswith("msg_") and row.status == "queued" and row.attempts == 0
    # Several endpoints of one account share the message's id (the receiver's
    # idempotency key), each with a delivery of its own.
    again = subscribe(runtime, principal, "zone.verified")
    assert emit(runtime, principal.account_id, Event.ZONE_VERIFIED, data) == 2
    latest = [deliveries(runtime, both)[-1], deliveries(runtime, again)[-1]]
    assert latest[0].message_id == latest[1].message_id != row.message_id
    assert emit(runtime, principal.account_id, Event.MEMBER_JOINED, {"id": 1}) == 0


def test_the_events_subscribed_to_are_known_ones_each_once_in_a_fixed_order():
    assert webhooks.events_of(["zone.verified", "api_key.created", "zone.verified"]) == (
        "api_key.created",
        "zone.verified",
    )
    for wrong in ([], ["api_key.created", "api_key.exploded"], ["API_KEY.CREATED"]):
        with pytest.raises(ValidationFailed) as refused:
            webhooks.events_of(wrong)
        assert set(refused.value.errors) == {"events"}


@pytest.mark.parametrize(
    "grace",
    [-timedelta(seconds=1), MAX_SECRET_GRACE + timedelta(seconds=1)],
    ids=["negative", "over-seven-days"],
)
def test_a_grace_period_outside_zero_to_seven_days_is_refused(runtime, grace):
    principal = owner(runtime)
    endpoint = subscribe(runtime, principal, "api_key.created")
    sealed = endpoint_row(runtime, endpoint).secret_sealed
    with pytest.raises(ValidationFailed) as refused:
        run(
            runtime.webhooks.roll_secret(
                principal=principal, endpoint_id=endpoint, client=CLIENT, grace=grace
            )
        )
    assert set(refused.value.errors) == {"gracePeriodMinutes"}
    assert endpoint_row(runtime, endpoint).secret_sealed == sealed


def test_the_previous_secret_signs_until_the_exact_end_of_its_grace(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    endpoint = subscribe(frozen_runtime, principal, "api_key.created")
    original = endpoint_row(frozen_runtime, endpoint).secret_sealed
    rolled = run(
        frozen_runtime.webhooks.roll_secret(
            principal=principal, endpoint_id=endpoint, client=CLIENT, grace=MAX_SECRET_GRACE
        )
    )
    until = clock() + MAX_SECRET_GRACE
    assert rolled.secret.startswith("whsec_")
    assert rolled.endpoint.previous_secret_until == until
    row = endpoint_row(frozen_runtime, endpoint)
    assert row.previous_secret_sealed == original and row.secret_sealed != original

    def shown() -> Any:
        return run(
            frozen_runtime.webhooks.get(principal=principal, endpoint_id=endpoint)
        ).previous_secret_until

    clock.now = until - timedelta(milliseconds=1)
    assert shown() == until
    (listed,) = run(frozen_runtime.webhooks.list(principal=principal))
    assert listed.previous_secret_until == until
    clock.now = until
    assert shown() is None


def test_a_second_roll_ends_the_first_secret_and_no_grace_ends_the_previous_at_once(
    frozen_runtime, clock
):
    principal = owner(frozen_runtime)
    endpoint = subscribe(frozen_runtime, principal, "api_key.created")

    def roll(grace: timedelta) -> None:
        run(
            frozen_runtime.webhooks.roll_secret(
                principal=principal, endpoint_id=endpoint, client=CLIENT, grace=grace
            )
        )

    roll(HOUR)
    after_first = endpoint_row(frozen_runtime, endpoint).secret_sealed
    clock.advance(60)
    roll(HOUR)
    row = endpoint_row(frozen_runtime, endpoint)
    # Only the secret just replaced signs as well: the one before it stops now.
    assert row.previous_secret_sealed == after_first
    assert row.previous_secret_until == clock() + HOUR
    roll(timedelta(0))
    row = endpoint_row(frozen_runtime, endpoint)
    assert (row.previous_secret_sealed, row.previous_secret_until) == (None, None)
    rolls = audit(frozen_runtime, principal.account_id, "webhook.secret_rolled")
    assert len(rolls) == 3 and rolls[-1].detail.endswith("stopped at once.")


def test_a_change_needs_something_to_change_and_a_session_to_move_the_url(runtime):
    principal = owner(runtime)
    endpoint = subscribe(runtime, principal, "api_key.created")
    with pytest.raises(ValidationFailed):
        run(runtime.webhooks.update(principal=principal, endpoint_id=endpoint, client=CLIENT))
    created = run(runtime.apikeys.create(principal=principal, name="automation", client=CLIENT))
    keyed = key_principal(runtime, created.raw_key)
    with pytest.raises(Forbidden):
        run(
            runtime.webhooks.update(
                principal=keyed, endpoint_id=endpoint, client=CLIENT, url=RECEIVER + "/moved"
            )
        )
    with pytest.raises(Forbidden):
        run(runtime.webhooks.roll_secret(principal=keyed, endpoint_id=endpoint, client=CLIENT))
    changed = run(
        runtime.webhooks.update(
            principal=keyed,
            endpoint_id=endpoint,
            client=CLIENT,
            events=["zone.verified", "api_key.revoked"],
        )
    )
    assert changed.events == ("api_key.revoked", "zone.verified")
    assert changed.url == RECEIVER
    with pytest.raises(WebhookNotFound):
        run(
            runtime.webhooks.update(
                principal=owner(runtime), endpoint_id=endpoint, client=CLIENT, enabled=False
            )
        )


def test_enabling_an_endpoint_paradarum_disabled_forgets_why(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    endpoint = subscribe(frozen_runtime, principal, "api_key.created")
    failing = clock() - timedelta(days=1)
    run(
        frozen_runtime.db.write(
            lambda conn: conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint)
                .values(
                    enabled=False,
                    disabled_at=clock(),
                    disabled_reason="failing for 24 hours",
                    failing_since=failing,
                )
            )
        )
    )
    service = frozen_runtime.webhooks
    paused = run(
        service.update(principal=principal, endpoint_id=endpoint, client=CLIENT, enabled=False)
    )
    assert (paused.disabled_reason, paused.failing_since) == ("failing for 24 hours", failing)
    resumed = run(
        service.update(principal=principal, endpoint_id=endpoint, client=CLIENT, enabled=True)
    )
    assert resumed.enabled
    assert (resumed.disabled_at, resumed.disabled_reason, resumed.failing_since) == (
        None,
        None,
        None,
    )


def test_a_resend_needs_an_enabled_endpoint_and_a_delivery_of_that_endpoint(runtime):
    principal = owner(runtime)
    first = subscribe(runtime, principal, "zone.verified")
    second = subscribe(runtime, principal, "zone.verified")
    emit(runtime, principal.account_id, Event.ZONE_VERIFIED, {"id": 1, "hostname": "r.example"})
    (original,) = deliveries(runtime, first)
    (others,) = deliveries(runtime, second)
    service = runtime.webhooks
    with pytest.raises(DeliveryNotFound):
        run(
            service.resend(
                principal=principal, endpoint_id=first, delivery_id=others.id, client=CLIENT
            )
        )
    with pytest.raises(WebhookNotFound):
        run(
            service.resend(
                principal=owner(runtime),
                endpoint_id=first,
                delivery_id=original.id,
                client=CLIENT,
            )
        )
    run(
        runtime.db.write(
            lambda conn: conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == original.id)
                .values(status="failed", attempts=9, last_error="refused")
            )
        )
    )
    run(service.update(principal=principal, endpoint_id=first, client=CLIENT, enabled=False))
    with pytest.raises(ValidationFailed):
        run(
            service.resend(
                principal=principal, endpoint_id=first, delivery_id=original.id, client=CLIENT
            )
        )
    run(service.update(principal=principal, endpoint_id=first, client=CLIENT, enabled=True))
    resent = run(
        service.resend(
            principal=principal, endpoint_id=first, delivery_id=original.id, client=CLIENT
        )
    )
    assert resent.id != original.id
    assert (resent.message_id, resent.event) == (original.message_id, original.event)
    assert (resent.status, resent.attempts, resent.last_error) == (DeliveryStatus.QUEUED, 0, None)
    assert resent.payload == json.loads(original.payload)
    page = run(service.deliveries(principal=principal, endpoint_id=first))
    assert [d.id for d in page.items] == [resent.id, original.id]


def test_deleting_an_endpoint_takes_its_deliveries_and_leaves_the_others(runtime):
    principal = owner(runtime)
    gone = subscribe(runtime, principal, "zone.verified")
    kept = subscribe(runtime, principal, "zone.verified")
    emit(runtime, principal.account_id, Event.ZONE_VERIFIED, {"id": 1, "hostname": "d.example"})
    deleted = run(runtime.webhooks.delete(principal=principal, endpoint_id=gone, client=CLIENT))
    assert deleted.id == gone
    assert (endpoint_row(runtime, gone), deliveries(runtime, gone)) == (None, [])
    assert len(deliveries(runtime, kept)) == 1
    for read in (runtime.webhooks.get, runtime.webhooks.deliveries):
        with pytest.raises(WebhookNotFound):
            run(read(principal=principal, endpoint_id=gone))
    with pytest.raises(WebhookNotFound):
        run(runtime.webhooks.delete(principal=principal, endpoint_id=gone, client=CLIENT))
    assert emit(runtime, principal.account_id, Event.ZONE_VERIFIED, {"id": 2}) == 1


def key_expiring_at(runtime: Runtime, principal: Principal, name: str, at: Any) -> Any:
    return run(
        runtime.apikeys.create(
            principal=principal, name=name, client=CLIENT, settings=KeySettings(expires_at=at)
        )
    ).info


def announced(runtime: Runtime) -> list[tuple[str, str]]:
    return [
        *((Event.KEY_EXPIRING.value, e["name"]) for e in events(runtime, "api_key.expiring")),
        *((Event.KEY_EXPIRED.value, e["name"]) for e in events(runtime, "api_key.expired")),
    ]


def test_expiry_is_announced_at_the_exact_moments_and_once(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    subscribe(frozen_runtime, principal, "api_key.expiring", "api_key.expired")
    start = clock()
    sweep_at = start + HOUR
    key_expiring_at(frozen_runtime, principal, "now", sweep_at)
    key_expiring_at(frozen_runtime, principal, "in-7-days", sweep_at + EXPIRING_WITHIN)
    key_expiring_at(
        frozen_runtime, principal, "later", sweep_at + EXPIRING_WITHIN + timedelta(seconds=1)
    )
    revoked = key_expiring_at(frozen_runtime, principal, "revoked", sweep_at + HOUR)
    run(frozen_runtime.apikeys.revoke(principal=principal, key_id=revoked.id, client=CLIENT))
    clock.now = sweep_at
    sweep = frozen_runtime.webhooks.announce_key_times
    assert run(sweep()) == 2
    assert sorted(announced(frozen_runtime)) == [
        ("api_key.expired", "now"),
        ("api_key.expiring", "in-7-days"),
    ]
    assert run(sweep()) == 0
    clock.advance(1)
    assert run(sweep()) == 1
    assert ("api_key.expiring", "later") in announced(frozen_runtime)
    (expired,) = events(frozen_runtime, "api_key.expired")
    assert set(expired) == {"id", "name", "keyPrefix", "expiresAt"}


def test_keys_that_expired_over_seven_days_before_the_sweep_are_history(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    subscribe(frozen_runtime, principal, "api_key.expired")
    first = clock() + HOUR
    key_expiring_at(frozen_runtime, principal, "long-ago", first)
    key_expiring_at(frozen_runtime, principal, "within", first + timedelta(seconds=1))
    # The server was down for exactly the look-back after the first expiry.
    clock.now = first + EXPIRED_LOOKBACK
    assert run(frozen_runtime.webhooks.announce_key_times()) == 1
    assert announced(frozen_runtime) == [("api_key.expired", "within")]


def test_a_rolled_key_in_its_grace_period_is_not_announced_as_expiring(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    subscribe(frozen_runtime, principal, "api_key.expiring")
    old = key_expiring_at(frozen_runtime, principal, "rolled", clock() + timedelta(days=30))
    new = run(
        frozen_runtime.apikeys.roll(
            principal=principal, key_id=old.id, grace=timedelta(days=1), client=CLIENT
        )
    )
    # The old key now ends with its grace period, a day from now: being replaced
    # already, it is not announced as expiring.
    assert run(frozen_runtime.webhooks.announce_key_times()) == 0
    # Its replacement has the same lifetime from now: announced once it is near its end.
    expires = new.info.settings.expires_at
    assert expires == clock() + timedelta(days=30)
    clock.now = expires - EXPIRING_WITHIN
    assert run(frozen_runtime.webhooks.announce_key_times()) == 1
    assert [e["id"] for e in events(frozen_runtime, "api_key.expiring")] == [new.info.id]
