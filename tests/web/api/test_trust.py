"""``web/api/trust.py``: trust policies, and CI ID tokens traded for short-lived keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paradarum.web.api import trust
from tests.oidc import REPOSITORY_ID, Issuer, oidc_issuer
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    call,
    check_bodies_refused,
    check_body_table,
    check_credential_required,
    check_enrolment,
    check_ids_refused,
    check_open,
    check_purge_key,
    check_roles,
    check_session_only,
    check_unknown_ids,
)

ROUTES = trust.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
AUDIENCE = "https://cdn.example.test"
BODIES = {
    "create_policy": {
        "name": "deploy",
        "issuer": "https://token.actions.githubusercontent.com",
        "conditions": {"repository_id": REPOSITORY_ID},
    },
    "exchange_token": {"token": "not.a.token"},
}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with oidc_issuer() as server:
        yield server


@pytest.fixture
def settings_overrides(issuer: Issuer) -> dict[str, object]:
    return {
        "oidc_insecure_issuers": [issuer.url],
        "oidc_fetch_timeout_seconds": 15.0,
        "public_url": AUDIENCE,
    }


def test_the_exchange_is_open_and_the_policies_need_a_credential(client):
    assert [route.handler.__name__ for route in ROUTES if route.permission is None] == [
        "exchange_token"
    ]
    check_open(client, ROUTES)
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reaches_no_policy(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_input_is_a_400_on_every_route(client):
    owner = Owner(client)
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, owner.session)
    check_ids_refused(client, ROUTES, owner.session)


def test_policies_are_a_session_s_and_ids_of_no_policy_of_the_account_are_404(client):
    owner = Owner(client)
    check_session_only(client, ROUTES, owner.key, BODIES)
    check_unknown_ids(client, ROUTES, owner.session, BODIES)


def test_a_member_who_must_enrol_manages_no_policy(client, runtime):
    check_enrolment(client, runtime, ROUTES, Owner(client))


def test_each_route_answers_its_declared_shape(client, issuer):
    owner = Owner(client)
    body = {**BODIES["create_policy"], "issuer": issuer.url}
    created = call(client, BY_NAME["create_policy"], credential=owner.session, json=body)
    assert created.status_code == 201
    policy = assert_answers_as_declared(BY_NAME["create_policy"], created)["data"]
    assert (policy["permissions"], policy["zoneIds"], policy["activeKeys"]) == ("purge", None, 0)

    token = issuer.sign(issuer.github_claims(audience=AUDIENCE))
    exchanged = call(client, BY_NAME["exchange_token"], json={"token": token})
    assert exchanged.status_code == 201, exchanged.text
    minted = assert_answers_as_declared(BY_NAME["exchange_token"], exchanged)["data"]
    assert minted["policyId"] == policy["id"]

    listed = call(client, BY_NAME["list_policies"], credential=owner.session)
    [entry] = assert_answers_as_declared(BY_NAME["list_policies"], listed)["data"]
    assert entry == {**policy, "activeKeys": 1}

    deleted = call(
        client, BY_NAME["delete_policy"], credential=owner.session, ids={"id": policy["id"]}
    )
    assert (
        assert_answers_as_declared(BY_NAME["delete_policy"], deleted)["data"]["id"] == policy["id"]
    )
    # The key it minted went with it.
    assert client.get("/api/account", headers={"X-API-Key": minted["key"]}).status_code == 401


def test_a_token_of_any_size_or_for_any_policy_id_gets_the_one_401(client, issuer):
    """``token`` has no length limit in the shape on purpose: an oversized token is
    refused like every other bad one. A ``policyId`` of no policy is no different."""
    owner = Owner(client)
    body = {**BODIES["create_policy"], "issuer": issuer.url}
    assert (
        call(client, BY_NAME["create_policy"], credential=owner.session, json=body).status_code
        == 201
    )
    good = issuer.sign(issuer.github_claims(audience=AUDIENCE))
    answers = []
    for sent in (
        {"token": "x"},
        {"token": ""},
        {"token": "a" * 60_000},
        {"token": good, "policyId": 2**63 - 1},
    ):
        response = call(client, BY_NAME["exchange_token"], json=sent)
        assert response.status_code == 401, (len(sent["token"]), response.text)
        answers.append(response.json())
    assert all(answer == answers[0] for answer in answers)
    # The refused good token was not spent on the wrong policy id.
    assert call(client, BY_NAME["exchange_token"], json={"token": good}).status_code == 201


def test_each_route_needs_the_role_its_action_does(client, runtime):
    least = {
        "list_policies": "developer",
        "create_policy": "developer",
        "delete_policy": "developer",
    }
    check_roles(client, runtime, ROUTES, Owner(client), least, BODIES)
