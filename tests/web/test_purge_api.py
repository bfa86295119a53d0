"""HTTP behaviour of the purge endpoints, on SQLite and PostgreSQL: what is accepted,
and that a purge reaches only the caller's zones."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.cache import RecordingNode, recording_node
from tests.support import active_zone, bearer, create_key, new_account

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def node() -> Iterator[RecordingNode]:
    with recording_node() as recording:
        yield recording


@pytest.fixture
def settings_overrides(node: RecordingNode) -> dict[str, object]:
    return {"cache_nodes": [node.base_url], "purges_per_account": 4}


@pytest.fixture
def account(client, runtime) -> str:
    """A session token of an account whose zones are www.example.com and *.shop.example."""
    token = new_account(client)
    active_zone(client, runtime, token, "www.example.com")
    active_zone(client, runtime, token, "*.shop.example")
    return token


def test_a_purge_with_an_api_key_is_accepted_with_202(client, node, account):
    key = create_key(client, account)["key"]
    response = client.post(
        "/api/account/purge",
        json={"urls": ["https://www.example.com/a"]},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["succeeded"] is True and body["message"]
    data = body["data"]
    assert set(data) == {"id", "kind", "targets", "status", "createdAt", "completedAt", "nodes"}
    assert data["kind"] == "urls" and data["targets"] == ["https://www.example.com/a"]
    assert data["status"] in ("queued", "running", "done")
    assert TIMESTAMP.match(data["createdAt"]) and data["id"] > 0


@pytest.mark.parametrize(
    ("body", "kind", "targets"),
    [
        ({"tags": ["product-1", "a:b/c"]}, "tags", ["product-1", "a:b/c"]),
        ({"everything": True}, "everything", []),
        (
            {"urls": ["http://a.shop.example/a", "http://a.shop.example/a"]},
            "urls",
            ["http://a.shop.example/a"],
        ),
        ({"tags": ["t"], "urls": None}, "tags", ["t"]),
    ],
)
def test_each_kind_of_purge_is_accepted_with_a_session_too(client, account, body, kind, targets):
    response = client.post("/api/account/purge", json=body, headers=bearer(account))
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert (data["kind"], data["targets"]) == (kind, targets)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # The full rules are in tests/unit/test_purge_rules.py; these check the HTTP side.
        ({}, "body"),
        ({"urls": ["https://a.example/"], "tags": ["t"]}, "urls"),
        ({"urls": []}, "urls"),
        ({"urls": ["/relative/path"]}, "urls"),
        ({"urls": [5]}, "urls.0"),
        ({"tags": ["has space"]}, "tags"),
        ({"everything": False}, "everything"),
        ({"everything": "yes"}, "everything"),
    ],
)
def test_a_bad_purge_request_is_a_400_naming_the_problem(client, account, body, field):
    response = client.post("/api/account/purge", json=body, headers=bearer(account))
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["succeeded"] is False and payload["data"] is None
    assert field in payload["errors"], payload


def test_purge_needs_credentials(client):
    response = client.post("/api/account/purge", json={"everything": True})
    assert response.status_code == 401
    assert client.get("/api/account/purges").status_code == 401


def test_purges_are_rate_limited_per_account_with_retry_after(client, runtime, account):
    token, other = account, new_account(client)
    active_zone(client, runtime, other, "other.example")
    for _ in range(4):
        ok = client.post("/api/account/purge", json={"everything": True}, headers=bearer(token))
        assert ok.status_code == 202
    limited = client.post("/api/account/purge", json={"everything": True}, headers=bearer(token))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["succeeded"] is False
    assert (
        client.post("/api/account/purge", json={"tags": ["t"]}, headers=bearer(other)).status_code
        == 202
    )


def test_purges_are_listed_newest_first_with_a_link_to_the_next_page(client, account):
    token = account
    made = [
        client.post("/api/account/purge", json={"tags": [f"t{n}"]}, headers=bearer(token)).json()[
            "data"
        ]["id"]
        for n in range(3)
    ]
    first = client.get("/api/account/purges?limit=2", headers=bearer(token))
    assert first.status_code == 200
    assert [p["id"] for p in first.json()["data"]] == [made[2], made[1]]
    link = first.headers["link"]
    match = re.fullmatch(r'<(/api/account/purges\?[^>]+)>; rel="next"', link)
    assert match, link
    second = client.get(match.group(1), headers=bearer(token))
    assert [p["id"] for p in second.json()["data"]] == [made[0]]
    assert "link" not in second.headers
    entry = second.json()["data"][0]
    assert set(entry) == {"id", "kind", "targets", "status", "createdAt", "completedAt", "nodes"}
    # Each entry says what the nodes did, as the purge's own page does.
    detail = client.get(f"/api/account/purges/{entry['id']}", headers=bearer(token))
    assert [n["node"] for n in entry["nodes"]] == [
        n["node"] for n in detail.json()["data"]["nodes"]
    ]
    bad = client.get("/api/account/purges?cursor=nonsense", headers=bearer(token))
    assert bad.status_code == 400


def test_one_purge_shows_each_nodes_result_and_other_accounts_get_404(client, node, account):
    token, other = account, new_account(client)
    purge_id = client.post(
        "/api/account/purge", json={"tags": ["t"]}, headers=bearer(token)
    ).json()["data"]["id"]
    response = client.get(f"/api/account/purges/{purge_id}", headers=bearer(token))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == purge_id
    # Customers see each node as a label; its address is the operator's business.
    assert [n["node"] for n in data["nodes"]] == ["node-1"]
    assert node.base_url not in response.text
    assert set(data["nodes"][0]) == {
        "node",
        "status",
        "attempts",
        "lastError",
        "updatedAt",
        "nextAttemptAt",
    }
    for path, who in (
        (f"/api/account/purges/{purge_id}", other),
        ("/api/account/purges/999999", token),
    ):
        missing = client.get(path, headers=bearer(who))
        assert missing.status_code == 404
        assert missing.json()["succeeded"] is False
    assert client.get("/api/account/purges/0", headers=bearer(token)).status_code == 400
    assert client.get("/api/account/purges/abc", headers=bearer(token)).status_code == 400
    assert other not in client.get("/api/account/purges", headers=bearer(other)).text
    assert client.get("/api/account/purges", headers=bearer(other)).json()["data"] == []


@pytest.mark.parametrize(
    "url",
    [
        "https://victim.example/page",  # another customer's host
        "https://example.com/",  # the apex of a zone the caller holds a subdomain of
        "https://shop.example/",  # the apex of a wildcard zone is not covered
        "https://badshop.example/",  # nor a name that merely ends the same
        "https://www.example.com.evil.test/",
    ],
)
def test_urls_outside_the_callers_zones_are_a_403_naming_them_and_nothing_is_queued(
    client, node, account, url
):
    mine = "https://www.example.com/ok"
    response = client.post(
        "/api/account/purge", json={"urls": [mine, url]}, headers=bearer(account)
    )
    assert response.status_code == 403, response.text
    body = response.json()
    host = url.split("/")[2]
    assert host in body["message"] and host in " ".join(body["errors"]["urls"])
    assert len(body["errors"]["urls"]) == 1  # www.example.com is the caller's: not named
    assert client.get("/api/account/purges", headers=bearer(account)).json()["data"] == []


def test_urls_on_a_zone_or_below_a_wildcard_zone_are_accepted(client, node, account):
    urls = [
        "https://WWW.Example.com./a?b=1",  # the host as any browser may spell it
        "http://www.example.com:8080/c",
        "https://a.shop.example/d",
        "https://b.a.shop.example/e",
    ]
    response = client.post("/api/account/purge", json={"urls": urls}, headers=bearer(account))
    assert response.status_code == 202, response.text


def test_without_an_active_zone_tags_and_everything_are_refused(client, runtime):
    token = new_account(client)
    pending = client.post(
        "/api/account/zones", json={"hostname": "pending.example"}, headers=bearer(token)
    )
    assert pending.status_code == 201  # a pending zone does not count
    for body, field in (({"tags": ["t"]}, "tags"), ({"everything": True}, "everything")):
        response = client.post("/api/account/purge", json=body, headers=bearer(token))
        assert response.status_code == 400, response.text
        assert "zone" in response.json()["errors"][field][0]
    urls = {"urls": ["https://pending.example/"]}
    assert client.post("/api/account/purge", json=urls, headers=bearer(token)).status_code == 403


def test_tag_and_everything_purges_carry_the_callers_zones_to_the_cache(client, node, account):
    from tests.support import wait_until

    for body in ({"tags": ["product-1"]}, {"everything": True}):
        purge = client.post("/api/account/purge", json=body, headers=bearer(account)).json()["data"]
        wait_until(
            lambda pid=purge["id"]: (
                client.get(f"/api/account/purges/{pid}", headers=bearer(account)).json()["data"][
                    "status"
                ]
                == "done"
            )
        )
    bans = [request for request in node.requests if request.method == "BAN"]
    assert len(bans) == 2
    assert {ban.headers["x-purge-hosts"] for ban in bans} == {"*.shop.example www.example.com"}
    assert bans[0].headers["x-purge-tags"] == "product-1"
    assert bans[1].headers["x-purge-all"] == "1"


def test_a_key_restricted_to_some_zones_purges_only_those(client, runtime, node, account):
    zones = client.get("/api/account/zones", headers=bearer(account)).json()["data"]
    shop = next(zone["id"] for zone in zones if zone["hostname"] == "*.shop.example")
    created = client.post(
        "/api/account/apikeys",
        json={"name": "shop only", "zoneIds": [shop], "permissions": "purge"},
        headers=bearer(account),
    ).json()["data"]
    key = {"X-API-Key": created["key"]}
    allowed = client.post(
        "/api/account/purge", json={"urls": ["https://a.shop.example/"]}, headers=key
    )
    assert allowed.status_code == 202
    refused = client.post(
        "/api/account/purge", json={"urls": ["https://www.example.com/"]}, headers=key
    )
    assert refused.status_code == 403
    assert "www.example.com" in refused.json()["message"]


def test_a_key_restricted_to_some_zones_lists_and_reads_only_its_own_purges(client, node, account):
    """Purges made with the session, or with another key, may name other zones: a key
    limited to some zones lists and reads only the purges of the keys it may see."""
    zones = client.get("/api/account/zones", headers=bearer(account)).json()["data"]
    shop = next(zone["id"] for zone in zones if zone["hostname"] == "*.shop.example")

    def make(name: str, **settings: object) -> dict[str, str]:
        created = client.post(
            "/api/account/apikeys", json={"name": name, **settings}, headers=bearer(account)
        )
        assert created.status_code == 201, created.text
        return {"X-API-Key": created.json()["data"]["key"]}

    confined = make("shop only", zoneIds=[shop], permissions="purge")
    plain = make("everything")

    def purge(headers: dict[str, str], url: str) -> int:
        made = client.post("/api/account/purge", json={"urls": [url]}, headers=headers)
        assert made.status_code == 202, made.text
        return int(made.json()["data"]["id"])

    by_session = purge(bearer(account), "https://www.example.com/secret-launch")
    by_plain = purge(plain, "https://www.example.com/other")
    mine = purge(confined, "https://a.shop.example/")

    def listed(headers: dict[str, str]) -> list[int]:
        return [p["id"] for p in client.get("/api/account/purges", headers=headers).json()["data"]]

    assert listed(confined) == [mine]
    assert listed(plain) == listed(bearer(account)) == [mine, by_plain, by_session]
    assert client.get(f"/api/account/purges/{mine}", headers=confined).status_code == 200
    for other in (by_session, by_plain):
        refused = client.get(f"/api/account/purges/{other}", headers=confined)
        assert refused.status_code == 403, refused.text
        assert "limited to some zones" in refused.json()["message"]
        assert "www.example.com" not in refused.text
    assert client.get(f"/api/account/purges/{by_session}", headers=plain).status_code == 200


def test_without_cache_nodes_a_purge_says_that_nothing_was_sent(client, runtime, account):
    runtime.purges._nodes = []
    response = client.post("/api/account/purge", json={"tags": ["t"]}, headers=bearer(account))
    assert response.status_code == 202
    assert "No cache node is configured" in response.json()["message"]
    purge_id = response.json()["data"]["id"]
    detail = client.get(f"/api/account/purges/{purge_id}", headers=bearer(account)).json()
    assert detail["data"]["nodes"] == [] and "No cache node is configured" in detail["message"]


def test_a_purge_only_zone_restricted_key_reads_its_own_scope(client, runtime, account):
    """What a CMS plugin shows under "Test connection": the key's prefix, permission,
    the zones it may purge, and whether they cover the site's hostname."""
    zones = client.get("/api/account/zones", headers=bearer(account)).json()["data"]
    shop = next(zone["id"] for zone in zones if zone["hostname"] == "*.shop.example")
    created = client.post(
        "/api/account/apikeys",
        json={"name": "shop only", "zoneIds": [shop], "permissions": "purge"},
        headers=bearer(account),
    ).json()["data"]
    key = {"X-API-Key": created["key"]}

    covered = client.get("/api/account/purge/scope?hostname=A.Shop.Example:8080", headers=key)
    assert covered.status_code == 200, covered.text
    assert covered.json()["data"] == {
        "credential": "key",
        "keyPrefix": created["keyPrefix"],
        "permissions": "purge",
        "zoneRestricted": True,
        "addressRestricted": False,
        "zones": ["*.shop.example"],
        "hostname": "a.shop.example",
        "covered": True,
    }
    # A zone of the account that the key may not purge does not count.
    outside = client.get("/api/account/purge/scope?hostname=www.example.com", headers=key)
    assert outside.json()["data"]["covered"] is False
    # A session sees every active zone; without a hostname nothing is judged.
    session = client.get("/api/account/purge/scope", headers=bearer(account)).json()["data"]
    assert session["credential"] == "session" and session["keyPrefix"] is None
    assert session["zones"] == ["*.shop.example", "www.example.com"]
    assert session["hostname"] is None and session["covered"] is None


@pytest.mark.parametrize("hostname", ["", "http://", "a b.example", "%41.example"])
def test_a_scope_question_about_something_that_is_no_hostname_is_a_400(client, account, hostname):
    response = client.get(
        "/api/account/purge/scope", params={"hostname": hostname}, headers=bearer(account)
    )
    assert response.status_code == 400, response.text
    assert "hostname" in response.json()["errors"]


def test_the_scope_needs_a_working_credential(client, runtime, account):
    key = create_key(client, account)
    client.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(account))
    response = client.get("/api/account/purge/scope", headers={"X-API-Key": key["key"]})
    assert response.status_code == 401
