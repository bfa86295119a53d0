"""Apply Alembic migrations, safely when several instances start at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from paradarum.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary, fixed 64-bit number: every Paradarum instance agrees on it.
ADVISORY_LOCK_ID = 0x5044_4D5F_4D49_4752 & 0x7FFF_FFFF_FFFF_FFFF


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema to ``revision``; returns the revisions before and after (before
    is None for a new, empty database).

    PostgreSQL: under a session-level advisory lock, so that of N instances
    starting together one migrates and the others wait, then find nothing to do.
    SQLite: Alembic's DDL runs inside ``BEGIN IMMEDIATE``, which serialises too.
    """
    with _migrating(db) as config:
        conn = config.attributes["connection"]
        before = current_revision(conn)
        command.upgrade(config, revision)
        return before, current_revision(conn)


def downgrade(db: Database, revision: str) -> None:
    with _migrating(db) as config:
        command.downgrade(config, revision)


@contextmanager
def _migrating(db: Database) -> Iterator[Config]:
    config = alembic_config(db.url)
    with db.engine.connect() as conn:
        sqlite = db.dialect == "sqlite"
        if sqlite:
            # Rebuilding a table (SQLite cannot alter most things in place) drops
            # the old one, and a DROP with foreign keys enforced deletes every row
            # that refers to it (ON DELETE CASCADE). The pragma only takes effect
            # outside a transaction, so it is set before Alembic begins one, and
            # the references are checked before the migration commits.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        if db.dialect == "postgresql":
            # Waiting for another instance's migration, or a long migration, is
            # not a stuck statement: no statement timeout on this connection.
            conn.execute(text("SET statement_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            conn.commit()
        try:
            conn = conn.execution_options(paradarum_write=True)
            config.attributes["connection"] = conn
            yield config
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left {len(broken)} broken references")
            conn.commit()
        finally:
            if sqlite:
                conn.rollback()
                conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
            if db.dialect == "postgresql":
                conn.rollback()  # a failed migration leaves its transaction aborted
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                conn.execute(text("RESET statement_timeout"))
                conn.commit()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
