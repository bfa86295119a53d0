"""Pagination of the key list and the security log: every row exactly once, in order."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import insert, select

from paradarum.clock import utcnow
from paradarum.db.tables import api_keys
from tests.support import bearer, new_account, run

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def seed_keys(runtime, account_id: int, *, active: int, revoked: int) -> list[int]:
    """Insert keys straight into the table (one executemany), newest last.

    Timestamps repeat in threes, so that ordering must fall back to the id, and
    active keys are spread among the revoked ones.
    """
    base = utcnow() - timedelta(days=1)
    total = active + revoked
    active_positions = {round(i * total / active) for i in range(active)}
    rows = []
    for i in range(total):
        rows.append(
            {
                "account_id": account_id,
                "name": f"seed {i}",
                "key_prefix": "pdm_Seed",
                "key_hash": hashlib.sha256(f"{account_id}/{i}".encode()).hexdigest(),
                "created_at": base + timedelta(milliseconds=i // 3),
                "revoked_at": None if i in active_positions else base + timedelta(hours=1),
            }
        )
    with runtime.db.writing() as conn:
        conn.execute(insert(api_keys), rows)
        ids = conn.execute(
            select(api_keys.c.id)
            .where(api_keys.c.account_id == account_id)
            .order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
        ).scalars()
        return list(ids)


def account_id_of(runtime, email: str) -> int:
    return int(run(runtime.accounts.find(email)).id)


def walk(client, token: str, first_url: str) -> tuple[list[dict], list[str]]:
    """Follow Link: rel="next" from ``first_url``; return every entry and every URL."""
    entries: list[dict] = []
    urls = [first_url]
    url: str | None = first_url
    while url is not None:
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        page = response.json()["data"]
        assert isinstance(page, list)
        entries.extend(page)
        link = response.headers.get("link")
        if link is None:
            url = None
        else:
            match = LINK.match(link)
            assert match, link
            url = match.group("url")
            assert url.startswith("/api/"), url
            assert page, "a next link after an empty page"
            urls.append(url)
        assert len(urls) <= 1000, "pagination does not end"
    return entries, urls


@pytest.mark.parametrize("limit", [7, 100, 1000])
def test_ten_active_and_1500_revoked_keys_are_each_listed_once_in_order(client, runtime, limit):
    email = f"pages-{limit}@example.com"
    token = new_account(client, email)
    expected = seed_keys(runtime, account_id_of(runtime, email), active=10, revoked=1500)

    entries, urls = walk(client, token, f"/api/account/apikeys?limit={limit}")
    assert [entry["id"] for entry in entries] == expected
    assert len(urls) == -(-len(expected) // limit)  # no empty last page
    for url in urls[1:]:
        query = parse_qs(urlsplit(url).query)
        assert query["limit"] == [str(limit)]
        assert len(query["cursor"]) == 1

    active, _ = walk(client, token, f"/api/account/apikeys?limit={limit}&status=active")
    assert [e["id"] for e in active] == [e["id"] for e in entries if not e["isRevoked"]]
    assert len(active) == 10
    revoked, urls = walk(client, token, f"/api/account/apikeys?status=revoked&limit={limit}")
    assert [e["id"] for e in revoked] == [e["id"] for e in entries if e["isRevoked"]]
    assert len(revoked) == 1500
    for url in urls[1:]:
        assert parse_qs(urlsplit(url).query)["status"] == ["revoked"]


def test_default_page_is_100_and_last_page_has_no_link(client, runtime):
    token = new_account(client, "default-page@example.com")
    seed_keys(runtime, account_id_of(runtime, "default-page@example.com"), active=1, revoked=100)
    first = client.get("/api/account/apikeys", headers=bearer(token))
    assert len(first.json()["data"]) == 100
    assert "link" in first.headers
    second = client.get(LINK.match(first.headers["link"]).group("url"), headers=bearer(token))
    assert len(second.json()["data"]) == 1
    assert "link" not in second.headers
    exact = client.get("/api/account/apikeys?limit=101", headers=bearer(token))
    assert len(exact.json()["data"]) == 101 and "link" not in exact.headers


def test_a_cursor_never_shows_another_accounts_keys(client, runtime):
    token = new_account(client, "mine@example.com")
    other = new_account(client, "theirs@example.com")
    # Theirs are older than mine, so my cursor points past mine, into theirs.
    seed_keys(runtime, account_id_of(runtime, "theirs@example.com"), active=1, revoked=5)
    seed_keys(runtime, account_id_of(runtime, "mine@example.com"), active=1, revoked=5)
    first = client.get("/api/account/apikeys?limit=2", headers=bearer(token))
    next_url = LINK.match(first.headers["link"]).group("url")
    theirs, _ = walk(client, other, next_url)
    listed = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"]
    mine = {e["id"] for e in listed}
    assert theirs and not mine & {e["id"] for e in theirs}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "status=deleted",
        "cursor=not-a-cursor",
        "cursor=MjAyNi0xMS0yN1QwOToxNDowMy41MTIrMDA6MDB8MA",  # id 0
        "cursor=" + "A" * 201,
    ],
)
def test_bad_pagination_parameters_are_400(client, query):
    token = new_account(client)
    response = client.get(f"/api/account/apikeys?{query}", headers=bearer(token))
    assert response.status_code == 400, response.text
    assert response.json()["succeeded"] is False
