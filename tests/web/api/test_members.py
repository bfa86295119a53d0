"""``web/api/members.py``: a person's accounts, switching, members and invitations."""

from __future__ import annotations

from paradarum.web.api import members
from tests.support import bearer, new_account
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    call,
    check_bodies_refused,
    check_body_table,
    check_credential_required,
    check_enrolment,
    check_ids_refused,
    check_purge_key,
    check_roles,
    check_session_only,
    check_unknown_ids,
    envelope,
    name,
)
from tests.web.test_teams import invitation_token, join

ROUTES = members.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
BODIES = {
    "switch": {"accountId": 1},
    "change_role": {"role": "viewer"},
    "remove_member": {"keys": "keep"},
    "invite": {"email": "invitee@example.com", "role": "viewer"},
    "accept": {"token": "x" * 40},
}


def test_every_route_needs_a_credential(client):
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reaches_none_of_the_member_routes(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_input_is_a_400_on_every_route(client):
    owner = Owner(client)
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, owner.session)
    check_ids_refused(client, ROUTES, owner.session)


def test_an_id_of_no_member_or_invitation_of_this_account_is_a_404(client):
    check_unknown_ids(client, ROUTES, Owner(client).session, BODIES)


def test_a_key_may_list_the_members_and_nothing_else_here(client):
    owner = Owner(client)
    check_session_only(client, ROUTES, owner.key, BODIES)
    for route in ROUTES:
        response = call(
            client, route, credential=owner.key, json=BODIES.get(route.handler.__name__)
        )
        if route.handler.__name__ == "list_members":
            assert_answers_as_declared(route, response)
        else:
            assert response.status_code == 403, (name(route), response.text)
            assert "session" in envelope(response, False)["message"], name(route)


def test_a_member_who_must_enrol_may_list_and_switch_accounts_only(client, runtime):
    check_enrolment(client, runtime, ROUTES, Owner(client))


def test_each_route_answers_its_declared_shape(client, runtime):
    owner = Owner(client)
    session = owner.session

    invited = call(
        client,
        BY_NAME["invite"],
        credential=session,
        json={"email": "dev@example.com", "role": "developer"},
    )
    assert invited.status_code == 201
    invitation = assert_answers_as_declared(BY_NAME["invite"], invited)["data"]
    assert invitation["role"] == "developer" and invitation["invitedBy"] == owner.email
    pending = call(client, BY_NAME["list_invitations"], credential=session)
    assert assert_answers_as_declared(BY_NAME["list_invitations"], pending)["data"] == [invitation]

    dev = new_account(client, "dev@example.com")
    accepted = call(
        client,
        BY_NAME["accept"],
        credential=dev,
        json={"token": invitation_token(runtime, "dev@example.com")},
    )
    joined = assert_answers_as_declared(BY_NAME["accept"], accepted)["data"]
    assert joined["role"] == "developer"
    assert joined["name"] in accepted.json()["message"]

    mine = call(client, BY_NAME["list_accounts"], credential=dev)
    accounts = assert_answers_as_declared(BY_NAME["list_accounts"], mine)["data"]
    assert sorted(entry["role"] for entry in accounts) == ["developer", "owner"]

    switched = call(client, BY_NAME["switch"], credential=dev, json={"accountId": joined["id"]})
    there = assert_answers_as_declared(BY_NAME["switch"], switched)["data"]
    assert switched.headers["cache-control"] == "no-store"
    me = client.get("/api/account", headers=bearer(there["token"])).json()["data"]
    assert me["id"] == joined["id"] and me["role"] == "developer"

    listed = call(client, BY_NAME["list_members"], credential=session)
    people = assert_answers_as_declared(BY_NAME["list_members"], listed)["data"]
    assert [(p["email"], p["role"]) for p in people] == [
        (owner.email, "owner"),
        ("dev@example.com", "developer"),
    ]
    dev_id = people[1]["id"]

    changed = call(
        client,
        BY_NAME["change_role"],
        credential=session,
        ids={"id": dev_id},
        json={"role": "viewer"},
    )
    assert assert_answers_as_declared(BY_NAME["change_role"], changed)["data"]["role"] == "viewer"

    removed = call(
        client,
        BY_NAME["remove_member"],
        credential=session,
        ids={"id": dev_id},
        json={"keys": "keep"},
    )
    gone = assert_answers_as_declared(BY_NAME["remove_member"], removed)["data"]
    assert gone["id"] == dev_id and removed.json()["message"] == "Member removed"

    again = call(client, BY_NAME["invite"], credential=session, json=BODIES["invite"])
    withdrawn = call(
        client, BY_NAME["withdraw"], credential=session, ids={"id": again.json()["data"]["id"]}
    )
    assert assert_answers_as_declared(BY_NAME["withdraw"], withdrawn)["data"]["email"] == (
        "invitee@example.com"
    )
    assert call(client, BY_NAME["list_invitations"], credential=session).json()["data"] == []


def test_leaving_is_said_as_leaving_and_removing_someone_else_is_not(client, runtime):
    owner = Owner(client)
    viewer = join(client, runtime, owner.session, "viewer")
    left = call(
        client,
        BY_NAME["remove_member"],
        credential=viewer["session"],
        ids={"id": viewer["member_id"]},
        json={"keys": "keep"},
    )
    assert left.status_code == 200
    assert left.json()["message"] == "You left the account"


def test_switching_to_an_account_id_beyond_any_is_a_400_or_404_never_a_500(client):
    owner = Owner(client)
    for account_id, status in ((0, 400), (-5, 400), (2**63, 400), (2**63 - 1, 404)):
        response = call(
            client, BY_NAME["switch"], credential=owner.session, json={"accountId": account_id}
        )
        assert response.status_code == status, (account_id, response.text)


def test_each_route_needs_the_role_its_action_does(client, runtime):
    # Anyone may leave: removing a member looks the id up before the role (that
    # removing someone else needs an admin is in test_teams.py).
    anyone = ("list_accounts", "switch", "list_members", "accept", "remove_member")
    least = {route.handler.__name__: "admin" for route in ROUTES}
    least.update(dict.fromkeys(anyone, "viewer"))
    check_roles(client, runtime, ROUTES, Owner(client), least, BODIES)
