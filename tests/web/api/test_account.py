"""``web/api/account.py``: who the credential is, the password, the account's settings."""

from __future__ import annotations

from paradarum.web.api import account
from tests.support import PASSWORD, bearer, login
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    call,
    check_bodies_refused,
    check_body_table,
    check_credential_required,
    check_enrolment,
    check_purge_key,
    check_session_only,
    envelope,
)

ROUTES = account.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
NEW_PASSWORD = "a whole new passphrase 42"
BODIES = {
    "change_password": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
    "change_settings": {"requireTwoFactor": False},
}


def test_every_route_needs_a_credential(client):
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reads_the_account_and_changes_nothing(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_bodies_are_a_400_on_every_route(client):
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, Owner(client).session)


def test_the_routes_said_to_be_session_only_refuse_a_key(client):
    owner = Owner(client)
    check_session_only(client, ROUTES, owner.key, BODIES)
    # Changing the password is a session's too, though its summary does not say so.
    refused = call(
        client, BY_NAME["change_password"], credential=owner.key, json=BODIES["change_password"]
    )
    assert refused.status_code == 403
    assert "panel session" in envelope(refused, False)["message"]
    assert login(client, owner.email)  # the password is unchanged


def test_only_the_routes_declared_for_enrolment_are_open_to_a_member_who_must_enrol(
    client, runtime
):
    check_enrolment(client, runtime, ROUTES, Owner(client))


def test_who_am_i_answers_the_same_account_for_a_session_a_key_and_a_purge_only_key(client):
    owner = Owner(client)
    route = BY_NAME["who_am_i"]
    seen = []
    for credential in (owner.session, owner.key, owner.purge_key):
        data = assert_answers_as_declared(route, call(client, route, credential=credential))["data"]
        seen.append(data)
    assert seen[0] == seen[1] == seen[2]
    mine = seen[0]
    assert mine["email"] == owner.email and mine["role"] == "owner"
    assert mine["activeKeys"] == 2 and mine["keyLimit"] == 10
    assert mine["requireTwoFactor"] is False


def test_who_am_i_counts_keys_as_they_are_revoked(client):
    owner = Owner(client)
    keys = client.get("/api/account/apikeys", headers=bearer(owner.session)).json()["data"]
    purge = next(entry for entry in keys if entry["name"] == "purge")
    client.delete(f"/api/account/apikeys/{purge['id']}", headers=bearer(owner.session))
    data = call(client, BY_NAME["who_am_i"], credential=owner.key).json()["data"]
    assert data["activeKeys"] == 1
    # The revoked purge-only key no longer reads the account.
    assert call(client, BY_NAME["who_am_i"], credential=owner.purge_key).status_code == 401


def test_settings_with_nothing_to_change_answer_the_account_and_change_nothing(client):
    owner = Owner(client)
    route = BY_NAME["change_settings"]
    # No field: nothing is set, so a key may ask too; the answer is the account.
    for credential in (owner.session, owner.key):
        response = call(client, route, credential=credential, json={})
        data = assert_answers_as_declared(route, response)["data"]
        assert data["requireTwoFactor"] is False
    refused = call(client, route, credential=owner.session, json={"requireTwoFactor": "yes"})
    assert refused.status_code == 400
    assert "requireTwoFactor" in envelope(refused, False)["errors"]


def test_requiring_two_factor_without_having_one_is_a_400_on_the_field(client):
    owner = Owner(client)
    response = call(
        client,
        BY_NAME["change_settings"],
        credential=owner.session,
        json={"requireTwoFactor": True},
    )
    assert response.status_code == 400
    assert "requireTwoFactor" in envelope(response, False)["errors"]
    data = call(client, BY_NAME["who_am_i"], credential=owner.session).json()["data"]
    assert data["requireTwoFactor"] is False


def test_a_password_change_answers_no_data_and_keys_keep_working(client):
    owner = Owner(client)
    route = BY_NAME["change_password"]
    response = call(client, route, credential=owner.session, json=BODIES["change_password"])
    assert_answers_as_declared(route, response)
    assert response.json()["data"] is None
    assert call(client, BY_NAME["who_am_i"], credential=owner.session).status_code == 401
    # Keys are not sessions: they belong to the account and keep working.
    assert call(client, BY_NAME["who_am_i"], credential=owner.key).status_code == 200
    assert login(client, owner.email, NEW_PASSWORD)
