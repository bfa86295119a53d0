"""``web/api/purges.py``: purging, the purge scope and the purge log, all open to
purge-only keys."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from paradarum.services.context import Permission
from paradarum.web.api import purges
from tests.cache import RecordingNode, recording_node
from tests.support import active_zone
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
    check_unknown_ids,
)

ROUTES = purges.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}
BODIES = {"request_purge": {"everything": True}}


@pytest.fixture
def node() -> Iterator[RecordingNode]:
    with recording_node() as recording:
        yield recording


@pytest.fixture
def settings_overrides(node: RecordingNode) -> dict[str, object]:
    return {"cache_nodes": [node.base_url]}


def test_every_route_is_declared_for_purge_only_keys_and_needs_a_credential(client):
    assert {route.permission for route in ROUTES} == {Permission.PURGE}
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reaches_every_route(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_malformed_input_is_a_400_on_every_route(client):
    owner = Owner(client)
    check_body_table(ROUTES, BODIES)
    check_bodies_refused(client, ROUTES, owner.purge_key)
    check_ids_refused(client, ROUTES, owner.purge_key)
    check_pages_refused(client, ROUTES, owner.purge_key)


def test_an_id_of_no_purge_of_this_account_is_a_404(client):
    check_unknown_ids(client, ROUTES, Owner(client).purge_key, BODIES)


def test_a_member_who_must_enrol_cannot_purge_with_a_session(client, runtime):
    check_enrolment(client, runtime, ROUTES, Owner(client))


def test_each_route_answers_its_declared_shape_with_each_node_s_result(client, runtime):
    owner = Owner(client)
    active_zone(client, runtime, owner.session, "www.example.com")
    queued = call(
        client, BY_NAME["request_purge"], credential=owner.purge_key, json=BODIES["request_purge"]
    )
    purge = assert_answers_as_declared(BY_NAME["request_purge"], queued)["data"]
    assert queued.status_code == 202 and queued.json()["message"] == "Purge queued"
    assert purge["kind"] == "everything"

    route = BY_NAME["get_purge"]
    deadline = time.monotonic() + 15
    while True:  # until the node has answered
        detail = assert_answers_as_declared(
            route, call(client, route, credential=owner.purge_key, ids={"id": purge["id"]})
        )["data"]
        if detail["completedAt"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert detail["completedAt"] is not None, detail
    [result] = detail["nodes"]
    assert result["node"] == "node-1" and result["attempts"] >= 1
    assert result["lastError"] is None

    listed = call(client, BY_NAME["list_purges"], credential=owner.session)
    assert assert_answers_as_declared(BY_NAME["list_purges"], listed)["data"] == [detail]

    scope = call(
        client, BY_NAME["purge_scope"], credential=owner.purge_key, query="hostname=WWW.example.com"
    )
    data = assert_answers_as_declared(BY_NAME["purge_scope"], scope)["data"]
    assert data["credential"] == "key" and data["permissions"] == "purge"
    assert data["zones"] == ["www.example.com"] and data["covered"] is True


def test_each_route_needs_the_role_its_action_does(client, runtime):
    least = {
        "request_purge": "purger",
        "purge_scope": "purger",
        "list_purges": "viewer",
        "get_purge": "viewer",
    }
    check_roles(client, runtime, ROUTES, Owner(client), least, BODIES)
