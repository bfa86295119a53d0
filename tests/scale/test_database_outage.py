"""PostgreSQL stopped and started under load, with two instances serving.

While it is down every request that needs the database is a 503 envelope with
``Retry-After`` (a credential that could not be checked is never let through);
nothing half-written remains; when it is back the instances serve again without
a restart. The PostgreSQL that is stopped is a throwaway server of the test's own
(``initdb`` into a temporary directory, its own port): the machine's PostgreSQL keeps
running throughout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.scale.cluster import (
    Load,
    Outcome,
    ThrowawayPostgres,
    assert_acknowledged_writes_present,
    assert_nothing_half_written,
    instance_env,
    postgres_binaries,
    prepare_account,
    start_together,
    throwaway_postgres,
    wait_until,
)
from tests.support import IN_CI, ServerProcess, bearer, temporary_postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.pg_outage]

OUTAGE_SECONDS = 3
# What a healthy service answers for each kind of request the load makes.
HEALTHY = {"create": 201, "revoke": 200, "key": 200, "session": 200}
REFUSED = {"revoked-key", "signed-out-session"}


def _healthy(outcome: Outcome) -> bool:
    return outcome.status == HEALTHY.get(outcome.op, 401)


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test's own, to stop and start."""
    if postgres_binaries() is None:
        if IN_CI:
            pytest.fail("PostgreSQL's initdb is needed for the outage test in CI")
        pytest.skip("PostgreSQL's initdb is not installed here")
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres: ThrowawayPostgres) -> Iterator[str]:
    with temporary_postgres_database(postgres.url) as url:
        yield url


@pytest.fixture
def two_instances(pg_url: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers = start_together(instance_env(pg_url, tmp_path / "data"), 2, tmp_path)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_postgres_restart_under_load_fails_closed_then_recovers(two_instances, pg_url, postgres):
    urls = [server.base_url for server in two_instances]
    accounts = [prepare_account(urls[index % 2], f"out{index}@example.com") for index in range(4)]
    probe = accounts[0]

    def serving(url: str) -> bool:
        try:
            response = httpx.get(url + "/api/account", headers=bearer(probe.key), timeout=10)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    with Load(urls, accounts) as load:
        wait_until(lambda: len(load.created) >= 10, what="acknowledged creates before the outage")
        load.phase = "stopping"
        with postgres.stopped():
            load.phase = "down"
            time.sleep(OUTAGE_SECONDS)
            down_ready = [
                httpx.get(url + "/api/health/ready", timeout=10).status_code for url in urls
            ]
            load.phase = "starting"
        # Back by itself: no instance is restarted.
        wait_until(lambda: all(serving(url) for url in urls), what="recovery after restart")
        load.phase = "after"
        wait_until(
            lambda: load.count(lambda o: o.started_in == "after") >= 150,
            what="requests after recovery",
        )

    assert down_ready == [503, 503]
    outcomes = load.outcomes
    # No instance crashed or hung up on a client, and no 500 ever.
    assert all(o.status is not None for o in outcomes), [o for o in outcomes if o.status is None]
    assert not [o for o in outcomes if o.status >= 500 and o.status != 503]
    for outcome in outcomes:
        if outcome.status == 503:
            assert outcome.body is not None and outcome.body["succeeded"] is False
            assert outcome.body["data"] is None
            assert outcome.retry_after is not None and int(outcome.retry_after) > 0
        elif outcome.op in REFUSED:
            # Never a 200 for a revoked key or a signed-out session, in any phase.
            assert outcome.status == 401, outcome
        else:
            assert _healthy(outcome), outcome
    # Fully down: every request is refused with a 503, none is answered from anywhere.
    down = [o for o in outcomes if o.started_in == o.ended_in == "down"]
    assert down, "no request was made while PostgreSQL was down"
    assert all(o.status == 503 for o in down), [o for o in down if o.status != 503]
    assert {o.op for o in down} >= {"key", "session", "create"}
    # Before and after: full service.
    for phase in ("before", "after"):
        settled = [o for o in outcomes if o.started_in == o.ended_in == phase]
        assert settled and all(_healthy(o) or o.op in REFUSED for o in settled), phase
        assert all(o.status != 503 for o in settled), phase

    assert_acknowledged_writes_present(pg_url, load)
    assert_nothing_half_written(pg_url)
