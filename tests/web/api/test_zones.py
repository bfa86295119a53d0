"""``web/api/zones.py``: the hostnames an account may purge, through the app."""

from __future__ import annotations

from paradarum.web.api import zones
from tests.support import active_zone, bearer, new_account
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    call,
    check_bodies_refused,
    check_body_table,
    check_credential_required,
    check_ids_refused,
    check_pages_refused,
    check_purge_key,
    check_roles,
    check_unknown_ids,
)

ROUTES = zones.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
BODIES = {"add_zone": {"hostname": "www.example.com"}}


def test_every_route_needs_a_credential(client):
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reaches_none_of_the_zone_routes(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_input_is_a_400_on_every_route(client):
    owner = Owner(client)
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, owner.key)
    check_ids_refused(client, ROUTES, owner.key)
    check_pages_refused(client, ROUTES, owner.key)


def test_an_id_of_no_zone_of_this_account_is_a_404_on_every_route(client):
    check_unknown_ids(client, ROUTES, Owner(client).session, BODIES)


def test_each_route_answers_its_declared_shape_with_a_key_or_a_session(client):
    owner = Owner(client)
    added = call(client, BY_NAME["add_zone"], credential=owner.key, json=BODIES["add_zone"])
    zone = assert_answers_as_declared(BY_NAME["add_zone"], added)["data"]
    assert added.status_code == 201
    assert zone["status"] == "pending" and zone["verifiedAt"] is None
    # The message says what to publish: the record's name and value.
    record = zone["verification"]
    assert record["type"] == "dns-txt"
    assert record["name"] == "_paradarum-challenge.www.example.com"
    assert record["name"] in added.json()["message"] and record["value"] in added.json()["message"]

    listed = call(client, BY_NAME["list_zones"], credential=owner.session)
    assert assert_answers_as_declared(BY_NAME["list_zones"], listed)["data"] == [zone]

    deleted = call(client, BY_NAME["delete_zone"], credential=owner.session, ids={"id": zone["id"]})
    assert assert_answers_as_declared(BY_NAME["delete_zone"], deleted)["data"]["id"] == zone["id"]
    assert call(client, BY_NAME["list_zones"], credential=owner.key).json()["data"] == []
    again = call(client, BY_NAME["delete_zone"], credential=owner.key, ids={"id": zone["id"]})
    assert again.status_code == 404


def test_verifying_a_zone_that_is_active_already_needs_no_dns(client, runtime):
    owner = Owner(client)
    zone = active_zone(client, runtime, owner.session, "shop.example.org")
    response = call(client, BY_NAME["verify_zone"], credential=owner.key, ids={"id": zone["id"]})
    data = assert_answers_as_declared(BY_NAME["verify_zone"], response)["data"]
    assert data["status"] == "active" and data["verifiedAt"] is not None


def test_another_account_s_zone_is_a_404_on_every_route_with_an_id(client, runtime):
    owner = Owner(client)
    zone = active_zone(client, runtime, owner.session, "mine.example.net")
    stranger = new_account(client)
    for route in ROUTES:
        if route.path_params:
            response = call(client, route, credential=stranger, ids={"id": zone["id"]})
            assert response.status_code == 404, (route.path, response.text)
    # Still there, still active, for its own account.
    listed = client.get("/api/account/zones", headers=bearer(owner.session)).json()["data"]
    assert [z["status"] for z in listed] == ["active"]


def test_each_route_needs_the_role_its_action_does(client, runtime):
    least = {"list_zones": "viewer", "add_zone": "developer", "verify_zone": "developer"}
    least["delete_zone"] = "developer"
    check_roles(client, runtime, ROUTES, Owner(client), least, BODIES)
