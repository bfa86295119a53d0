"""``web/api/webhooks.py``: webhook endpoints, their secrets and delivery logs."""

from __future__ import annotations

import pytest

from paradarum.web.api import webhooks
from tests.support import bearer, create_key
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    call,
    check_bodies_refused,
    check_body_table,
    check_credential_required,
    check_enrolment,
    check_ids_refused,
    check_pages_refused,
    check_purge_key,
    check_roles,
    check_session_only,
    check_unknown_ids,
    envelope,
)

ROUTES = webhooks.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
RECEIVER = "http://127.0.0.1:9/hooks"
BODIES = {
    "create_webhook": {"url": RECEIVER, "events": ["api_key.revoked"]},
    # The URL: the part of a change that a key may not make.
    "update_webhook": {"url": RECEIVER + "/other"},
    "roll_webhook_secret": {"gracePeriodMinutes": 0},
}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"webhook_allowed_networks": ["127.0.0.1/32"], "notifications_enabled": False}


def add(client, session: str, events: list[str] | None = None) -> dict:
    body = {**BODIES["create_webhook"], **({"events": events} if events else {})}
    response = call(client, BY_NAME["create_webhook"], credential=session, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def deliveries(client, credential: str, endpoint_id: int) -> list[dict]:
    route = BY_NAME["list_deliveries"]
    response = call(client, route, credential=credential, ids={"id": endpoint_id})
    return assert_answers_as_declared(route, response)["data"]


def test_every_route_needs_a_credential(client):
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reaches_no_webhook(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_input_is_a_400_on_every_route(client):
    owner = Owner(client)
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, owner.session)
    check_ids_refused(client, ROUTES, owner.session)
    endpoint = add(client, owner.session)
    check_pages_refused(client, ROUTES, owner.session, ids={"id": endpoint["id"]})


def test_an_id_of_no_endpoint_or_delivery_of_this_account_is_a_404(client):
    check_unknown_ids(client, ROUTES, Owner(client).session, BODIES)


def test_urls_and_secrets_are_a_session_s_and_a_key_may_pause_an_endpoint(client):
    owner = Owner(client)
    endpoint = add(client, owner.session)
    check_session_only(client, ROUTES, owner.key, BODIES, ids={"id": endpoint["id"]})
    paused = call(
        client,
        BY_NAME["update_webhook"],
        credential=owner.key,
        ids={"id": endpoint["id"]},
        json={"enabled": False},
    )
    assert assert_answers_as_declared(BY_NAME["update_webhook"], paused)["data"]["enabled"] is False


def test_a_member_who_must_enrol_manages_no_webhook(client, runtime):
    check_enrolment(client, runtime, ROUTES, Owner(client))


def test_each_route_answers_its_declared_shape(client):
    owner = Owner(client)
    session = owner.session
    created = call(
        client, BY_NAME["create_webhook"], credential=session, json=BODIES["create_webhook"]
    )
    assert created.status_code == 201
    new = assert_answers_as_declared(BY_NAME["create_webhook"], created)["data"]
    assert new["secret"].startswith("whsec_") and new["enabled"] is True
    endpoint = {field: value for field, value in new.items() if field != "secret"}

    listed = call(client, BY_NAME["list_webhooks"], credential=owner.key)
    assert assert_answers_as_declared(BY_NAME["list_webhooks"], listed)["data"] == [endpoint]
    one = call(client, BY_NAME["get_webhook"], credential=owner.key, ids={"id": new["id"]})
    assert assert_answers_as_declared(BY_NAME["get_webhook"], one)["data"] == endpoint

    # An event to deliver: a key revoked.
    doomed = create_key(client, session, "doomed")
    client.delete(f"/api/account/apikeys/{doomed['id']}", headers=bearer(session))
    [delivery] = deliveries(client, owner.key, new["id"])
    assert delivery["event"] == "api_key.revoked" and delivery["endpointId"] == new["id"]
    resent = call(
        client,
        BY_NAME["resend_delivery"],
        credential=owner.key,
        ids={"id": new["id"], "delivery_id": delivery["id"]},
    )
    assert resent.status_code == 201
    again = assert_answers_as_declared(BY_NAME["resend_delivery"], resent)["data"]
    assert again["messageId"] == delivery["messageId"] and again["id"] != delivery["id"]

    rolled = call(
        client,
        BY_NAME["roll_webhook_secret"],
        credential=session,
        ids={"id": new["id"]},
        json={"gracePeriodMinutes": 60},
    )
    secret = assert_answers_as_declared(BY_NAME["roll_webhook_secret"], rolled)["data"]
    assert secret["secret"] != new["secret"] and secret["previousSecretExpiresAt"] is not None

    deleted = call(client, BY_NAME["delete_webhook"], credential=owner.key, ids={"id": new["id"]})
    assert assert_answers_as_declared(BY_NAME["delete_webhook"], deleted)["data"]["id"] == new["id"]
    assert call(client, BY_NAME["list_webhooks"], credential=session).json()["data"] == []


def test_a_delivery_is_resent_only_under_its_own_endpoint(client):
    owner = Owner(client)
    first = add(client, owner.session)
    second = add(client, owner.session)
    doomed = create_key(client, owner.session, "doomed")
    client.delete(f"/api/account/apikeys/{doomed['id']}", headers=bearer(owner.session))
    [of_first] = deliveries(client, owner.session, first["id"])
    [of_second] = deliveries(client, owner.session, second["id"])
    assert of_first["id"] != of_second["id"]
    crossed = call(
        client,
        BY_NAME["resend_delivery"],
        credential=owner.session,
        ids={"id": second["id"], "delivery_id": of_first["id"]},
    )
    assert crossed.status_code == 404, crossed.text
    assert len(deliveries(client, owner.session, first["id"])) == 1
    assert len(deliveries(client, owner.session, second["id"])) == 1


def test_a_change_with_nothing_in_it_is_a_400_on_the_body(client):
    owner = Owner(client)
    endpoint = add(client, owner.session)
    for body in ({}, {"url": None, "events": None, "enabled": None}):
        response = call(
            client,
            BY_NAME["update_webhook"],
            credential=owner.key,
            ids={"id": endpoint["id"]},
            json=body,
        )
        assert response.status_code == 400, response.text
        assert "body" in envelope(response, False)["errors"]
    one = call(client, BY_NAME["get_webhook"], credential=owner.key, ids={"id": endpoint["id"]})
    assert one.json()["data"]["updatedAt"] == endpoint["updatedAt"]


def test_each_route_needs_the_role_its_action_does(client, runtime):
    least = {route.handler.__name__: "admin" for route in ROUTES}
    check_roles(client, runtime, ROUTES, Owner(client), least, BODIES)
