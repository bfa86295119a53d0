"""Key usage (services/usage.py) called directly on a real runtime, SQLite and
PostgreSQL: daily counts that add up across flushes and processes and split at UTC
midnight, history windows, and the once-a-minute ``lastUsedAt`` write and its claim."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from paradarum.db.tables import api_keys, audit_events, key_usage_daily
from paradarum.errors import KeyNotFound
from paradarum.runtime import Runtime
from paradarum.services import audit
from paradarum.services.accounts import Session
from paradarum.services.apikeys import KeySettings
from paradarum.services.confinement import OutsideKeyZones
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.usage import LAST_USED_INTERVAL, KeyUsage
from tests.support import run

T = TypeVar("T")
PASSWORD = secrets.token_urlsafe(18)
CLIENT = ClientInfo(address="192.0.2.10", user_agent="service tests")


def scenario(runtime: Runtime, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` on a loop of its own with the runtime's database open."""

    async def main() -> T:
        await runtime.db.start()
        try:
            return await body()
        finally:
            await runtime.background.stop()
            await runtime.db.stop()

    return run(main())


async def sign_up(runtime: Runtime) -> Principal:
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    await runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT)
    session = await runtime.accounts.login(email=email, password=PASSWORD, client=CLIENT)
    assert isinstance(session, Session)
    return await runtime.authenticator.authenticate(session.token, CLIENT)


async def new_key(runtime: Runtime, principal: Principal, **options: Any) -> tuple[int, str]:
    created = await runtime.apikeys.create(
        principal=principal, name="svc", client=CLIENT, settings=KeySettings(**options)
    )
    return created.info.id, created.raw_key


def stored_counts(runtime: Runtime) -> dict[tuple[int, Any], tuple[int, int]]:
    with runtime.db.reading() as conn:
        rows = conn.execute(select(key_usage_daily)).all()
    return {(row.key_id, row.day): (int(row.successes), int(row.refusals)) for row in rows}


def last_used(runtime: Runtime, key_id: int) -> Any:
    with runtime.db.reading() as conn:
        return conn.execute(
            select(api_keys.c.last_used_at, api_keys.c.last_used_address).where(
                api_keys.c.id == key_id
            )
        ).one()


def test_counts_split_at_utc_midnight_and_history_fills_the_days_between(frozen_runtime, clock):
    clock.now = datetime(2026, 3, 10, 23, 59, 59, 999000, tzinfo=UTC)
    usage = frozen_runtime.usage

    async def body() -> list[tuple[str, int, int]]:
        owner = await sign_up(frozen_runtime)
        key_id, _ = await new_key(frozen_runtime, owner)
        usage.succeeded(key_id, clock())
        usage.succeeded(key_id, clock())
        usage.refused(key_id, clock())
        clock.advance(0.001)  # 00:00:00.000 the next day
        usage.succeeded(key_id, clock())
        await usage.flush()
        clock.advance(86_400)  # two days after the first counts
        days = await usage.history(principal=owner, key_id=key_id, days=4)
        return [(str(d.day), d.successes, d.refusals) for d in days]

    assert scenario(frozen_runtime, body) == [
        ("2026-03-09", 0, 0),
        ("2026-03-10", 2, 1),
        ("2026-03-11", 1, 0),
        ("2026-03-12", 0, 0),
    ]


def test_flushes_and_processes_add_to_the_day_rather_than_replace_it(frozen_runtime, clock):
    other_process = KeyUsage(db=frozen_runtime.db, clock=clock)

    async def body() -> int:
        owner = await sign_up(frozen_runtime)
        key_id, _ = await new_key(frozen_runtime, owner)
        for _ in range(3):
            frozen_runtime.usage.succeeded(key_id, clock())
        await frozen_runtime.usage.flush()
        frozen_runtime.usage.succeeded(key_id, clock())
        frozen_runtime.usage.refused(key_id, clock())
        other_process.refused(key_id, clock())
        other_process.succeeded(key_id, clock())
        await other_process.flush()
        await frozen_runtime.usage.flush()
        await frozen_runtime.usage.flush()  # nothing new: adds nothing
        return key_id

    key_id = scenario(frozen_runtime, body)
    assert stored_counts(frozen_runtime) == {(key_id, clock().date()): (5, 2)}


def test_a_flush_skips_keys_deleted_since_and_keeps_the_others(frozen_runtime, clock):
    async def body() -> tuple[int, int]:
        gone = await sign_up(frozen_runtime)
        kept = await sign_up(frozen_runtime)
        gone_key, _ = await new_key(frozen_runtime, gone)
        kept_key, _ = await new_key(frozen_runtime, kept)
        frozen_runtime.usage.succeeded(gone_key, clock())
        frozen_runtime.usage.succeeded(kept_key, clock())
        await frozen_runtime.accounts.delete(str(gone.email))
        await frozen_runtime.usage.flush()
        return gone_key, kept_key

    _, kept_key = scenario(frozen_runtime, body)
    assert stored_counts(frozen_runtime) == {(kept_key, clock().date()): (1, 0)}


