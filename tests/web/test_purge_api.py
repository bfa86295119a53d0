"""HTTP behaviour of the purge endpoints, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.cache import RecordingNode, recording_node
from tests.support import bearer, create_key, new_account

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def node() -> Iterator[RecordingNode]:
    with recording_node() as recording:
        yield recording


@pytest.fixture
def settings_overrides(node: RecordingNode) -> dict[str, object]:
    return {"cache_nodes": [node.base_url], "purges_per_account": 4}


def test_a_purge_with_an_api_key_is_accepted_with_202(client, node):
    token = new_account(client)
    key = create_key(client, token)["key"]
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
        ({"urls": ["http://x.example/a", "http://x.example/a"]}, "urls", ["http://x.example/a"]),
        ({"tags": ["t"], "urls": None}, "tags", ["t"]),
    ],
)
def test_each_kind_of_purge_is_accepted_with_a_session_too(client, body, kind, targets):
    token = new_account(client)
    response = client.post("/api/account/purge", json=body, headers=bearer(token))
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
def test_a_bad_purge_request_is_a_400_naming_the_problem(client, body, field):
    token = new_account(client)
    response = client.post("/api/account/purge", json=body, headers=bearer(token))
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["succeeded"] is False and payload["data"] is None
    assert field in payload["errors"], payload


def test_purge_needs_credentials(client):
    response = client.post("/api/account/purge", json={"everything": True})
    assert response.status_code == 401
    assert client.get("/api/account/purges").status_code == 401


def test_purges_are_rate_limited_per_account_with_retry_after(client):
    token, other = new_account(client), new_account(client)
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


def test_purges_are_listed_newest_first_with_a_link_to_the_next_page(client):
    token = new_account(client)
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
    assert entry["nodes"] is None  # the detail has them
    bad = client.get("/api/account/purges?cursor=nonsense", headers=bearer(token))
    assert bad.status_code == 400


def test_one_purge_shows_each_nodes_result_and_other_accounts_get_404(client, node):
    token, other = new_account(client), new_account(client)
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
