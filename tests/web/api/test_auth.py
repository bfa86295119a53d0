"""``web/api/auth.py``: signing up, in and out, email links and password resets."""

from __future__ import annotations

import secrets

import msgspec

from paradarum.services.context import Permission
from paradarum.web.api import auth
from tests.support import PASSWORD, bearer, signup
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    call,
    check_bodies_refused,
    check_body_table,
    check_credential_required,
    check_enrolment,
    check_open,
    check_purge_key,
    envelope,
    name,
)

ROUTES = auth.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
BODIES = {
    "signup": {"email": "someone@example.com", "password": PASSWORD},
    "verify_email": {"token": "not-a-token"},
    "login": {"email": "someone@example.com", "password": PASSWORD},
    "login_with_link": {"token": "not-a-token"},
    "forgot_password": {"email": "someone@example.com"},
    "reset_password": {"token": "not-a-token", "password": "a brand new passphrase"},
}
# The routes that take a token from an emailed link.
TOKEN_ROUTES = [
    route
    for route in ROUTES
    if route.body is not None
    and "token" in {field.encode_name for field in msgspec.structs.fields(route.body)}
]


def test_the_sign_in_routes_are_open_and_the_rest_need_a_credential(client):
    open_routes = {route.handler.__name__ for route in ROUTES if route.permission is None}
    assert open_routes == set(BODIES)
    check_open(client, ROUTES)
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_may_not_ask_for_links_and_cannot_sign_out(client):
    owner = Owner(client)
    check_purge_key(client, ROUTES, owner.purge_key)
    # Sign-out is declared for purge-only keys, to tell them what to do instead.
    assert BY_NAME["logout"].permission is Permission.PURGE
    response = call(client, BY_NAME["logout"], credential=owner.purge_key)
    assert response.status_code == 400
    assert "revoking" in envelope(response, False)["message"]
    assert client.get("/api/account", headers=bearer(owner.purge_key)).status_code == 200


def test_malformed_bodies_are_a_400_on_every_route(client):
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, credential=None)


def test_a_member_who_must_enrol_may_sign_out_and_nothing_else_here(client, runtime):
    check_enrolment(client, runtime, ROUTES, Owner(client))


def test_a_made_up_link_token_is_a_400_on_token_on_every_route_that_takes_one(client):
    assert {route.handler.__name__ for route in TOKEN_ROUTES} == {
        "verify_email",
        "login_with_link",
        "reset_password",
    }
    for route in TOKEN_ROUTES:
        for token in ("", "x", secrets.token_urlsafe(32), "é" * 100, "a.b.c"):
            body = {**BODIES[route.handler.__name__], "token": token}
            response = call(client, route, json=body)
            assert response.status_code == 400, (name(route), token, response.text)
            assert "token" in envelope(response, False)["errors"], (name(route), token)


def test_sign_up_and_sign_in_answer_their_declared_shapes(client):
    route = BY_NAME["signup"]
    created = call(client, route, json=BODIES["signup"])
    assert created.status_code == 201
    account = assert_answers_as_declared(route, created)["data"]
    assert account["email"] == "someone@example.com"

    route = BY_NAME["login"]
    signed_in = call(client, route, json=BODIES["login"])
    session = assert_answers_as_declared(route, signed_in)["data"]
    assert session["tokenType"] == "Bearer"
    assert signed_in.json()["message"] == "Signed in"
    assert signed_in.headers["cache-control"] == "no-store"
    me = client.get("/api/account", headers=bearer(session["token"])).json()["data"]
    assert me["id"] == account["id"]


def test_forgetting_a_password_answers_202_and_no_data_for_anyone(client):
    signup(client, "known@example.com")
    route = BY_NAME["forgot_password"]
    answers = []
    for email in ("known@example.com", "unknown@example.com"):
        response = call(client, route, json={"email": email})
        assert response.status_code == 202
        assert_answers_as_declared(route, response)
        answers.append(response.json())
    assert answers[0] == answers[1] and answers[0]["data"] is None


def test_a_server_that_does_not_verify_addresses_has_no_link_to_send_again(client):
    owner = Owner(client)
    response = call(client, BY_NAME["resend_verification"], credential=owner.session)
    assert response.status_code == 400
    assert "email" in envelope(response, False)["errors"]


def test_signing_out_answers_no_data_and_ends_only_that_session(client):
    owner = Owner(client)
    response = call(client, BY_NAME["logout"], credential=owner.session)
    assert_answers_as_declared(BY_NAME["logout"], response)
    assert response.json()["data"] is None
    again = call(client, BY_NAME["logout"], credential=owner.session)
    assert again.status_code == 401
    assert client.get("/api/account", headers=bearer(owner.key)).status_code == 200
