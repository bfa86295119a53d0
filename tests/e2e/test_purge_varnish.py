"""Purges through the API reach a real Varnish running the shipped VCL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from paradarum.db.migrate import upgrade
from paradarum.passwords import Passwords
from paradarum.runtime import build_runtime
from paradarum.web.app import create_app
from tests.cache import Origin, Varnish, running_origin, running_varnish
from tests.conftest import make_settings
from tests.support import (
    create_key,
    free_port,
    login,
    new_account,
    random_secret,
    signup,
    start_server,
)

TAGS = {
    "/products/1": "product-1 catalogue",
    "/products/2": "product-2,\tcatalogue",
    "/about": "static",
    "/odd": 'odd.(tag)"[x]',
}


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin(TAGS) as server:
        yield server


@pytest.fixture
def varnish(origin: Origin, tmp_path: Path) -> Iterator[Varnish]:
    with running_varnish(origin.port, tmp_path / "varnish") as cache:
        yield cache


def cached(varnish: Varnish, path: str) -> str:
    """Fetch until Varnish serves ``path`` from cache; return the cached body."""
    first = varnish.get(path)
    second = varnish.get(path)
    assert second.headers["x-cache"] == "HIT", second.headers
    assert second.text == first.text
    assert "x-cache-tags" not in second.headers
    return second.text


def wait_for_purge(client, headers: dict[str, str], purge_id: int) -> dict:
    deadline = time.monotonic() + 60
    while True:
        response = client.get(f"/api/account/purges/{purge_id}", headers=headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        if data["status"] in ("done", "failed"):
            return data
        assert time.monotonic() < deadline, f"purge never finished: {data}"
        time.sleep(0.05)


@pytest.fixture
def app_for(tmp_path: Path, database_url: str | None):
    """Build an app whose purges go to ``nodes``; closed at the end of the test."""
    clients: list[TestClient] = []
    runtimes = []

    def build(nodes: list[str], **overrides: object) -> TestClient:
        settings = make_settings(
            tmp_path / "data",
            database_url,
            cache_nodes=nodes,
            purge_retry_seconds=0.05,
            **overrides,
        )
        runtime = build_runtime(settings, passwords=Passwords(concurrency=4, memory_kib=1024))
        upgrade(runtime.db)
        runtimes.append(runtime)
        client = TestClient(create_app(runtime=runtime), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)
    for runtime in runtimes:
        runtime.close()


def key_headers(client: TestClient) -> dict[str, str]:
    token = new_account(client)
    return {"X-API-Key": create_key(client, token, "purge script")["key"]}


def purge(client: TestClient, headers: dict[str, str], body: dict) -> dict:
    response = client.post("/api/account/purge", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["data"]


def test_purging_a_url_through_the_api_makes_varnish_fetch_it_again(app_for, varnish):
    client = app_for([varnish.base_url])
    headers = key_headers(client)
    assert cached(varnish, "/products/1?colour=red") == "/products/1?colour=red v1"
    assert cached(varnish, "/products/2") == "/products/2 v1"
    other_host = varnish.get("/products/1?colour=red", host="shop.example.org")
    assert varnish.get("/products/1?colour=red", host="shop.example.org").headers["x-cache"] == (
        "HIT"
    )

    queued = purge(client, headers, {"urls": ["https://WWW.example.com/products/1?colour=red"]})
    result = wait_for_purge(client, headers, queued["id"])

    assert result["status"] == "done"
    assert [(n["node"], n["status"]) for n in result["nodes"]] == [(varnish.base_url, "done")]
    fresh = varnish.get("/products/1?colour=red")
    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.text == "/products/1?colour=red v2"
    # Only that URL on that host was dropped.
    assert varnish.get("/products/2").headers["x-cache"] == "HIT"
    again = varnish.get("/products/1?colour=red", host="shop.example.org")
    assert again.headers["x-cache"] == "HIT" and again.text == other_host.text


def test_purging_a_tag_drops_every_page_carrying_it_and_nothing_else(app_for, varnish):
    client = app_for([varnish.base_url])
    headers = key_headers(client)
    for path in TAGS:
        cached(varnish, path)

    result = wait_for_purge(client, headers, purge(client, headers, {"tags": ["catalogue"]})["id"])
    assert result["status"] == "done"
    assert varnish.get("/products/1").headers["x-cache"] == "MISS"
    assert varnish.get("/products/2").text == "/products/2 v2"
    assert varnish.get("/about").headers["x-cache"] == "HIT"
    assert varnish.get("/odd").headers["x-cache"] == "HIT"

    # Regex characters and quotes in a tag are matched literally.
    result = wait_for_purge(
        client, headers, purge(client, headers, {"tags": ['odd.(tag)"[x]', "nope"]})["id"]
    )
    assert result["status"] == "done"
    assert varnish.get("/odd").headers["x-cache"] == "MISS"
    assert varnish.get("/about").headers["x-cache"] == "HIT"


def test_purging_everything_empties_the_cache(app_for, varnish):
    client = app_for([varnish.base_url])
    headers = key_headers(client)
    for path in ("/about", "/products/1", "/untagged"):
        cached(varnish, path)

    result = wait_for_purge(client, headers, purge(client, headers, {"everything": True})["id"])
    assert result["status"] == "done"
    for path in ("/about", "/products/1", "/untagged"):
        response = varnish.get(path)
        assert response.headers["x-cache"] == "MISS"
        assert response.text == f"{path} v2"


def test_a_node_that_is_down_is_recorded_as_failed_while_the_others_are_purged(app_for, varnish):
    down = f"http://127.0.0.1:{free_port()}"
    client = app_for([varnish.base_url, down], purge_max_attempts=3)
    headers = key_headers(client)
    cached(varnish, "/about")

    result = wait_for_purge(client, headers, purge(client, headers, {"tags": ["static"]})["id"])

    assert result["status"] == "failed"
    nodes = {node["node"]: node for node in result["nodes"]}
    assert nodes[varnish.base_url]["status"] == "done"
    assert nodes[varnish.base_url]["lastError"] is None
    assert nodes[down]["status"] == "failed"
    assert nodes[down]["attempts"] == 3
    assert "refused" in nodes[down]["lastError"].lower()
    assert varnish.get("/about").headers["x-cache"] == "MISS"


def test_varnish_refuses_purges_from_addresses_outside_its_acl(origin, tmp_path):
    vcl_dir = tmp_path / "varnish"
    with running_varnish(origin.port, vcl_dir, allowed=["192.0.2.1"]) as cache:
        cached(cache, "/about")
        refused = httpx.request(
            "PURGE", cache.base_url + "/about", headers={"Host": "www.example.com"}
        )
        banned = httpx.request("BAN", cache.base_url + "/", headers={"X-Purge-All": "1"})
        assert refused.status_code == banned.status_code == 403
        assert cache.get("/about").headers["x-cache"] == "HIT"


def test_a_purge_queued_while_delivery_is_off_is_delivered_after_a_restart(
    varnish, tmp_path, database_url
):
    env = {
        "PARADARUM_DATA_DIR": str(tmp_path / "data"),
        "PARADARUM_CACHE_NODES": varnish.base_url,
        "PARADARUM_PURGE_DELIVERY_ENABLED": "false",
        "PARADARUM_ACCESS_LOG": "false",
    }
    if database_url:
        env["PARADARUM_DATABASE_URL"] = database_url
        env["PARADARUM_JWT_SECRET"] = random_secret()
    log = tmp_path / "server.log"
    server = start_server(env, log_path=log)
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            signup(http, "restart@example.com")
            token = login(http, "restart@example.com")
            headers = {"X-API-Key": create_key(http, token)["key"]}
            cached(varnish, "/products/1")
            queued = purge(http, headers, {"urls": ["http://www.example.com/products/1"]})
            assert queued["status"] == "queued"
            detail = http.get(f"/api/account/purges/{queued['id']}", headers=headers).json()["data"]
            assert detail["status"] == "queued"
            assert detail["nodes"][0]["status"] == "queued"
            assert detail["nodes"][0]["attempts"] == 0
    finally:
        server.stop()
    assert varnish.get("/products/1").headers["x-cache"] == "HIT"

    env["PARADARUM_PURGE_DELIVERY_ENABLED"] = "true"
    server = start_server(env, log_path=log)
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            result = wait_for_purge(http, headers, queued["id"])
    finally:
        server.stop()
    assert result["status"] == "done"
    assert result["nodes"][0]["attempts"] == 1
    assert varnish.get("/products/1").text == "/products/1 v2"
