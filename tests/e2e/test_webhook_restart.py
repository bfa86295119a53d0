"""Webhook deliveries pending when a server is killed (``kill -9``) are delivered after
it starts again, by several processes at once, each exactly once, signed."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.support import bearer, create_key, login, random_secret, signup, start_server
from tests.webhooks import webhook_receiver

pytestmark = pytest.mark.slow


def test_deliveries_pending_at_a_kill_are_each_delivered_once_after_the_restart(
    tmp_path, database_url
):
    with webhook_receiver() as receiver:
        env = {
            "PARADARUM_DATA_DIR": str(tmp_path / "data"),
            "PARADARUM_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            # Queued, not sent: the process dies with every delivery pending.
            "PARADARUM_WEBHOOKS_ENABLED": "false",
            "PARADARUM_EMAIL_VERIFICATION": "off",
            "PARADARUM_ACCESS_LOG": "false",
        }
        if database_url:
            env["PARADARUM_DATABASE_URL"] = database_url
            env["PARADARUM_JWT_SECRET"] = random_secret()
        first = start_server(env, log_path=tmp_path / "first.log")
        try:
            with httpx.Client(base_url=first.base_url, timeout=10) as http:
                signup(http, "restart@example.com")
                token = login(http, "restart@example.com")
                created = http.post(
                    "/api/account/webhooks",
                    json={"url": receiver.url(), "events": ["api_key.revoked"]},
                    headers=bearer(token),
                )
                assert created.status_code == 201, created.text
                receiver.set(secret=created.json()["data"]["secret"])
                revoked = []
                for n in range(6):
                    key = create_key(http, token, f"key {n}")
                    gone = http.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(token))
                    assert gone.status_code == 200
                    revoked.append(key)
                ready = http.get("/api/health/ready").json()["data"]
                assert ready["jobs"]["webhook"]["queued"] == 6
        finally:
            first.kill(signal.SIGKILL)

        env["PARADARUM_WEBHOOKS_ENABLED"] = "true"
        second = start_server(env, log_path=tmp_path / "second.log", workers=2)
        try:
            deadline = time.monotonic() + 60
            while len(receiver.received()) < 6:
                assert time.monotonic() < deadline, second.output()[-3000:]
                time.sleep(0.1)
            with httpx.Client(base_url=second.base_url, timeout=10) as http:
                while http.get("/api/health/ready").json()["data"]["jobs"]["webhook"]["done"] < 6:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
        finally:
            second.stop()

    got = receiver.received()
    assert len(got) == 6  # nothing twice, even with two processes claiming
    assert all(delivery.verified for delivery in got)
    assert len({delivery.webhook_id for delivery in got}) == 6
    assert sorted(d.event["data"]["key"]["keyPrefix"] for d in got) == sorted(
        key["keyPrefix"] for key in revoked
    )
    for delivery in got:
        assert not any(key["key"] in delivery.body.decode() for key in revoked)
