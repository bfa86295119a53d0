"""The envelope: shapes encoded by their own definition, timestamps as the wire has
them, and the next page's link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import orjson

from paradarum.services.pagination import Page
from paradarum.web.responses import envelope, envelope_error, next_page_link, page_reply
from paradarum_client.models import (
    Account,
    DayUsage,
    KeyListQuery,
    KeyUsage,
    PageQuery,
    Purge,
    from_wire,
    to_wire,
)

MOMENT = datetime(2026, 11, 27, 9, 14, 3, 512345, tzinfo=UTC)


def account(created_at: datetime) -> Account:
    return Account(
        id=1,
        email="ada@example.com",
        created_at=created_at,
        active_keys=2,
        key_limit=10,
        email_verified=True,
    )


def data_of(response) -> object:
    return orjson.loads(response.body)["data"]


def test_a_shape_is_sent_with_camel_case_names_and_millisecond_utc_times():
    response = envelope(account(MOMENT), "Account", status=200, headers=None)
    assert orjson.loads(response.body) == {
        "succeeded": True,
        "message": "Account",
        "data": {
            "id": 1,
            "email": "ada@example.com",
            "createdAt": "2026-11-27T09:14:03.512Z",
            "activeKeys": 2,
            "keyLimit": 10,
            "emailVerified": True,
            "name": None,
            "role": None,
        },
    }


def test_a_whole_second_still_has_milliseconds_and_other_offsets_become_utc():
    whole = datetime(2026, 11, 27, 9, 14, 3, tzinfo=timezone(timedelta(hours=2)))
    sent = data_of(envelope(account(whole), "", status=200, headers=None))
    assert sent["createdAt"] == "2026-11-27T07:14:03.000Z"


def test_lists_dates_and_nested_shapes_are_encoded_and_none_stays_null():
    usage = KeyUsage(key_id=3, days=[DayUsage(day=date(2026, 11, 27), successes=1, refusals=0)])
    assert data_of(envelope([usage], "", status=200, headers=None)) == [
        {"keyId": 3, "days": [{"day": "2026-11-27", "successes": 1, "refusals": 0}]}
    ]
    assert data_of(envelope(None, "", status=200, headers=None)) is None


def test_a_shape_the_server_sends_is_what_the_client_parses():
    purge = Purge(
        id=1,
        kind="urls",
        targets=["https://a.example/"],
        status="queued",
        created_at=MOMENT.replace(microsecond=512000),
        completed_at=None,
    )
    sent = data_of(envelope(purge, "", status=202, headers=None))
    assert sent == to_wire(purge) and sent["nodes"] == []
    assert from_wire(Purge, sent) == purge


def test_an_error_envelope_has_errors_only_when_given():
    plain = orjson.loads(envelope_error(404, "No such thing.").body)
    assert plain == {"succeeded": False, "message": "No such thing.", "data": None}
    invalid = orjson.loads(envelope_error(400, "Bad.", errors={"name": ["Too long."]}).body)
    assert invalid["errors"] == {"name": ["Too long."]}


def test_the_next_page_link_keeps_the_query_and_replaces_the_cursor():
    link = next_page_link("/api/account/apikeys", KeyListQuery(limit=2, cursor="old"), "new")
    assert link == {"Link": '</api/account/apikeys?limit=2&cursor=new&status=all>; rel="next"'}


def test_there_is_no_next_page_link_on_the_last_page():
    assert next_page_link("/api/account/zones", PageQuery(), None) is None


def test_a_page_reply_shapes_each_item_and_links_the_next_page_only_when_there_is_one():
    query = PageQuery(limit=2)
    reply = page_reply("/api/account/zones", query, Page([1, 2], "next"), str, "Zones")
    assert (reply.data, reply.message) == (["1", "2"], "Zones")
    assert reply.headers == {"Link": '</api/account/zones?limit=2&cursor=next>; rel="next"'}
    last = page_reply("/api/account/zones", query, Page([3], None), str, "Zones")
    assert (last.data, last.headers) == (["3"], None)
