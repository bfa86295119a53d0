"""``web/api/leaks.py``: GitHub's secret scanning partner endpoint, and revocation of
keys found in public, both without a credential."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from paradarum import keys, secret_scanning
from paradarum.web.api import leaks
from paradarum.web.app import LARGER_BODIES
from tests.github import GitHubKeys, github_keys_server
from tests.support import bearer, create_key
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    call,
    check_bodies_refused,
    check_body_table,
    check_open,
    envelope,
)

pytestmark = pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")
ROUTES = leaks.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
BODIES = {"revoke_found": {"credentials": ["pdm_" + "A" * 28]}}


@pytest.fixture
def github() -> Iterator[GitHubKeys]:
    with github_keys_server() as server:
        yield server


@pytest.fixture
def settings_overrides(github: GitHubKeys) -> dict[str, object]:
    return {"secret_scanning_keys_url": github.url, "notifications_enabled": False}


def alert(token: str, **extra: str) -> dict[str, str]:
    return {"token": token, "type": "paradarum_api_key", **extra}


def post_report(client, github: GitHubKeys, body: bytes) -> Any:
    return client.post(leaks.GITHUB, content=body, headers=github.headers(body))


def assert_feedback(answer: Any) -> None:
    """The answer is what the route declares (``answer=FEEDBACK_SCHEMA``), not an envelope."""
    schema = leaks.FEEDBACK_SCHEMA
    assert isinstance(answer, list)
    item = schema["items"]
    for entry in answer:
        assert set(entry) == set(item["properties"]) == set(item["required"])
        assert re.fullmatch(item["properties"]["token_hash"]["pattern"][1:-1], entry["token_hash"])
        assert entry["label"] in item["properties"]["label"]["enum"]
        assert isinstance(entry["token_type"], str)


def test_both_routes_are_open(client):
    assert all(route.permission is None for route in ROUTES)
    check_open(client, ROUTES)


def test_malformed_bodies_of_public_revocation_are_a_400(client):
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, credential=None)
    route = BY_NAME["revoke_found"]
    for credentials in ([], ["x"] * 1001, ["x" * 1001], [5]):
        response = call(client, route, json={"credentials": credentials})
        assert response.status_code == 400, (len(credentials), response.text)
        assert envelope(response, False)["errors"]


def test_public_revocation_answers_202_and_no_data(client):
    owner = Owner(client)
    route = BY_NAME["revoke_found"]
    response = call(client, route, json={"credentials": [owner.purge_key, "not a key"]})
    assert response.status_code == 202
    body = assert_answers_as_declared(route, response)
    assert body["data"] is None and body["message"] == leaks.THANKS
    assert client.get("/api/account", headers=bearer(owner.purge_key)).status_code == 401
    assert client.get("/api/account", headers=bearer(owner.key)).status_code == 200


def test_a_signed_report_is_answered_in_the_declared_feedback_format(client, github):
    owner = Owner(client)
    body = json.dumps([alert(owner.key, url="https://example.com/x"), alert("nope")]).encode()
    response = post_report(client, github, body)
    assert response.status_code == 200, response.text
    feedback = response.json()
    assert_feedback(feedback)
    assert [entry["label"] for entry in feedback] == ["true_positive", "false_positive"]
    assert feedback[0]["token_hash"] == keys.hash_key(owner.key)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"[]",
        b"not json",
        b'[{"type": "paradarum_api_key"}]',
        b'[{"token": "", "type": "paradarum_api_key"}]',
        b'[{"token": 5, "type": "paradarum_api_key"}]',
        b"[1]",
    ],
)
def test_a_signed_report_that_is_not_a_list_of_alerts_is_a_400_and_revokes_nothing(
    client, github, body
):
    owner = Owner(client)
    response = post_report(client, github, body)
    assert response.status_code == 400, response.text
    assert envelope(response, False)["errors"]
    assert client.get("/api/account", headers=bearer(owner.key)).status_code == 200


def test_the_report_may_hold_the_declared_most_alerts_and_not_one_more(client, github):
    owner = Owner(client)
    doomed = create_key(client, owner.session, "doomed")["key"]
    assert leaks.ALERTS_SCHEMA["maxItems"] == secret_scanning.MAX_ALERTS
    url = "https://github.com/someone/repo/blob/main/" + "d" * 150
    most = [alert(doomed, url=url)] + [
        alert(f"filler-{n}", url=url) for n in range(secret_scanning.MAX_ALERTS - 1)
    ]
    body = json.dumps(most).encode()
    # Larger than every other route accepts, within what this one is given.
    assert 64 * 1024 < len(body) <= LARGER_BODIES[leaks.GITHUB]
    response = post_report(client, github, body)
    assert response.status_code == 200, response.text
    assert len(response.json()) == secret_scanning.MAX_ALERTS
    assert client.get("/api/account", headers=bearer(doomed)).status_code == 401

    over = json.dumps([*most, alert(owner.key)]).encode()
    refused = post_report(client, github, over)
    assert refused.status_code == 400
    assert client.get("/api/account", headers=bearer(owner.key)).status_code == 200


def test_only_the_partner_route_takes_a_body_over_64_kib(client):
    big = {"credentials": ["x" * 900] * 100}  # about 90 KiB
    response = call(client, BY_NAME["revoke_found"], json=big)
    assert response.status_code == 413
    envelope(response, False)


def test_a_signed_report_nested_deeper_than_the_decoder_goes_is_a_400(client, github):
    owner = Owner(client)
    nested = "[" * 20_000 + "]" * 20_000
    body = json.dumps([alert(owner.key, source="X")]).replace('"X"', nested).encode()
    response = post_report(client, github, body)
    assert response.status_code == 400, response.text
    assert "body" in envelope(response, False)["errors"]
    assert client.get("/api/account", headers=bearer(owner.key)).status_code == 200
