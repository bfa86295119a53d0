"""``web/api/twofactor.py``: second factors, the second step of a sign-in and
re-authentication, on a frozen clock (TOTP codes follow it)."""

from __future__ import annotations

import json

import msgspec

from paradarum.services.twofactor import totp_code, totp_step
from paradarum.web.api import twofactor
from tests.support import PASSWORD, bearer, login
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
    check_unknown_ids,
    envelope,
    name,
    with_credential,
)

ROUTES = twofactor.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
BODIES = {
    "login_two_factor": {"challenge": "not-a-challenge", "code": "123456"},
    "login_passkey_options": {"challenge": "not-a-challenge"},
    "reauthenticate": {"password": PASSWORD},
    "confirm_totp": {"code": "123456"},
    "disable_totp": {"code": "123456"},
    "add_passkey": {"challenge": "x", "name": "Laptop", "credential": {}},
    "rename_passkey": {"name": "Laptop"},
}


def code(secret: str, clock) -> str:
    return totp_code(secret, totp_step(clock.now))


def test_the_second_step_of_a_sign_in_is_open_and_the_rest_needs_a_credential(client):
    assert {route.handler.__name__ for route in ROUTES if route.permission is None} == {
        "login_two_factor",
        "login_passkey_options",
    }
    check_open(client, ROUTES)
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reaches_no_second_factor(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_input_is_a_400_on_every_route(client):
    owner = Owner(client)
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, owner.session)
    check_ids_refused(client, ROUTES, owner.session)


def test_an_id_of_no_passkey_of_this_person_is_a_404(client):
    check_unknown_ids(client, ROUTES, Owner(client).session, BODIES)


def test_every_route_with_a_credential_is_a_session_s_and_open_to_enrolment(client, runtime):
    owner = Owner(client)
    routes = with_credential(ROUTES)
    assert all(route.enrolment for route in routes)
    for route in routes:
        response = call(
            client, route, credential=owner.key, json=BODIES.get(route.handler.__name__)
        )
        assert response.status_code == 403, (name(route), response.text)
        assert "panel session" in envelope(response, False)["message"], name(route)
    check_enrolment(client, runtime, ROUTES, owner)


def test_made_up_challenges_are_refused_with_the_declared_401(client):
    for handler in ("login_two_factor", "login_passkey_options"):
        route = BY_NAME[handler]
        assert 401 in route.errors
        for challenge in ("", "x", "a" * 200):
            body = {**BODIES[handler], "challenge": challenge}
            response = call(client, route, json=body)
            assert response.status_code == 401, (handler, challenge, response.text)
        too_long = call(client, route, json={**BODIES[handler], "challenge": "a" * 201})
        assert too_long.status_code == 400 and "challenge" in too_long.json()["errors"]


