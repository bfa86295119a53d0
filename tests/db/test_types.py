"""UTC timestamps on both engines: naive datetimes are refused, aware ones in any
zone are stored as the same instant, and every value read back is aware UTC,
through the column type and through hand-written SQL (``as_utc``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.exc import StatementError

from paradarum.config import normalise_database_url
from paradarum.db.types import UTCDateTime, as_utc

metadata = MetaData()
moments = Table(
    "moments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=True),
)

PARIS_WINTER = timezone(timedelta(hours=1))
NEW_YORK_WINTER = timezone(timedelta(hours=-5))
KOLKATA = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def engine(database_url: str | None, tmp_path: Path) -> Iterator[Engine]:
    url = normalise_database_url(database_url) if database_url else f"sqlite:///{tmp_path}/t.db"
    engine = create_engine(url)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _store(engine: Engine, *values: datetime | None) -> list[int]:
    with engine.begin() as conn:
        return [
            conn.execute(insert(moments).values(at=value).returning(moments.c.id)).scalar_one()
            for value in values
        ]


def _read(engine: Engine, row_id: int) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(moments.c.at).where(moments.c.id == row_id)).scalar_one()


def _is_utc(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_a_naive_datetime_is_refused_and_nothing_is_written(engine):
    with pytest.raises(StatementError) as refused, engine.begin() as conn:
        conn.execute(insert(moments).values(at=datetime(2026, 12, 7, 12, 0)))
    assert isinstance(refused.value.orig, ValueError)
    assert "naive" in str(refused.value.orig)
    with engine.connect() as conn:
        assert conn.execute(select(moments.c.id)).all() == []


def test_a_naive_datetime_is_refused_in_a_comparison_too(engine):
    _store(engine, datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    with pytest.raises(StatementError), engine.connect() as conn:
        conn.execute(select(moments.c.id).where(moments.c.at < datetime(2026, 12, 8)))


@pytest.mark.parametrize("zone", [UTC, PARIS_WINTER, NEW_YORK_WINTER, KOLKATA])
def test_an_aware_datetime_comes_back_as_the_same_instant_in_utc(engine, zone):
    given = datetime(2026, 12, 7, 23, 45, 30, 123456, tzinfo=zone)
    (row_id,) = _store(engine, given)
    read = _read(engine, row_id)
    assert read is not None and _is_utc(read)
    assert read == given  # the same instant
    assert read.replace(tzinfo=None) == given.astimezone(UTC).replace(tzinfo=None)
    assert read.microsecond == 123456


def test_none_stays_none(engine):
    (row_id,) = _store(engine, None)
    assert _read(engine, row_id) is None


def test_order_and_comparisons_follow_the_instant_whatever_zone_each_was_given_in(engine):
    base = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    # Given in zones whose wall-clock order is the reverse of their real order.
    first = (base + timedelta(minutes=1)).astimezone(NEW_YORK_WINTER)  # 07:01 local
    second = (base + timedelta(minutes=2)).astimezone(UTC)  # 12:02 local
    third = (base + timedelta(minutes=3)).astimezone(KOLKATA)  # 17:33 local
    ids = _store(engine, third, first, second)
    by_instant = dict(zip(ids, (third, first, second), strict=True))
    with engine.connect() as conn:
        ordered = conn.execute(select(moments.c.id).order_by(moments.c.at)).scalars().all()
        assert [by_instant[i] for i in ordered] == [first, second, third]
        # A bound aware value in yet another zone compares by instant as well.
        cut = (base + timedelta(minutes=2)).astimezone(PARIS_WINTER)
        later = conn.execute(select(moments.c.id).where(moments.c.at >= cut)).scalars().all()
    assert {by_instant[i] for i in later} == {second, third}


def test_hand_written_sql_read_through_as_utc_gives_the_same_aware_value(engine):
    given = datetime(2026, 12, 7, 8, 15, 0, 250000, tzinfo=KOLKATA)
    (row_id,) = _store(engine, given)
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT at FROM moments WHERE id = :id"), {"id": row_id}).scalar()
    converted = as_utc(raw)
    assert converted is not None and _is_utc(converted)
    assert converted == given
    assert converted == _read(engine, row_id)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_on_sqlite_the_value_is_stored_as_naive_utc_text(engine):
    given = datetime(2026, 12, 7, 23, 45, 30, 5, tzinfo=NEW_YORK_WINTER)
    (row_id,) = _store(engine, given)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT at, typeof(at) FROM moments WHERE id = :id"), {"id": row_id}
        ).one()
    assert stored[1] == "text"
    # 04:45 the next day in UTC; no offset in the text, so that text order is time order.
    assert stored[0] == "2026-12-08 04:45:30.000005"
    assert as_utc(stored[0]) == given


@pytest.mark.parametrize("backend", ["postgresql"])
def test_on_postgresql_the_column_is_timestamptz_and_the_session_zone_does_not_matter(engine):
    given = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
    (row_id,) = _store(engine, given)
    with engine.connect() as conn:
        kind = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'moments' AND column_name = 'at'"
            )
        ).scalar()
        assert kind == "timestamp with time zone"
        conn.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        raw = conn.execute(text("SELECT at FROM moments WHERE id = :id"), {"id": row_id}).scalar()
        typed = conn.execute(select(moments.c.at).where(moments.c.id == row_id)).scalar_one()
    assert raw.utcoffset() == timedelta(hours=9)  # the driver hands back the session's zone
    for value in (as_utc(raw), typed):
        assert value is not None and _is_utc(value)
        assert value == given


class TestAsUtc:
    """The conversion alone, for values hand-written SQL hands back."""

    def test_none_is_none(self):
        assert as_utc(None) is None

    def test_sqlite_text_is_read_as_utc(self):
        assert as_utc("2026-12-07 10:11:12.131415") == datetime(
            2026, 12, 7, 10, 11, 12, 131415, tzinfo=UTC
        )
        assert as_utc("2026-12-07 10:11:12") == datetime(2026, 12, 7, 10, 11, 12, tzinfo=UTC)

    def test_a_naive_datetime_from_a_driver_is_taken_as_utc(self):
        read = as_utc(datetime(2026, 12, 7, 10, 0))
        assert read == datetime(2026, 12, 7, 10, 0, tzinfo=UTC) and read.tzinfo is UTC

    def test_an_aware_datetime_is_converted_to_utc(self):
        read = as_utc(datetime(2026, 12, 7, 10, 0, tzinfo=PARIS_WINTER))
        assert read is not None and read.tzinfo is UTC
        assert (read.hour, read.minute) == (9, 0)

    def test_text_that_is_not_a_timestamp_is_an_error_not_a_guess(self):
        with pytest.raises(ValueError):
            as_utc("yesterday")
