"""What the database holds: a dump of every table has each key's SHA-256 and never
the raw key (nor a password or a session token), on both backends."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess

from tests.support import PASSWORD, bearer, create_key, login, signup


def _dump(runtime) -> str:
    if runtime.db.dialect == "sqlite":
        with sqlite3.connect(runtime.db.sqlite_path) as conn:
            return "\n".join(conn.iterdump())
    return subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", runtime.settings.database_url],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def test_a_dump_of_every_table_has_key_hashes_and_no_raw_secret(client, runtime):
    signup(client, "dump@example.com")
    token = login(client, "dump@example.com")
    raw_keys = [create_key(client, token, name=f"key {i}")["key"] for i in range(3)]
    # Used (lastUsedAt, first-use audit row) and revoked keys are stored the same way.
    assert client.get("/api/account", headers=bearer(raw_keys[0])).status_code == 200
    revoked_id = client.get("/api/account/apikeys", headers=bearer(token)).json()["data"][0]["id"]
    assert (
        client.delete(f"/api/account/apikeys/{revoked_id}", headers=bearer(token)).status_code
        == 200
    )

    dump = _dump(runtime)
    assert "dump@example.com" in dump  # the dump really holds the data
    for raw in raw_keys:
        assert hashlib.sha256(raw.encode()).hexdigest() in dump
        assert raw not in dump
        assert raw[4:] not in dump  # not even without its pdm_ prefix
        assert raw[:8] in dump  # the display prefix is stored, on purpose
    assert PASSWORD not in dump
    assert token not in dump
    for part in token.split("."):
        assert part not in dump
