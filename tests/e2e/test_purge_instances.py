"""Several server instances share one queue: each delivery is sent exactly once."""

from __future__ import annotations

import time

import httpx

from tests.cache import recording_node
from tests.support import activate_zone, create_key, login, random_secret, signup, start_server


def test_instances_started_together_deliver_each_queued_purge_exactly_once(tmp_path, database_url):
    with recording_node() as first, recording_node() as second:
        env = {
            "PARADARUM_DATA_DIR": str(tmp_path / "data"),
            "PARADARUM_CACHE_NODES": f"{first.base_url},{second.base_url}",
            "PARADARUM_PURGE_DELIVERY_ENABLED": "false",
            "PARADARUM_ACCESS_LOG": "false",
        }
        if database_url:
            env["PARADARUM_DATABASE_URL"] = database_url
            env["PARADARUM_JWT_SECRET"] = random_secret()
        queueing = start_server(env, log_path=tmp_path / "queueing.log")
        try:
            with httpx.Client(base_url=queueing.base_url, timeout=10) as http:
                signup(http, "instances@example.com")
                activate_zone(env, "instances@example.com", "www.example.com")
                token = login(http, "instances@example.com")
                headers = {"X-API-Key": create_key(http, token)["key"]}
                ids = []
                for n in range(20):
                    response = http.post(
                        "/api/account/purge",
                        json={"urls": [f"https://www.example.com/page/{n}"]},
                        headers=headers,
                    )
                    assert response.status_code == 202, response.text
                    ids.append(response.json()["data"]["id"])
        finally:
            queueing.stop()

        # Two instances (one with two worker processes) wake up to the same queue.
        env["PARADARUM_PURGE_DELIVERY_ENABLED"] = "true"
        instances = [
            start_server(env, log_path=tmp_path / "a.log", workers=2),
            start_server(env, log_path=tmp_path / "b.log"),
        ]
        try:
            with httpx.Client(base_url=instances[1].base_url, timeout=10) as http:
                deadline = time.monotonic() + 60
                pending = set(ids)
                while pending:
                    assert time.monotonic() < deadline, f"still pending: {sorted(pending)}"
                    for purge_id in sorted(pending):
                        data = http.get(f"/api/account/purges/{purge_id}", headers=headers)
                        if data.json()["data"]["status"] == "done":
                            pending.discard(purge_id)
                    time.sleep(0.1)
                listed = http.get("/api/account/purges?limit=50", headers=headers).json()["data"]
        finally:
            for instance in instances:
                instance.stop()

    assert {purge["status"] for purge in listed} == {"done"}
    expected = sorted(f"/page/{n}" for n in range(20))
    for node in (first, second):
        assert sorted(r.path for r in node.requests if r.method == "PURGE") == expected
