"""The PostgreSQL database every test gets: an ordinary role owns it, and both go."""

from __future__ import annotations

import psycopg

from tests.conftest import _require_postgres
from tests.support import PG_ADMIN_URL, temporary_postgres_database


def test_a_test_database_is_owned_by_an_ordinary_role_and_dropped_with_it():
    _require_postgres()
    with temporary_postgres_database() as url, psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT current_user, pg_get_userbyid(d.datdba), r.rolsuper, r.rolcreatedb,"
            " r.rolcreaterole FROM pg_database d, pg_roles r"
            " WHERE d.datname = current_database() AND r.rolname = current_user"
        ).fetchone()
        assert row is not None
        role, owner, superuser, createdb, createrole = row
        assert (owner, superuser, createdb, createrole) == (role, False, False, False)
        # What the migrations need, the owner has: tables of its own in its database.
        conn.execute("CREATE TABLE probe (id integer)")
    with psycopg.connect(PG_ADMIN_URL) as admin:
        assert admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchall() == []
        assert (
            admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (role,)).fetchall() == []
        )
