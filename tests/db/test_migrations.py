"""The Alembic migrations build exactly the schema the code expects, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from paradarum.db.migrate import alembic_config, current_revision, head_revision, upgrade
from paradarum.db.tables import accounts, metadata
from paradarum.runtime import open_database


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
                select(accounts.c.created_at, accounts.c.email_verified_at)
            ).one()
        assert verified is not None and verified == created
    finally:
        db.close()
