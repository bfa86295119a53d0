"""Keyset pagination, newest first, for lists ordered by ``(moment, id)``.

A cursor is the position of the last row of a page: its timestamp and id,
base64url-encoded. It is opaque to callers and carries nothing secret; a row
inserted while a caller pages never shifts the pages (unlike an offset).

The next page is ``WHERE (moment, id) < (:moment, :id)`` — a row-value comparison,
which PostgreSQL and SQLite both turn into one range scan of the
``(account_id, moment, id)`` index, so page 200 costs what page 1 costs. (The
equivalent ``moment < :m OR (moment = :m AND id < :id)`` is read by PostgreSQL as
a filter over every row above the cursor instead.)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, tuple_

from paradarum.errors import ValidationFailed
from paradarum_client.models import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT

if TYPE_CHECKING:
    from paradarum.db.engine import Database

__all__ = ["DEFAULT_LIMIT", "MAX_ID", "MAX_LIMIT", "Page", "newest_first"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None


async def newest_first(
    db: Database,
    query: Select[Any],
    *,
    moment: ColumnElement[Any],
    row_id: ColumnElement[Any],
    limit: int,
    cursor: str | None,
    item: Callable[[Any], T],
) -> Page[T]:
    """The one way a list is paged: ``query``'s rows newest first (``moment``, then
    ``row_id``), after ``cursor``, at most ``limit`` (1 to ``MAX_LIMIT``) of them,
    each made an ``item``."""
    check_limit(limit)
    paged = newest_first_page(query, moment=moment, row_id=row_id, limit=limit, cursor=cursor)
    rows = await db.read(lambda conn: conn.execute(paged).all())
    return Page(
        items=[item(row) for row in rows[:limit]],
        next_cursor=next_cursor(rows, limit=limit, moment=str(moment.key)),
    )


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed({"limit": [f"Use 1 to {MAX_LIMIT}."]})


def encode_cursor(moment: datetime, row_id: int) -> str:
    stamp = moment.astimezone(UTC).isoformat()
    return base64.urlsafe_b64encode(f"{stamp}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, id_text = base64.urlsafe_b64decode(padded).decode().partition("|")
        row_id = int(id_text)
        moment = datetime.fromisoformat(stamp)
        if row_id <= 0 or row_id > MAX_ID or moment.tzinfo is None:
            raise ValueError
        return moment.astimezone(UTC), row_id
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise ValidationFailed({"cursor": ["Invalid cursor."]}, "The cursor is invalid.") from exc


def newest_first_page(
    query: Select[Any],
    *,
    moment: ColumnElement[Any],
    row_id: ColumnElement[Any],
    limit: int,
    cursor: str | None,
) -> Select[Any]:
    """``query`` ordered newest first, after ``cursor``, one row more than ``limit``
    (the extra row says whether there is a next page)."""
    if cursor:
        after_moment, after_id = decode_cursor(cursor)
        query = query.where(tuple_(moment, row_id) < tuple_(after_moment, after_id))
    return query.order_by(moment.desc(), row_id.desc()).limit(limit + 1)


def next_cursor(rows: Sequence[Any], *, limit: int, moment: str) -> str | None:
    """The cursor after a page, from the rows of a :func:`newest_first_page` query:
    ``None`` unless it found the extra row (so there is a next page)."""
    if limit < 1 or len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(getattr(last, moment), last.id)
