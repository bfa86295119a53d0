"""teams: persons, memberships with roles, invitations

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-07 03:00:00

* ``persons`` takes the sign-in half of ``accounts`` (email, password hash, session
  key, verification). Every existing account gets one person **with the same id**
  and the same session key, as its ``owner``: session tokens issued before this
  migration name the account by ``sub`` and carry that session key, so they keep
  working unchanged (``tokens.py`` reads a token without an account claim as the
  person's account of the same id).
* ``accounts`` keeps its id and creation time and gains a ``name`` (the email).
* ``api_keys``: who vouches for the key (``member_id``) and the member who created
  it; existing keys are vouched for by the owner, so they keep working unchanged.
  Keys made by a session are now made by a member (``created_by_kind = member``).
* ``audit_events.actor_name``: who did it, as the owner reads it.
* ``notifications.recipient``: an invitation goes to someone who is not a member.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def _same_ids(table: str) -> None:
    """PostgreSQL: rows were inserted with explicit ids; move the sequence past them.
    (SQLite's AUTOINCREMENT counter follows explicit ids by itself.)"""
    if op.get_bind().dialect.name == "postgresql":
        sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"  # noqa: E501, S608 - a fixed table name
        op.execute(sql)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    rebuild = {
        "recreate": "always" if sqlite else "auto",
        "table_kwargs": {"sqlite_autoincrement": True},
    }
    op.create_table(
        "persons",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("session_key", sa.String(32), nullable=False),
        sa.Column("email_verified_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
        sa.UniqueConstraint("email", name=op.f("uq_persons_email")),
        sqlite_autoincrement=True,
    )
    op.execute(
        "INSERT INTO persons (id, email, password_hash, created_at, session_key, "
        "email_verified_at) SELECT id, email, password_hash, created_at, session_key, "
        "email_verified_at FROM accounts"
    )
    _same_ids("persons")
    op.create_table(
        "memberships",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_memberships_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_memberships_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_memberships_account_person", "memberships", ["account_id", "person_id"], unique=True
    )
    op.create_index("ix_memberships_person", "memberships", ["person_id"])
    op.execute(
        "INSERT INTO memberships (id, account_id, person_id, role, created_at) "
        "SELECT id, id, id, 'owner', created_at FROM accounts"
    )
    _same_ids("memberships")
    op.create_table(
        "invitations",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("invited_by_member_id", ID, nullable=True),
        sa.Column("invited_by_email", sa.String(320), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("accepted_at", TIME, nullable=True),
        sa.Column("withdrawn_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_invitations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_invitations_account_created", "invitations", ["account_id", "created_at", "id"]
    )

    with op.batch_alter_table("accounts", **rebuild) as batch:  # type: ignore[arg-type]
        batch.add_column(sa.Column("name", sa.String(200), nullable=False, server_default=""))
    op.execute(
        "UPDATE accounts SET name = (SELECT p.email FROM persons p WHERE p.id = accounts.id)"
    )
    with op.batch_alter_table("accounts", **rebuild) as batch:  # type: ignore[arg-type]
        batch.drop_constraint(op.f("uq_accounts_email"), type_="unique")
        for name in ("email", "password_hash", "session_key", "email_verified_at"):
            batch.drop_column(name)
        if not sqlite:
            batch.alter_column("name", server_default=None)

    with op.batch_alter_table("api_keys", **rebuild) as batch:  # type: ignore[arg-type]
        batch.add_column(sa.Column("created_by_member_id", ID, nullable=True))
        batch.add_column(sa.Column("created_by_email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("member_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_keys_member_id_memberships"),
            "memberships",
            ["member_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(batch.f("ix_api_keys_member_id"), ["member_id"], unique=False)
        batch.alter_column(
            "created_by_kind", server_default=sa.text("'member'"), existing_type=sa.String(16)
        )
    # The account's person is its owner, and its membership has the account's id.
    op.execute("UPDATE api_keys SET member_id = account_id")
    op.execute(
        "UPDATE api_keys SET created_by_kind = 'member', created_by_member_id = account_id, "
        "created_by_email = (SELECT p.email FROM persons p WHERE p.id = api_keys.account_id) "
        "WHERE created_by_kind = 'session'"
    )

    with op.batch_alter_table("audit_events", **rebuild) as batch:  # type: ignore[arg-type]
        batch.add_column(sa.Column("actor_name", sa.String(320), nullable=True))
    op.execute("UPDATE audit_events SET actor_name = actor_id WHERE actor_type = 'key'")
    op.execute("UPDATE audit_events SET actor_name = 'system' WHERE actor_type = 'system'")
    op.execute(
        "UPDATE audit_events SET actor_name = "
        "(SELECT p.email FROM persons p WHERE p.id = audit_events.account_id) "
        "WHERE actor_type = 'session'"
    )

    with op.batch_alter_table("notifications", **rebuild) as batch:  # type: ignore[arg-type]
        batch.add_column(sa.Column("recipient", sa.String(320), nullable=True))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    rebuild = {
        "recreate": "always" if sqlite else "auto",
        "table_kwargs": {"sqlite_autoincrement": True},
    }
    with op.batch_alter_table("notifications", **rebuild) as batch:  # type: ignore[arg-type]
        batch.drop_column("recipient")
    with op.batch_alter_table("audit_events", **rebuild) as batch:  # type: ignore[arg-type]
        batch.drop_column("actor_name")
    op.execute("UPDATE api_keys SET created_by_kind = 'session' WHERE created_by_kind = 'member'")
    with op.batch_alter_table("api_keys", **rebuild) as batch:  # type: ignore[arg-type]
        batch.drop_index(batch.f("ix_api_keys_member_id"))
        batch.drop_constraint(op.f("fk_api_keys_member_id_memberships"), type_="foreignkey")
        for name in ("member_id", "created_by_email", "created_by_member_id"):
            batch.drop_column(name)
        batch.alter_column(
            "created_by_kind", server_default=sa.text("'session'"), existing_type=sa.String(16)
        )
    with op.batch_alter_table("accounts", **rebuild) as batch:  # type: ignore[arg-type]
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        batch.add_column(sa.Column("session_key", sa.String(32), nullable=True))
        batch.add_column(sa.Column("email_verified_at", TIME, nullable=True))
    # Each account gets back the sign-in of its first owner.
    owner = (
        "(SELECT p.{column} FROM memberships m JOIN persons p ON p.id = m.person_id "
        "WHERE m.account_id = accounts.id AND m.role = 'owner' ORDER BY m.id LIMIT 1)"
    )
    for column in ("email", "password_hash", "session_key", "email_verified_at"):
        op.execute(f"UPDATE accounts SET {column} = {owner.format(column=column)}")  # noqa: S608
    op.execute("DELETE FROM accounts WHERE email IS NULL")
    with op.batch_alter_table("accounts", **rebuild) as batch:  # type: ignore[arg-type]
        batch.alter_column("email", nullable=False, existing_type=sa.String(320))
        batch.alter_column("password_hash", nullable=False, existing_type=sa.String(255))
        batch.alter_column("session_key", nullable=False, existing_type=sa.String(32))
        batch.create_unique_constraint(op.f("uq_accounts_email"), ["email"])
        batch.drop_column("name")
    op.drop_index("ix_invitations_account_created", table_name="invitations")
    op.drop_table("invitations")
    op.drop_index("ix_memberships_person", table_name="memberships")
    op.drop_index("uq_memberships_account_person", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("persons")
