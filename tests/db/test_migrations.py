"""The Alembic migrations build exactly the schema the code expects, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from starlette.testclient import TestClient

from paradarum import keys
from paradarum.config import load_or_create_secret
from paradarum.db.migrate import alembic_config, current_revision, head_revision, upgrade
from paradarum.db.tables import metadata, persons
from paradarum.passwords import Passwords
from paradarum.runtime import build_runtime, open_database
from paradarum.web.app import create_app
from tests.support import bearer, login, signup


def test_migrations_match_the_tables_and_run_twice_harmlessly(settings):
    db = open_database(settings)
    try:
        upgrade(db)
        upgrade(db)  # a second instance starting finds nothing to do
        with db.engine.connect() as conn:
            assert current_revision(conn) == head_revision(db)
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            assert compare_metadata(context, metadata) == []
            names = set(inspect(conn).get_table_names())
        assert {"accounts", "api_keys", "audit_events", "revoked_sessions"} <= names
    finally:
        db.close()


def test_migrations_downgrade_to_nothing_and_back(settings):
    db = open_database(settings)
    try:
        upgrade(db)
        config = alembic_config(db.url)
        with db.engine.connect() as conn:
            config.attributes["connection"] = conn.execution_options(paradarum_write=True)
            command.downgrade(config, "base")
            conn.commit()
        with db.engine.connect() as conn:
            assert "api_keys" not in inspect(conn).get_table_names()
        upgrade(db)
        with db.engine.connect() as conn:
            assert "api_keys" in inspect(conn).get_table_names()
    finally:
        db.close()


def test_key_hash_is_unique_in_the_schema(settings):
    db = open_database(settings)
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            inspector = inspect(conn)
            uniques = inspector.get_unique_constraints("api_keys")
            indexes = inspector.get_indexes("api_keys")
        unique_columns = [u["column_names"] for u in uniques] + [
            i["column_names"] for i in indexes if i.get("unique")
        ]
        assert ["key_hash"] in unique_columns
    finally:
        db.close()


def test_accounts_from_before_email_verification_count_as_verified(settings):
    """Turning verification on later must not lock existing accounts out."""
    db = open_database(settings)
    try:
        config = alembic_config(db.url)
        with db.engine.connect() as conn:
            config.attributes["connection"] = conn.execution_options(paradarum_write=True)
            command.upgrade(config, "0001")
            conn.execute(
                text(
                    "INSERT INTO accounts (email, password_hash, created_at) "
                    "VALUES ('old@example.com', 'x', :at)"
                ),
                {"at": datetime(2026, 11, 1, 9, 30, tzinfo=UTC)},
            )
            conn.commit()
        upgrade(db)
        with db.engine.connect() as conn:
            created, verified = conn.execute(
                select(persons.c.created_at, persons.c.email_verified_at)
            ).one()
        assert verified is not None and verified == created
    finally:
        db.close()


def test_accounts_keys_and_sessions_from_before_teams_keep_working(settings):
    """Upgrading from 0004 with data: each account gets its person as owner, and its
    keys and its sessions (tokens without an account claim) work unchanged."""
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    raw = keys.generate()
    db = open_database(settings)
    try:
        config = alembic_config(db.url)
        with db.engine.connect() as conn:
            config.attributes["connection"] = conn.execution_options(paradarum_write=True)
            command.upgrade(config, "0004")
            conn.execute(
                text(
                    "INSERT INTO accounts (email, password_hash, created_at, session_key, "
                    "email_verified_at) VALUES ('old@example.com', 'x', :at, :sk, :at)"
                ),
                {"at": now, "sk": "a" * 32},
            )
            account_id = conn.execute(text("SELECT id FROM accounts")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO api_keys (account_id, name, key_prefix, key_hash, created_at, "
                    "created_by_kind) VALUES (:a, 'old key', :p, :h, :at, 'session')"
                ),
                {
                    "a": account_id,
                    "p": keys.display_prefix(raw),
                    "h": keys.hash_key(raw),
                    "at": now,
                },
            )
            conn.commit()
        upgrade(db)
    finally:
        db.close()
    secret = load_or_create_secret(settings)
    issued = datetime.now(UTC)
    old_session = jwt.encode(
        {
            "sub": str(account_id),
            "jti": "before-teams",
            "iat": int(issued.timestamp()),
            "exp": int(issued.timestamp()) + 3600,
            "iss": "paradarum",
            "sk": "a" * 32,
        },
        secret,
        algorithm="HS256",
    )
    runtime = build_runtime(settings, passwords=Passwords(concurrency=2, memory_kib=1024))
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            for credential in (old_session, raw):
                answer = client.get("/api/account", headers=bearer(credential))
                assert answer.status_code == 200, answer.text
                data = answer.json()["data"]
                assert (data["id"], data["email"], data["role"]) == (
                    account_id,
                    "old@example.com",
                    "owner",
                )
            listed = client.get("/api/account/apikeys", headers=bearer(old_session)).json()["data"]
            assert listed[0]["createdBy"]["kind"] == "member"
            assert listed[0]["createdBy"]["email"] == "old@example.com"
            # New people and accounts get ids past the copied ones.
            signup(client, "new@example.com")
            token = login(client, "new@example.com")
            assert client.get("/api/account", headers=bearer(token)).json()["data"]["id"] != (
                account_id
            )
            made = client.post(
                "/api/account/apikeys", json={"name": "after"}, headers=bearer(old_session)
            )
            assert made.status_code == 201
    finally:
        runtime.close()