def test_each_route_answers_its_declared_shape_from_enrolment_to_sign_in(frozen_client, clock):
    client = frozen_client
    owner = Owner(client)
    session = owner.session

    status = call(client, BY_NAME["status"], credential=session)
    before = assert_answers_as_declared(BY_NAME["status"], status)["data"]
    assert before == {"totp": False, "passkeys": [], "recoveryCodesLeft": 0, "required": False}

    started = call(client, BY_NAME["start_totp"], credential=session)
    assert started.status_code == 201
    secret = assert_answers_as_declared(BY_NAME["start_totp"], started)["data"]["secret"]
    confirmed = call(
        client, BY_NAME["confirm_totp"], credential=session, json={"code": code(secret, clock)}
    )
    codes = assert_answers_as_declared(BY_NAME["confirm_totp"], confirmed)["data"]["recoveryCodes"]
    assert len(codes) == 10

    options = call(client, BY_NAME["passkey_options"], credential=session)
    assert assert_answers_as_declared(BY_NAME["passkey_options"], options)["data"]["challenge"]

    renewed = call(client, BY_NAME["renew_recovery_codes"], credential=session)
    assert renewed.status_code == 201
    fresh = assert_answers_as_declared(BY_NAME["renew_recovery_codes"], renewed)["data"]
    assert not set(fresh["recoveryCodes"]) & set(codes)

    clock.advance(30)
    signed_in = client.post("/api/auth/login", json={"email": owner.email, "password": PASSWORD})
    challenge = signed_in.json()["data"]["challenge"]
    # An old recovery code no longer works; a new one does, once.
    old = call(
        client,
        BY_NAME["login_two_factor"],
        json={"challenge": challenge, "recoveryCode": codes[0]},
    )
    assert old.status_code == 401
    second = call(
        client,
        BY_NAME["login_two_factor"],
        json={"challenge": challenge, "recoveryCode": fresh["recoveryCodes"][0]},
    )
    new_session = assert_answers_as_declared(BY_NAME["login_two_factor"], second)["data"]
    assert new_session["tokenType"] == "Bearer"

    clock.advance(30)
    again = call(
        client,
        BY_NAME["reauthenticate"],
        credential=new_session["token"],
        json={"password": PASSWORD, "code": code(secret, clock)},
    )
    stepped_up = assert_answers_as_declared(BY_NAME["reauthenticate"], again)["data"]
    assert stepped_up["token"] != new_session["token"]

    clock.advance(30)
    off = call(
        client,
        BY_NAME["disable_totp"],
        credential=stepped_up["token"],
        json={"code": code(secret, clock)},
    )
    assert assert_answers_as_declared(BY_NAME["disable_totp"], off)["data"] is None
    after = call(client, BY_NAME["status"], credential=stepped_up["token"]).json()["data"]
    assert after["totp"] is False and after["recoveryCodesLeft"] == 0
    assert login(client, owner.email)  # the password alone again


def test_without_a_passkey_there_are_no_passkey_options_to_answer_with(frozen_client, clock):
    client = frozen_client
    owner = Owner(client)
    refused = call(client, BY_NAME["reauthenticate_passkey_options"], credential=owner.session)
    assert refused.status_code == 400
    assert "passkey" in envelope(refused, False)["errors"]
    # A sign-in's challenge of a person with a code but no passkey: no options either.
    started = client.post("/api/account/two-factor/totp", headers=bearer(owner.session))
    secret = started.json()["data"]["secret"]
    client.post(
        "/api/account/two-factor/totp/confirm",
        json={"code": code(secret, clock)},
        headers=bearer(owner.session),
    )
    signed_in = client.post("/api/auth/login", json={"email": owner.email, "password": PASSWORD})
    data = signed_in.json()["data"]
    assert "passkey" not in data["methods"]
    options = call(client, BY_NAME["login_passkey_options"], json={"challenge": data["challenge"]})
    assert options.status_code == 400, options.text
    assert "passkey" in envelope(options, False)["errors"]
    # The challenge still works for the code: asking for options did not spend it.
    clock.advance(30)
    second = call(
        client,
        BY_NAME["login_two_factor"],
        json={"challenge": data["challenge"], "code": code(secret, clock)},
    )
    assert second.status_code == 200, second.text


# The routes whose body holds a free-form JSON value (a WebAuthn credential).
FREE_FORM = [
    route
    for route in ROUTES
    if route.body is not None
    and any(
        "dict[str, Any]" in str(field.type) or "dict[str, typing.Any]" in str(field.type)
        for field in msgspec.structs.fields(route.body)
    )
]


def test_a_credential_nested_deeper_than_the_decoder_goes_is_a_400_not_a_500(client):
    assert {route.handler.__name__ for route in FREE_FORM} == {
        "login_two_factor",
        "reauthenticate",
        "add_passkey",
    }
    owner = Owner(client)
    nested = "[" * 5000 + "]" * 5000
    for route in FREE_FORM:
        field = "credential" if route.handler.__name__ == "add_passkey" else "passkey"
        body = json.dumps({**BODIES[route.handler.__name__], field: {"response": "X"}})
        deep = body.replace('"X"', nested).encode()
        assert len(deep) < 64 * 1024
        response = call(client, route, credential=owner.session, content=deep)
        assert response.status_code == 400, (name(route), response.text)
        assert "body" in envelope(response, False)["errors"], name(route)
