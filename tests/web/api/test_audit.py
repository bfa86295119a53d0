"""``web/api/audit.py``: the security log, as pages and as an NDJSON export."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from paradarum.web.api import audit
from paradarum_client.models import AuditEvent
from tests.support import create_key
from tests.web.api import (
    Owner,
    assert_answers_as_declared,
    assert_shape,
    call,
    check_credential_required,
    check_enrolment,
    check_pages_refused,
    check_purge_key,
    check_roles,
    envelope,
)

ROUTES = audit.routes.routes
BY_NAME = {route.handler.__name__: route for route in ROUTES}


def export(client, credential: str, **params: str):
    route = BY_NAME["export_events"]
    return client.get(route.path, params=params, headers={"Authorization": f"Bearer {credential}"})


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_every_route_needs_a_credential(client):
    check_credential_required(client, ROUTES)


def test_a_purge_only_key_reads_no_security_log(client):
    check_purge_key(client, ROUTES, Owner(client).purge_key)


def test_bad_page_queries_are_a_400(client):
    check_pages_refused(client, ROUTES, Owner(client).key)


def test_a_member_who_must_enrol_cannot_read_the_log(client, runtime):
    check_enrolment(client, runtime, ROUTES, Owner(client))


def test_the_list_answers_its_declared_shape_for_a_session_and_a_key(client):
    owner = Owner(client)
    route = BY_NAME["list_events"]
    # The key's first use is in the log before the answer that it makes.
    by_key = assert_answers_as_declared(route, call(client, route, credential=owner.key))
    by_session = assert_answers_as_declared(route, call(client, route, credential=owner.session))
    assert by_session["data"] == by_key["data"]
    events = [entry["event"] for entry in by_session["data"]]
    assert events[0] == "key.first_used"
    assert events.count("key.created") == 2


def test_every_exported_line_is_an_entry_of_the_list_and_nothing_is_stored_on_the_way(client):
    owner = Owner(client)
    response = export(client, owner.key)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["cache-control"] == "no-store"
    exported = lines(response)
    assert exported, response.text
    for entry in exported:
        assert_shape(entry, AuditEvent)
    listed = call(client, BY_NAME["list_events"], credential=owner.key).json()["data"]
    assert exported == list(reversed(listed))


def test_since_with_an_offset_is_the_same_moment_as_in_utc(client):
    owner = Owner(client)
    create_key(client, owner.session, "later")
    everything = lines(export(client, owner.session))
    moment = datetime.fromisoformat(everything[-1]["occurredAt"].replace("Z", "+00:00"))
    in_utc = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    east = moment.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="milliseconds")
    assert east.endswith("+02:00")
    from_utc = lines(export(client, owner.session, since=in_utc))
    from_east = lines(export(client, owner.session, since=east))
    assert from_utc == from_east
    assert from_utc and from_utc[-1] == everything[-1]
    assert all(entry["occurredAt"] >= in_utc for entry in from_utc)


def test_since_after_everything_is_an_empty_export_not_an_error(client):
    owner = Owner(client)
    response = export(client, owner.session, since="2999-01-01T00:00:00Z")
    assert response.status_code == 200
    assert response.text == ""


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+01:00",  # before the first moment there is, in UTC
        "9999-12-31T23:59:59-01:00",  # after the last one
        "2026-11-01T00:00:00Z" + " " * 60,  # over the declared length
        "2026-11-01T25:00:00Z",
    ],
)
def test_a_since_that_is_no_moment_is_a_400_never_a_broken_stream(client, since):
    owner = Owner(client)
    response = export(client, owner.session, since=since)
    assert response.status_code == 400, response.text
    assert "since" in envelope(response, False)["errors"]


BODIES: dict[str, object] = {}


def test_each_route_needs_the_role_its_action_does(client, runtime):
    least = {"list_events": "viewer", "export_events": "viewer"}
    check_roles(client, runtime, ROUTES, Owner(client), least, BODIES)
