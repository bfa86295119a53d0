"""Purges through the API reach a real Varnish running the shipped VCL, and stay
inside the purging account's zones: no account can drop an object cached for a
hostname it has not verified."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from paradarum.db.migrate import upgrade
from paradarum.passwords import Passwords
from paradarum.runtime import Runtime, build_runtime
from paradarum.web.app import create_app
from paradarum_client import Client
from tests.cache import Origin, Varnish, running_origin, running_varnish
from tests.conftest import make_settings
from tests.support import (
    activate_zone,
    active_zone,
    create_key,
    free_port,
    login,
    new_account,
    random_secret,
    run,
    signup,
    start_server,
)

TAGS = {
    "/products/1": "product-1 catalogue",
    "/products/2": "product-2,\tcatalogue",
    "/about": "static",
    "/odd": 'odd.(tag)"[x]',
}
ALPHA, BETA = "www.alpha.example", "www.beta.example"


@pytest.fixture
def origin() -> Iterator[Origin]:
    # One origin for every site: the same paths (and so the same tags) on every host.
    with running_origin(TAGS) as server:
        yield server


@pytest.fixture
def varnish(origin: Origin, tmp_path: Path) -> Iterator[Varnish]:
    with running_varnish(origin.port, tmp_path / "varnish") as cache:
        yield cache


def cached(varnish: Varnish, path: str, host: str = "www.example.com") -> str:
    """Fetch until Varnish serves ``path`` from cache; return the cached body."""
    first = varnish.get(path, host=host)
    second = varnish.get(path, host=host)
    assert second.headers["x-cache"] == "HIT", second.headers
    assert second.text == first.text
    assert "x-cache-tags" not in second.headers
    assert "x-paradarum-host" not in second.headers
    return second.text


def state(varnish: Varnish, path: str, host: str) -> str:
    return str(varnish.get(path, host=host).headers["x-cache"])


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
    runtimes: list[Runtime] = []

    def build(nodes: list[str], **overrides: object) -> tuple[TestClient, Runtime]:
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
        return client, runtime

    yield build
    for client in clients:
        client.__exit__(None, None, None)
    for runtime in runtimes:
        runtime.close()


def key_for(client: TestClient, runtime: Runtime, *zones: str) -> dict[str, str]:
    """A purge key of a new account whose active zones are ``zones``."""
    token = new_account(client)
    for zone in zones:
        active_zone(client, runtime, token, zone)
    return {"X-API-Key": create_key(client, token, "purge script")["key"]}


def purge(client, headers: dict[str, str], body: dict) -> dict:
    response = client.post("/api/account/purge", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["data"]


def test_purging_a_url_through_the_api_makes_varnish_fetch_it_again(app_for, varnish):
    client, runtime = app_for([varnish.base_url])
    headers = key_for(client, runtime, "www.example.com")
    assert cached(varnish, "/products/1?colour=red") == "/products/1?colour=red v1"
    assert cached(varnish, "/products/2") == "/products/2 v1"
    other_host = cached(varnish, "/products/1?colour=red", host="shop.example.org")

    queued = purge(client, headers, {"urls": ["https://WWW.example.com/products/1?colour=red"]})
    result = wait_for_purge(client, headers, queued["id"])

    assert result["status"] == "done"
    assert [(n["node"], n["status"]) for n in result["nodes"]] == [("node-1", "done")]
    fresh = varnish.get("/products/1?colour=red")
    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.text == "/products/1?colour=red v2"
    # Only that URL on that host was dropped.
    assert state(varnish, "/products/2", "www.example.com") == "HIT"
    again = varnish.get("/products/1?colour=red", host="shop.example.org")
    assert again.headers["x-cache"] == "HIT" and again.text == other_host


def test_purging_a_tag_drops_every_page_of_the_zone_carrying_it_and_nothing_else(app_for, varnish):
    client, runtime = app_for([varnish.base_url])
    headers = key_for(client, runtime, "www.example.com")
    for path in TAGS:
        cached(varnish, path)

    result = wait_for_purge(client, headers, purge(client, headers, {"tags": ["catalogue"]})["id"])
    assert result["status"] == "done"
    assert state(varnish, "/products/1", "www.example.com") == "MISS"
    assert varnish.get("/products/2").text == "/products/2 v2"
    assert state(varnish, "/about", "www.example.com") == "HIT"
    assert state(varnish, "/odd", "www.example.com") == "HIT"

    # Regex characters and quotes in a tag are matched literally.
    result = wait_for_purge(
        client, headers, purge(client, headers, {"tags": ['odd.(tag)"[x]', "nope"]})["id"]
    )
    assert result["status"] == "done"
    assert state(varnish, "/odd", "www.example.com") == "MISS"
    assert state(varnish, "/about", "www.example.com") == "HIT"


def test_purging_everything_empties_the_cache_of_the_accounts_zones(app_for, varnish):
    client, runtime = app_for([varnish.base_url])
    headers = key_for(client, runtime, "www.example.com", "*.shop.example")
    pages = [("/about", "www.example.com"), ("/untagged", "a.shop.example")]
    for path, host in pages:
        cached(varnish, path, host)

    result = wait_for_purge(client, headers, purge(client, headers, {"everything": True})["id"])
    assert result["status"] == "done"
    for path, host in pages:
        response = varnish.get(path, host=host)
        assert response.headers["x-cache"] == "MISS"
        assert response.text == f"{path} v2"


def test_two_accounts_with_the_same_tag_purge_only_their_own_pages(app_for, varnish):
    """The isolation rule end to end: account B cannot drop a single object cached
    for account A's hostname — not by URL, not by a tag both origins use, not with
    "everything"."""
    client, runtime = app_for([varnish.base_url])
    a = key_for(client, runtime, ALPHA)
    b = key_for(client, runtime, BETA)
    for host in (ALPHA, BETA):
        for path in ("/products/1", "/about"):
            cached(varnish, path, host)

    # A's URL: refused, nothing queued, A's page untouched.
    refused = client.post(
        "/api/account/purge", json={"urls": [f"https://{ALPHA}/products/1"]}, headers=b
    )
    assert refused.status_code == 403 and ALPHA in refused.json()["message"]
    assert state(varnish, "/products/1", ALPHA) == "HIT"

    # The tag both origins put on /products/1: only B's page goes.
    result = wait_for_purge(client, b, purge(client, b, {"tags": ["product-1"]})["id"])
    assert result["status"] == "done"
    assert state(varnish, "/products/1", BETA) == "MISS"
    assert state(varnish, "/products/1", ALPHA) == "HIT"

    # Everything: everything of B's, nothing of A's.
    cached(varnish, "/products/1", BETA)
    result = wait_for_purge(client, b, purge(client, b, {"everything": True})["id"])
    assert result["status"] == "done"
    for path in ("/products/1", "/about"):
        assert state(varnish, path, BETA) == "MISS"
        assert state(varnish, path, ALPHA) == "HIT"
    # And A can still purge its own.
    wait_for_purge(client, a, purge(client, a, {"tags": ["static"]})["id"])
    assert state(varnish, "/about", ALPHA) == "MISS"


def test_a_node_that_is_down_is_recorded_as_failed_while_the_others_are_purged(app_for, varnish):
    down = f"http://127.0.0.1:{free_port()}"
    client, runtime = app_for([varnish.base_url, down], purge_max_attempts=3)
    headers = key_for(client, runtime, "www.example.com")
    cached(varnish, "/about")

    result = wait_for_purge(client, headers, purge(client, headers, {"tags": ["static"]})["id"])

    assert result["status"] == "failed"
    nodes = {node["node"]: node for node in result["nodes"]}
    assert set(nodes) == {"node-1", "node-2"}
    assert nodes["node-1"]["status"] == "done"
    assert nodes["node-1"]["lastError"] is None
    assert nodes["node-2"]["status"] == "failed"
    assert nodes["node-2"]["attempts"] == 3
    assert nodes["node-2"]["lastError"] == "the cache node could not be reached"
    # Node addresses and raw errors are the operator's: not in what the customer sees.
    detail = client.get(f"/api/account/purges/{result['id']}", headers=headers).text
    assert down not in detail and "127.0.0.1" not in detail and "ConnectError" not in detail
    assert state(varnish, "/about", "www.example.com") == "MISS"


def test_varnish_refuses_purges_from_addresses_outside_its_acl(origin, tmp_path):
    vcl_dir = tmp_path / "varnish"
    with running_varnish(origin.port, vcl_dir, allowed=["192.0.2.1"]) as cache:
        cached(cache, "/about")
        refused = httpx.request(
            "PURGE", cache.base_url + "/about", headers={"Host": "www.example.com"}
        )
        banned = httpx.request(
            "BAN",
            cache.base_url + "/",
            headers={"X-Purge-All": "1", "X-Purge-Hosts": "www.example.com"},
        )
        assert refused.status_code == banned.status_code == 403
        assert cache.get("/about").headers["x-cache"] == "HIT"


def server_env(tmp_path: Path, database_url: str | None, varnish: Varnish) -> dict[str, str]:
    env = {
        "PARADARUM_DATA_DIR": str(tmp_path / "data"),
        "PARADARUM_CACHE_NODES": varnish.base_url,
        "PARADARUM_ACCESS_LOG": "false",
    }
    if database_url:
        env["PARADARUM_DATABASE_URL"] = database_url
        env["PARADARUM_JWT_SECRET"] = random_secret()
    return env


def test_a_purge_queued_while_delivery_is_off_is_delivered_after_a_restart(
    varnish, tmp_path, database_url
):
    env = {
        **server_env(tmp_path, database_url, varnish),
        "PARADARUM_PURGE_DELIVERY_ENABLED": "false",
    }
    log = tmp_path / "server.log"
    server = start_server(env, log_path=log)
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            signup(http, "restart@example.com")
            activate_zone(env, "restart@example.com", "www.example.com")
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


def test_the_client_and_the_cli_stay_inside_the_accounts_zones(varnish, tmp_path, database_url):
    """The same isolation through what customers script with: the Python client and
    the ``paradarum`` command, against a real server."""
    env = server_env(tmp_path, database_url, varnish)
    server = start_server(env, log_path=tmp_path / "server.log")
    try:
        keys = {}
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            for email, host in (("alpha@example.com", ALPHA), ("beta@example.com", BETA)):
                signup(http, email)
                activate_zone(env, email, host)
                keys[host] = create_key(http, login(http, email))["key"]
        for host in (ALPHA, BETA):
            cached(varnish, "/products/1", host)
            cached(varnish, "/about", host)

        with Client(api_key=keys[BETA], base_url=server.base_url) as beta:
            from paradarum_client import AuthenticationError

            with pytest.raises(AuthenticationError) as refused:
                beta.purge.urls([f"https://{ALPHA}/products/1"])
            assert ALPHA in refused.value.message
            done = beta.purges.wait(beta.purge.tags(["product-1"]).id, timeout=60)
            assert done.status == "done"
        assert state(varnish, "/products/1", BETA) == "MISS"
        assert state(varnish, "/products/1", ALPHA) == "HIT"

        command = [sys.executable, "-m", "paradarum", "purge", "--everything", "--wait"]
        cli_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PARADARUM_")},
            "PARADARUM_URL": server.base_url,
            "PARADARUM_API_KEY": keys[BETA],
            "HOME": str(tmp_path),
        }
        finished = subprocess.run(command, env=cli_env, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert keys[BETA] not in finished.stdout + finished.stderr
        refused_cli = subprocess.run(
            [sys.executable, "-m", "paradarum", "purge", f"https://{ALPHA}/about"],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused_cli.returncode == 1 and ALPHA in refused_cli.stderr
    finally:
        server.stop()
    assert state(varnish, "/about", BETA) == "MISS"
    for path in ("/products/1", "/about"):
        assert state(varnish, path, ALPHA) == "HIT"


def deliver_queued(runtime: Runtime) -> int:
    """One pass of the delivery loop (for an app built with delivery turned off)."""

    return int(run(runtime.purge_delivery.run_once()))


def test_a_purge_accepted_before_the_zone_moved_leaves_the_new_owners_pages_cached(
    app_for, varnish
):
    """The domain is sold while the old holder's purges wait: they must not reach the
    new owner's objects on the cache."""
    client, runtime = app_for([varnish.base_url], purge_delivery_enabled=False)
    old_token = new_account(client)
    zone = active_zone(client, runtime, old_token, ALPHA)
    old = {"X-API-Key": create_key(client, old_token)["key"]}
    by_url = purge(client, old, {"urls": [f"https://{ALPHA}/products/1"]})
    by_tag = purge(client, old, {"tags": ["catalogue"]})
    everything = purge(client, old, {"everything": True})

    # The old holder's zone goes; the new owner proves the domain and caches pages.
    assert client.delete(f"/api/account/zones/{zone['id']}", headers=old).status_code == 200
    new = key_for(client, runtime, ALPHA)
    for path in ("/products/1", "/products/2", "/about"):
        cached(varnish, path, ALPHA)

    assert deliver_queued(runtime) == 3
    for queued in (by_url, by_tag, everything):
        result = wait_for_purge(client, old, queued["id"])
        assert result["status"] == "failed"
        assert result["nodes"][0]["lastError"] == "its zones are no longer this account's"
    for path in ("/products/1", "/products/2", "/about"):
        assert state(varnish, path, ALPHA) == "HIT", path
    # The new owner's own purge goes through.
    purge(client, new, {"urls": [f"https://{ALPHA}/about"]})
    assert deliver_queued(runtime) == 1
    assert state(varnish, "/about", ALPHA) == "MISS"


def test_a_wildcard_zone_cannot_purge_another_accounts_exact_zone_beneath_it(app_for, varnish):
    client, runtime = app_for([varnish.base_url])
    wide = key_for(client, runtime, "*.alpha.example")
    shop = key_for(client, runtime, "shop.alpha.example")
    mine, theirs = "www.alpha.example", "shop.alpha.example"
    for host in (mine, theirs):
        for path in ("/products/1", "/about"):
            cached(varnish, path, host)

    refused = client.post(
        "/api/account/purge", json={"urls": [f"https://{theirs}/about"]}, headers=wide
    )
    assert refused.status_code == 403 and theirs in refused.json()["message"]

    for body in ({"tags": ["product-1"]}, {"everything": True}):
        result = wait_for_purge(client, wide, purge(client, wide, body)["id"])
        assert result["status"] == "done"
        assert state(varnish, "/products/1", mine) == "MISS"
        assert state(varnish, "/products/1", theirs) == "HIT"
        assert state(varnish, "/about", theirs) == "HIT"
    # The exact zone's owner purges its own.
    wait_for_purge(client, shop, purge(client, shop, {"everything": True})["id"])
    assert state(varnish, "/about", theirs) == "MISS"