def test_history_is_for_the_caller_s_own_keys_only(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        stranger = await sign_up(runtime)
        key_id, _ = await new_key(runtime, owner)
        with pytest.raises(KeyNotFound):
            await runtime.usage.history(principal=stranger, key_id=key_id, days=7)
        with pytest.raises(KeyNotFound):
            await runtime.usage.history(principal=owner, key_id=key_id + 1000, days=7)
        days = await runtime.usage.history(principal=owner, key_id=key_id, days=7)
        assert [(d.successes, d.refusals) for d in days] == [(0, 0)] * 7
        assert days[-1].day == runtime.clock().date()

    scenario(runtime, body)


def test_a_key_limited_to_zones_reads_the_usage_of_keys_within_them_only(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        zone = await runtime.zones.add_for(
            email=str(owner.email), hostname="usage.example.com", verified=True
        )
        confined_id, confined_raw = await new_key(runtime, owner, zone_ids=(zone.id,))
        wide_id, _ = await new_key(runtime, owner)
        confined = await runtime.authenticator.authenticate(confined_raw, CLIENT)
        assert len(await runtime.usage.history(principal=confined, key_id=confined_id, days=2)) == 2
        with pytest.raises(OutsideKeyZones):
            await runtime.usage.history(principal=confined, key_id=wide_id, days=2)

    scenario(runtime, body)


def test_last_used_is_due_a_full_minute_after_the_last_write_and_claimed_once(
    frozen_runtime, clock
):
    usage = frozen_runtime.usage
    written = clock()
    assert not usage.last_used_due(1, written, written + LAST_USED_INTERVAL / 2)
    assert not usage.last_used_due(
        1, written, written + LAST_USED_INTERVAL - timedelta(milliseconds=1)
    )
    assert usage.last_used_due(1, written, written + LAST_USED_INTERVAL)
    # Claimed: no other request writes it until that write is done.
    assert not usage.last_used_due(1, written, written + LAST_USED_INTERVAL * 5)
    assert not usage.last_used_due(1, None, written)
    # Another key has its own claim.
    assert usage.last_used_due(2, None, written)


def test_the_first_use_is_written_and_logged_once_and_later_ones_once_a_minute(
    frozen_runtime, clock
):
    usage = frozen_runtime.usage
    first_client = ClientInfo(address="198.51.100.4", user_agent="first")

    async def body() -> tuple[int, int]:
        owner = await sign_up(frozen_runtime)
        key_id, raw = await new_key(frozen_runtime, owner)
        principal = await frozen_runtime.authenticator.authenticate(raw, first_client)
        # The authenticator wrote the first use before answering; a racing
        # process's first-use write changes nothing, and logs nothing more.
        writes = usage.last_used_writes
        assert usage.last_used_due(key_id, None, clock())
        await usage.record_last_used(principal, CLIENT, first_use=True)
        assert usage.last_used_writes == writes
        assert last_used(frozen_runtime, key_id).last_used_address == "198.51.100.4"
        # Within the minute, a later use's write changes nothing.
        clock.advance(30)
        await usage.record_last_used(principal, CLIENT, first_use=False)
        assert usage.last_used_writes == writes
        clock.advance(31)
        await usage.record_last_used(principal, CLIENT, first_use=False)
        assert usage.last_used_writes == writes + 1
        first_used = await frozen_runtime.db.read(
            lambda conn: conn.execute(
                select(func.count())
                .select_from(audit_events)
                .where(audit_events.c.event == str(audit.Event.KEY_FIRST_USED))
            ).scalar_one()
        )
        return key_id, first_used

    key_id, first_used = scenario(frozen_runtime, body)
    assert first_used == 1
    row = last_used(frozen_runtime, key_id)
    assert row.last_used_address == CLIENT.address
    assert row.last_used_at == clock()
    # The claim is released once written: a minute later it is due again.
    assert usage.last_used_due(key_id, clock(), clock() + LAST_USED_INTERVAL)


def test_last_used_never_goes_backwards(frozen_runtime, clock):
    usage = frozen_runtime.usage

    async def body() -> int:
        owner = await sign_up(frozen_runtime)
        key_id, raw = await new_key(frozen_runtime, owner)
        principal = await frozen_runtime.authenticator.authenticate(raw, CLIENT)
        # A process whose write is late (its clock is behind) writes nothing.
        clock.advance(-120)
        await usage.record_last_used(principal, ClientInfo(address="198.51.100.9"), first_use=False)
        return key_id

    key_id = scenario(frozen_runtime, body)
    row = last_used(frozen_runtime, key_id)
    assert row.last_used_at == clock() + timedelta(seconds=120)
    assert row.last_used_address == CLIENT.address
