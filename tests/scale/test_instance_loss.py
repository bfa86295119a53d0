"""Losing an instance (``kill -9``) under load: the others keep serving, and every
write that was acknowledged is in the database."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.scale.cluster import (
    Load,
    assert_acknowledged_writes_present,
    assert_nothing_half_written,
    prepare_account,
    wait_until,
)
from tests.support import bearer

pytestmark = pytest.mark.slow


def test_kill_9_of_one_instance_under_load_loses_no_acknowledged_write(two_instances, pg_url):
    survivor, victim = two_instances
    urls = [survivor.base_url, victim.base_url]
    accounts = [prepare_account(urls[index % 2], f"load{index}@example.com") for index in range(6)]
    # Keys created through the victim, to be used through the survivor afterwards.
    with httpx.Client(timeout=30) as http:
        made_on_victim = [
            http.post(
                victim.base_url + "/api/account/apikeys",
                json={"name": "from the victim"},
                headers=bearer(accounts[0].token),
            )
            for _ in range(3)
        ]
    assert [response.status_code for response in made_on_victim] == [201] * 3

    with Load(urls, accounts) as load:
        wait_until(
            lambda: sum(1 for c in load.created if c[0] == 1) >= 10,
            what="acknowledged creates on the victim",
        )
        load.phase = "killed"
        victim.kill(signal.SIGKILL)
        wait_until(
            lambda: load.count(lambda o: o.instance == 0 and o.started_in == "killed") >= 120,
            what="requests to the survivor after the kill",
        )

    survivor_outcomes = [o for o in load.outcomes if o.instance == 0]
    expected = {"create": 201, "revoke": 200, "key": 200, "session": 200}
    for outcome in survivor_outcomes:
        # The survivor never noticed: every answer is what a healthy service gives.
        assert outcome.status == expected.get(outcome.op, 401), outcome
    after_kill = [o for o in load.outcomes if o.instance == 1 and o.started_in == "killed"]
    assert after_kill and all(o.status is None for o in after_kill[-5:])  # it really is gone
    assert victim.process.poll() is not None

    assert_acknowledged_writes_present(pg_url, load)
    assert_nothing_half_written(pg_url)
    with httpx.Client(timeout=30) as http:
        for response in made_on_victim:
            key = response.json()["data"]["key"]
            assert (
                http.get(survivor.base_url + "/api/account", headers=bearer(key)).status_code == 200
            )
        for _instance, _name, key_id, key in load.created:
            # Every key whose revoke was acknowledged is refused by the survivor.
            if key_id in load.revoked:
                assert (
                    http.get(survivor.base_url + "/api/account", headers=bearer(key)).status_code
                    == 401
                )
