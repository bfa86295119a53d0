"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(value: Any) -> datetime | None:
    """A value read by hand-written SQL (naive UTC text on SQLite, an aware
    datetime on PostgreSQL) as an aware UTC datetime, like :class:`UTCDateTime`."""
    if value is None:
        return None
    if isinstance(value, str):
        return _from_sqlite(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _from_sqlite(text: str) -> datetime:
    # The hot path reads the same few timestamps (a key's lastUsedAt, an
    # account's createdAt) over and over: parsed once each.
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type: values are stored as naive UTC text, which sorts
    and compares correctly because the format is fixed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return as_utc(value)
