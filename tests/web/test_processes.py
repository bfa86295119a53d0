"""Rules that are about processes, against real ``paradarum serve --workers 2`` on
the SQLite default: concurrency, crash safety, what lands on disk and in logs."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from paradarum import keys
from paradarum.tokens import INVITATION
from tests.support import PASSWORD, ServerProcess, bearer, runtime_for, start_server

pytestmark = pytest.mark.slow


def _env(data_dir: Path) -> dict[str, str]:
    return {"PARADARUM_DATA_DIR": str(data_dir)}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server(_env(data_dir), workers=2, log_path=tmp_path / "server.log")
    yield proc
    proc.stop()


def _account(base_url: str, email: str = "ada@example.com") -> str:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        assert (
            c.post("/api/auth/signup", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )
        r = c.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        return str(r.json()["data"]["token"])


def _simultaneously(count: int, action) -> list[httpx.Response]:
    """Run ``action(i)`` in ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(i: int) -> httpx.Response:
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _fresh_get(url: str, headers: dict[str, str]) -> httpx.Response:
    # A new connection every time, so requests spread over both workers.
    with httpx.Client(timeout=30) as c:
        return c.get(url, headers=headers)


def test_thirty_simultaneous_creates_give_exactly_ten_201s(server):
    token = _account(server.base_url)

    def create(i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as c:
            return c.post(
                f"{server.base_url}/api/account/apikeys",
                json={"name": f"k{i}"},
                headers=bearer(token),
            )

    statuses = Counter(r.status_code for r in _simultaneously(30, create))
    assert statuses == {201: 10, 400: 20}
    listed = httpx.get(f"{server.base_url}/api/account/apikeys", headers=bearer(token)).json()
    assert len(listed["data"]) == 10


def test_ten_simultaneous_revokes_give_exactly_one_200(server):
    token = _account(server.base_url)
    key = httpx.post(
        f"{server.base_url}/api/account/apikeys", json={"name": "k"}, headers=bearer(token)
    ).json()["data"]

    def revoke(_i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as c:
            return c.delete(
                f"{server.base_url}/api/account/apikeys/{key['id']}", headers=bearer(token)
            )

    statuses = Counter(r.status_code for r in _simultaneously(10, revoke))
    assert statuses == {200: 1, 400: 9}


def test_forty_clients_hammering_one_key_all_succeed_and_revoke_is_immediate(server):
    token = _account(server.base_url)
    key = httpx.post(
        f"{server.base_url}/api/account/apikeys", json={"name": "hot"}, headers=bearer(token)
    ).json()["data"]

    def hammer(_i: int) -> list[int]:
        with httpx.Client(base_url=server.base_url, timeout=60) as c:
            return [
                c.get("/api/account", headers={"X-API-Key": key["key"]}).status_code
                for _ in range(10)
            ]

    results = [status for batch in _simultaneously(40, hammer) for status in batch]
    assert Counter(results) == {200: 400}
    listed = httpx.get(f"{server.base_url}/api/account/apikeys", headers=bearer(token)).json()
    assert listed["data"][0]["lastUsedAt"] is not None

    revoked = httpx.delete(
        f"{server.base_url}/api/account/apikeys/{key['id']}", headers=bearer(token)
    )
    assert revoked.status_code == 200
    # The very next request — and every one after it, whichever worker takes it.
    for _ in range(20):
        assert _fresh_get(f"{server.base_url}/api/account", bearer(key["key"])).status_code == 401


def test_data_directory_holds_key_hashes_never_raw_keys(server, data_dir):
    token = _account(server.base_url)
    created = [
        httpx.post(
            f"{server.base_url}/api/account/apikeys", json={"name": f"k{i}"}, headers=bearer(token)
        ).json()["data"]
        for i in range(5)
    ]
    for key in created:  # use them, so last-used writes hit the disk too
        assert _fresh_get(f"{server.base_url}/api/account", bearer(key["key"])).status_code == 200
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files), "expected a WAL file"
    blob = b"".join(p.read_bytes() for p in files)
    for key in created:
        assert keys.hash_key(key["key"]).encode() in blob
        assert key["key"].encode() not in blob
        assert key["key"][8:].encode() not in blob
    assert PASSWORD.encode() not in blob
    assert token.encode() not in blob


def test_kill_minus_nine_loses_no_acknowledged_write(data_dir, tmp_path):
    first = start_server(_env(data_dir), workers=2, log_path=tmp_path / "first.log")
    try:
        token = _account(first.base_url)
        created = [
            httpx.post(
                f"{first.base_url}/api/account/apikeys",
                json={"name": f"k{i}"},
                headers=bearer(token),
            ).json()["data"]
            for i in range(6)
        ]
        revoked = created[2]
        r = httpx.delete(
            f"{first.base_url}/api/account/apikeys/{revoked['id']}", headers=bearer(token)
        )
        assert r.status_code == 200
    finally:
        first.kill()  # SIGKILL to the whole process group, right after the acknowledgements
    second = start_server(_env(data_dir), workers=1, log_path=tmp_path / "second.log")
    try:
        listed = httpx.get(f"{second.base_url}/api/account/apikeys", headers=bearer(token))
        assert listed.status_code == 200  # same JWT secret from the data dir
        by_id = {k["id"]: k for k in listed.json()["data"]}
        assert set(by_id) == {k["id"] for k in created}
        assert by_id[revoked["id"]]["isRevoked"] is True
        assert (
            _fresh_get(f"{second.base_url}/api/account", bearer(revoked["key"])).status_code == 401
        )
        assert (
            _fresh_get(f"{second.base_url}/api/account", bearer(created[0]["key"])).status_code
            == 200
        )
    finally:
        second.stop()
    with sqlite3.connect(data_dir / "paradarum.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_server_output_never_contains_keys_passwords_or_tokens(server):
    base = server.base_url
    with httpx.Client(base_url=base, timeout=30) as c:
        c.post("/api/auth/signup", json={"email": "log@example.com", "password": PASSWORD})
        c.post("/api/auth/login", json={"email": "log@example.com", "password": "wrong password"})
        token = c.post(
            "/api/auth/login", json={"email": "log@example.com", "password": PASSWORD}
        ).json()["data"]["token"]
        key = c.post("/api/account/apikeys", json={"name": "k"}, headers=bearer(token)).json()[
            "data"
        ]
        c.get("/api/account", headers={"X-API-Key": key["key"]})
        c.get(f"/api/account?api_key={key['key']}")
        c.get("/api/account", headers=bearer(key["key"][:-1] + "x"))
        c.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(key["key"]))
        c.get("/api/account", headers=bearer(key["key"]))
        c.post("/api/auth/logout", headers=bearer(token))
    output = server.output()
    assert '"path":"/api/account"' in output  # the access log did record the requests
    for secret in (
        key["key"],
        key["key"][8:],
        PASSWORD,
        "wrong password",
        token,
        token.split(".")[2],
        keys.hash_key(key["key"]),
    ):
        assert secret not in output


def test_a_removed_member_s_session_is_refused_on_the_very_next_request_on_every_worker(
    server, data_dir
):
    base = server.base_url
    owner = _account(base)
    email = "grace@example.com"
    invited = httpx.post(
        f"{base}/api/account/invitations",
        json={"email": email, "role": "developer"},
        headers=bearer(owner),
    ).json()["data"]
    # The emailed link's token, as the outbox makes it (no mail server here).
    with runtime_for(_env(data_dir)) as runtime:
        token = runtime.tokens.issue_email_token(
            subject=invited["id"],
            email=email,
            now=runtime.clock(),
            lifetime=timedelta(days=1),
            purpose=INVITATION,
        )
    own = _account(base, email)
    joined = httpx.post(
        f"{base}/api/invitations/accept", json={"token": token}, headers=bearer(own)
    ).json()["data"]
    session = httpx.post(
        f"{base}/api/auth/switch", json={"accountId": joined["id"]}, headers=bearer(own)
    ).json()["data"]["token"]
    # Both workers have read (and keep) the member's session row.
    for _ in range(10):
        assert _fresh_get(f"{base}/api/account", bearer(session)).status_code == 200
    members = httpx.get(f"{base}/api/account/members", headers=bearer(owner)).json()["data"]
    member_id = next(member["id"] for member in members if member["email"] == email)
    removed = httpx.request(
        "DELETE",
        f"{base}/api/account/members/{member_id}",
        json={"keys": "revoke"},
        headers=bearer(owner),
    )
    assert removed.status_code == 200
    for _ in range(20):
        assert _fresh_get(f"{base}/api/account", bearer(session)).status_code == 401
    assert _fresh_get(f"{base}/api/account", bearer(own)).status_code == 200
