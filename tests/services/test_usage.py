"""Key usage (services/usage.py) called directly on a real runtime, SQLite and
PostgreSQL: daily counts that add up across flushes and processes and split at UTC
midnight, history windows, and the once-a-minute ``lastUsedAt`` write and its claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from paradarum.db.tables import api_keys, key_usage_daily
from paradarum.errors import KeyNotFound
from paradarum.runtime import Runtime
from paradarum.services import audit as events
from paradarum.services.apikeys import KeySettings
from paradarum.services.confinement import OutsideKeyZones
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.usage import LAST_USED_INTERVAL, KeyUsage
from tests.services.principals import CLIENT, audit, key_principal, owner
from tests.support import run


def new_key(runtime: Runtime, principal: Principal, **options: Any) -> tuple[int, str]:
    created = run(
        runtime.apikeys.create(
            principal=principal, name="svc", client=CLIENT, settings=KeySettings(**options)
        )
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
    principal = owner(frozen_runtime)
    key_id, _ = new_key(frozen_runtime, principal)
    usage.succeeded(key_id, clock())
    usage.succeeded(key_id, clock())
    usage.refused(key_id, clock())
    clock.advance(0.001)  # 00:00:00.000 the next day
    usage.succeeded(key_id, clock())
    run(usage.flush())
    clock.advance(86_400)  # two days after the first counts
    days = run(usage.history(principal=principal, key_id=key_id, days=4))
    assert [(str(d.day), d.successes, d.refusals) for d in days] == [
        ("2026-03-09", 0, 0),
        ("2026-03-10", 2, 1),
        ("2026-03-11", 1, 0),
        ("2026-03-12", 0, 0),
    ]


def test_flushes_and_processes_add_to_the_day_rather_than_replace_it(frozen_runtime, clock):
    usage = frozen_runtime.usage
    other_process = KeyUsage(db=frozen_runtime.db, clock=clock)
    key_id, _ = new_key(frozen_runtime, owner(frozen_runtime))
    for _ in range(3):
        usage.succeeded(key_id, clock())
    run(usage.flush())
    usage.succeeded(key_id, clock())
    usage.refused(key_id, clock())
    other_process.refused(key_id, clock())
    other_process.succeeded(key_id, clock())
    run(other_process.flush())
    run(usage.flush())
    run(usage.flush())  # nothing new: adds nothing
    assert stored_counts(frozen_runtime) == {(key_id, clock().date()): (5, 2)}


def test_a_flush_skips_keys_deleted_since_and_keeps_the_others(frozen_runtime, clock):
    gone, kept = owner(frozen_runtime), owner(frozen_runtime)
    gone_key, _ = new_key(frozen_runtime, gone)
    kept_key, _ = new_key(frozen_runtime, kept)
    frozen_runtime.usage.succeeded(gone_key, clock())
    frozen_runtime.usage.succeeded(kept_key, clock())
    run(frozen_runtime.accounts.delete(str(gone.email)))
    run(frozen_runtime.usage.flush())
    assert stored_counts(frozen_runtime) == {(kept_key, clock().date()): (1, 0)}


def test_history_is_for_the_caller_s_own_keys_only(runtime):
    principal, stranger = owner(runtime), owner(runtime)
    key_id, _ = new_key(runtime, principal)
    with pytest.raises(KeyNotFound):
        run(runtime.usage.history(principal=stranger, key_id=key_id, days=7))
    with pytest.raises(KeyNotFound):
        run(runtime.usage.history(principal=principal, key_id=key_id + 1000, days=7))
    days = run(runtime.usage.history(principal=principal, key_id=key_id, days=7))
    assert [(d.successes, d.refusals) for d in days] == [(0, 0)] * 7
    assert days[-1].day == runtime.clock().date()


def test_a_key_limited_to_zones_reads_the_usage_of_keys_within_them_only(runtime):
    principal = owner(runtime)
    zone = run(
        runtime.zones.add_for(
            email=str(principal.email), hostname="usage.example.com", verified=True
        )
    )
    confined_id, confined_raw = new_key(runtime, principal, zone_ids=(zone.id,))
    wide_id, _ = new_key(runtime, principal)
    confined = key_principal(runtime, confined_raw)
    assert len(run(runtime.usage.history(principal=confined, key_id=confined_id, days=2))) == 2
    with pytest.raises(OutsideKeyZones):
        run(runtime.usage.history(principal=confined, key_id=wide_id, days=2))


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
    principal = owner(frozen_runtime)
    key_id, raw = new_key(frozen_runtime, principal)
    keyed = key_principal(frozen_runtime, raw)  # from CLIENT
    # The authenticator wrote the first use before answering; a racing process's
    # first-use write changes nothing, and logs nothing more.
    writes = usage.last_used_writes
    elsewhere = ClientInfo(address="198.51.100.4", user_agent="elsewhere")
    assert usage.last_used_due(key_id, None, clock())
    run(usage.record_last_used(keyed, elsewhere, first_use=True))
    assert usage.last_used_writes == writes
    assert last_used(frozen_runtime, key_id).last_used_address == CLIENT.address
    # Within the minute, a later use's write changes nothing.
    clock.advance(30)
    run(usage.record_last_used(keyed, elsewhere, first_use=False))
    assert usage.last_used_writes == writes
    clock.advance(31)
    run(usage.record_last_used(keyed, elsewhere, first_use=False))
    assert usage.last_used_writes == writes + 1
    row = last_used(frozen_runtime, key_id)
    assert (row.last_used_at, row.last_used_address) == (clock(), elsewhere.address)
    assert len(audit(frozen_runtime, principal.account_id, str(events.Event.KEY_FIRST_USED))) == 1
    # The claim is released once written: a minute later it is due again.
    assert usage.last_used_due(key_id, clock(), clock() + LAST_USED_INTERVAL)


def test_last_used_never_goes_backwards(frozen_runtime, clock):
    key_id, raw = new_key(frozen_runtime, owner(frozen_runtime))
    keyed = key_principal(frozen_runtime, raw)
    first_used = clock()
    # A process whose write is late (its clock is behind) writes nothing.
    clock.advance(-120)
    run(
        frozen_runtime.usage.record_last_used(
            keyed, ClientInfo(address="198.51.100.9"), first_use=False
        )
    )
    row = last_used(frozen_runtime, key_id)
    assert (row.last_used_at, row.last_used_address) == (first_used, CLIENT.address)
