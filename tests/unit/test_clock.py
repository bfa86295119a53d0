"""The real clock: aware UTC, whole milliseconds, and the time it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from paradarum.clock import utcnow


def test_the_clock_is_aware_utc_in_whole_milliseconds_and_now():
    for _ in range(2000):
        before = datetime.now(UTC) - timedelta(milliseconds=1)
        moment = utcnow()
        after = datetime.now(UTC)
        assert moment.tzinfo is UTC
        assert moment.microsecond % 1000 == 0
        assert before <= moment <= after
