"""``web/api/apikeys.py``: creating, listing, revoking, rolling keys and their usage."""

from __future__ import annotations

from paradarum.web.api import apikeys
from tests.support import bearer, create_key, new_account
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
    envelope,
)

ROUTES = apikeys.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
BODIES = {"create_key": {"name": "deploy"}, "roll_key": {"gracePeriodMinutes": 0}}


def test_every_route_needs_a_credential(client):
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reaches_none_of_the_key_routes(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_input_is_a_400_on_every_route(client):
    owner = Owner(client)
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, owner.key)
    check_ids_refused(client, ROUTES, owner.key)
    check_pages_refused(client, ROUTES, owner.key)


def test_an_id_of_no_key_of_this_account_is_a_404_on_every_route(client):
    owner = Owner(client)
    check_unknown_ids(client, ROUTES, owner.session, BODIES)
    # Another account's key is no different from one that does not exist.
    theirs = create_key(client, new_account(client))
    for route in ROUTES:
        if route.path_params:
            response = call(
                client,
                route,
                credential=owner.key,
                ids={"id": theirs["id"]},
                json=BODIES.get(route.handler.__name__),
            )
            assert response.status_code == 404, (route.path, response.text)


def test_each_route_answers_its_declared_shape(client):
    owner = Owner(client)
    created = call(
        client, BY_NAME["create_key"], credential=owner.session, json=BODIES["create_key"]
    )
    new = assert_answers_as_declared(BY_NAME["create_key"], created)["data"]
    assert created.status_code == 201
    # The only answers that carry a raw key are not to be stored by anything between.
    assert created.headers["cache-control"] == "no-store"
    assert new["createdBy"]["kind"] == "member" and new["createdBy"]["email"] == owner.email
    assert new["allowedCidrs"] is None and new["zoneIds"] is None and new["replaces"] is None

    listed = call(client, BY_NAME["list_keys"], credential=owner.key)
    entries = assert_answers_as_declared(BY_NAME["list_keys"], listed)["data"]
    assert [entry["name"] for entry in entries] == ["deploy", "purge", "full"]
    assert all("key" not in entry for entry in entries)

    usage = call(client, BY_NAME["key_usage"], credential=owner.key, ids={"id": new["id"]})
    assert assert_answers_as_declared(BY_NAME["key_usage"], usage)["data"]["keyId"] == new["id"]

    rolled = call(
        client,
        BY_NAME["roll_key"],
        credential=owner.session,
        ids={"id": new["id"]},
        json={"gracePeriodMinutes": 5},
    )
    replacement = assert_answers_as_declared(BY_NAME["roll_key"], rolled)["data"]
    assert rolled.status_code == 201 and rolled.headers["cache-control"] == "no-store"
    assert replacement["replaces"] == new["id"] and replacement["key"] != new["key"]

    revoked = call(
        client, BY_NAME["revoke_key"], credential=owner.key, ids={"id": replacement["id"]}
    )
    entry = assert_answers_as_declared(BY_NAME["revoke_key"], revoked)["data"]
    assert entry["isRevoked"] is True and entry["status"] == "revoked"
    assert entry["revokedReason"] == "user"
    assert "key" not in entry


def test_the_status_filter_lists_only_keys_in_that_state(client):
    owner = Owner(client)
    doomed = create_key(client, owner.session, "doomed")
    assert (
        call(
            client, BY_NAME["revoke_key"], credential=owner.key, ids={"id": doomed["id"]}
        ).status_code
        == 200
    )
    by_status = {}
    for status in ("all", "active", "revoked", "expired"):
        response = call(
            client, BY_NAME["list_keys"], credential=owner.key, query=f"status={status}"
        )
        assert response.status_code == 200, response.text
        by_status[status] = [entry["name"] for entry in response.json()["data"]]
    assert by_status == {
        "all": ["doomed", "purge", "full"],
        "active": ["purge", "full"],
        "revoked": ["doomed"],
        "expired": [],
    }
    refused = call(client, BY_NAME["list_keys"], credential=owner.key, query="status=dead")
    assert refused.status_code == 400 and "status" in envelope(refused, False)["errors"]


def test_rolling_a_revoked_key_is_a_400_and_makes_nothing(client):
    owner = Owner(client)
    key = create_key(client, owner.session, "old")
    client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(owner.session))
    rolled = call(
        client,
        BY_NAME["roll_key"],
        credential=owner.session,
        ids={"id": key["id"]},
        json={"gracePeriodMinutes": 0},
    )
    assert rolled.status_code == 400, rolled.text
    names = [
        e["name"]
        for e in client.get("/api/account/apikeys", headers=bearer(owner.key)).json()["data"]
    ]
    assert names.count("old") == 1


def test_a_grace_period_beyond_a_week_is_a_400_on_the_field(client):
    owner = Owner(client)
    key = create_key(client, owner.session, "old")
    for minutes in (-1, 7 * 24 * 60 + 1, "5"):
        rolled = call(
            client,
            BY_NAME["roll_key"],
            credential=owner.session,
            ids={"id": key["id"]},
            json={"gracePeriodMinutes": minutes},
        )
        assert rolled.status_code == 400, (minutes, rolled.text)
        assert "gracePeriodMinutes" in envelope(rolled, False)["errors"]


def test_each_route_needs_the_role_its_action_does(client, runtime):
    least = {
        "list_keys": "viewer",
        "create_key": "developer",
        "revoke_key": "developer",
        "roll_key": "developer",
        "key_usage": "viewer",
    }
    check_roles(client, runtime, ROUTES, Owner(client), least, BODIES)
