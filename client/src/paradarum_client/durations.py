"""What the command line takes for a span or a moment: ``30m``, ``12h``, ``90d``, a date.

Pure functions with one-sentence errors, so that ``--grace 1 hour`` or
``--expires tomorrow`` is answered with what to type instead, not with a guess. Each
raises :class:`ValueError`; the command line turns that into a usage error.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_SPAN = re.compile(r"(?:\d+[mhd])+")
_PART = re.compile(r"(\d+)([mhd])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Years of days: more than any setting takes, and far from what datetime can hold.
_MAX_COUNT = 100_000

SPAN_HELP = "a number and a unit, such as 30m, 12h or 7d (m: minutes, h: hours, d: days)"


def span(text: str) -> timedelta:
    """``30m``, ``12h``, ``2d``, ``1d12h`` or ``0``: a span of whole minutes."""
    value = text.strip().lower()
    if value == "0":
        return timedelta(0)
    if not _SPAN.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration: use {SPAN_HELP}, or 0")
    total = timedelta(0)
    for count, unit in _PART.findall(value):
        if int(count) > _MAX_COUNT:
            raise ValueError(f"{text!r} is far too long a duration")
        total += int(count) * UNITS[unit]
    return total


def end_of_day(day: date) -> datetime:
    """The moment a key "expiring on" ``day`` stops: the end of that day in UTC (the
    start of the next), the same rule as the panel's and the API documentation's."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def _rfc3339(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an RFC 3339 time, such as 2027-01-31T18:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z for UTC or an offset such as +01:00")
    return moment.astimezone(UTC)


def since(text: str, *, now: datetime) -> datetime:
    """Where a look back starts: a span before ``now`` (``7d``, ``12h``), a date
    (``2027-01-31``: the start of that day, UTC) or an RFC 3339 moment with its time
    zone."""
    value = text.strip()
    if value[:1].isdigit() and _SPAN.fullmatch(value.lower()):
        return now - span(value)
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{text!r} is not a date in the calendar") from None
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    if _DATE.match(value) and len(value) > 10 and value[10] in "Tt ":
        return _rfc3339(value)
    raise ValueError(
        f"{text!r} is not a time to start from: use {SPAN_HELP} (that long ago), a date "
        "such as 2027-01-31, or an RFC 3339 time such as 2027-01-31T18:00:00Z"
    )


def expiry(text: str) -> datetime | timedelta:
    """When a key should expire: a span from now (``90d``, ``12h``), a date
    (``2027-01-31``: the key works through that day, UTC — :func:`end_of_day`) or an
    RFC 3339 moment with its time zone (``2027-01-31T18:00:00Z``,
    ``2027-01-31T18:00:00+01:00``)."""
    value = text.strip()
    if value == "0":
        raise ValueError(f"{text!r} is now: give a later time, such as 90d")
    if value[:1].isdigit() and _SPAN.fullmatch(value.lower()):
        spanned = span(value)
        if not spanned:
            raise ValueError(f"{text!r} is now: give a later time, such as 90d")
        return spanned
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{text!r} is not a date in the calendar") from None
        return end_of_day(day)
    if _DATE.match(value) and len(value) > 10 and value[10] in "Tt ":
        return _rfc3339(value)
    raise ValueError(
        f"{text!r} is not an expiry: use {SPAN_HELP}, a date such as 2027-01-31, "
        "or an RFC 3339 time such as 2027-01-31T18:00:00Z"
    )
