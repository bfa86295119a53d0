"""The one paging helper: cursors, the limit's guard, and the next page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from paradarum.errors import ValidationFailed
from paradarum.services.pagination import (
    MAX_ID,
    MAX_LIMIT,
    check_limit,
    decode_cursor,
    encode_cursor,
    next_cursor,
)

MOMENT = datetime(2026, 11, 27, 9, 14, 3, 512345, tzinfo=UTC)


def test_a_cursor_is_the_last_row_s_moment_and_id_and_reads_back_exactly():
    assert decode_cursor(encode_cursor(MOMENT, 42)) == (MOMENT, 42)


def test_a_cursor_from_another_offset_reads_back_in_utc():
    other = MOMENT.astimezone(timezone(timedelta(hours=-5)))
    assert decode_cursor(encode_cursor(other, 1)) == (MOMENT, 1)


@pytest.mark.parametrize(
    "cursor",
    ["nonsense", "", "!!!", encode_cursor(MOMENT, 1)[:-3], "MjAyNi0xMS0yN3wtMQ"],
)
def test_a_made_up_cursor_is_a_400_on_cursor(cursor):
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor)
    assert caught.value.errors == {"cursor": ["Invalid cursor."]}


def test_a_cursor_beyond_the_largest_id_is_refused():
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_cursor(MOMENT, MAX_ID + 1))


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_a_limit_outside_one_to_the_maximum_is_refused(limit):
    with pytest.raises(ValidationFailed) as caught:
        check_limit(limit)
    assert list(caught.value.errors or {}) == ["limit"]


def test_the_limits_are_the_same_for_every_list():
    check_limit(1)
    check_limit(MAX_LIMIT)
    assert MAX_LIMIT == 1000


def rows(count: int) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(id=count - n, created_at=MOMENT - timedelta(seconds=n))
        for n in range(count)
    ]


def test_there_is_a_next_page_only_when_the_extra_row_was_found():
    assert next_cursor(rows(3), limit=3, moment="created_at") is None
    found = rows(4)
    cursor = next_cursor(found, limit=3, moment="created_at")
    assert cursor is not None
    assert decode_cursor(cursor) == (found[2].created_at, found[2].id)
