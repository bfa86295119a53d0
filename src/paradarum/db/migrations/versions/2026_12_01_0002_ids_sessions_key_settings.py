"""ids never reused, sessions bound to a random account value, key settings, usage

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 16:30:00

* SQLite: every table with a generated id is rebuilt ``AUTOINCREMENT``, so that a
  deleted row's id is never handed out again (PostgreSQL sequences never go back).
* ``accounts.session_key`` (random) replaces ``session_epoch``: session tokens carry
  it and it is compared on every request. Tokens issued before this migration
  carry none and are refused: people sign in again once.
* ``accounts.email_verified_at``: accounts that exist already count as verified
  (from their creation), so that turning verification on later locks nobody out.
* ``api_keys``: expiry, why it was revoked, permissions, address and zone
  restrictions, who created it, the key it replaced.
* ``audit_events.detail``; ``key_usage_daily``; ``purge_deliveries.label`` (how a
  customer sees a cache node); ``purge_deliveries.is_final`` (never read) is gone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REBUILT = ("accounts", "api_keys", "audit_events", "purges", "purge_deliveries")


def _random_hex(dialect: str) -> sa.TextClause:
    """A default evaluated per row, so that every existing account gets its own value."""
    if dialect == "sqlite":
        return sa.text("(lower(hex(randomblob(16))))")
    return sa.text("replace(gen_random_uuid()::text, '-', '')")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    sqlite = dialect == "sqlite"
    for table in REBUILT:
        with op.batch_alter_table(
            table,
            recreate="always" if sqlite else "auto",
            table_kwargs={"sqlite_autoincrement": True},
        ) as batch:
            if table == "accounts":
                batch.add_column(
                    sa.Column(
                        "session_key",
                        sa.String(32),
                        nullable=False,
                        server_default=_random_hex(dialect),
                    )
                )
                batch.add_column(
                    sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True)
                )
                batch.drop_column("session_epoch")
            elif table == "api_keys":
                for column in (
                    sa.Column("revoked_reason", sa.String(16), nullable=True),
                    sa.Column("revoked_detail", sa.String(2048), nullable=True),
                    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
                    sa.Column(
                        "permissions",
                        sa.String(16),
                        nullable=False,
                        server_default=sa.text("'full'"),
                    ),
                    sa.Column("allowed_cidrs", sa.Text(), nullable=True),
                    sa.Column("zone_ids", sa.Text(), nullable=True),
                    sa.Column(
                        "created_by_kind",
                        sa.String(16),
                        nullable=False,
                        server_default=sa.text("'session'"),
                    ),
                    sa.Column("created_by_key_id", ID, nullable=True),
                    sa.Column("created_by_key_prefix", sa.String(8), nullable=True),
                    sa.Column("replaces_id", ID, nullable=True),
                ):
                    batch.add_column(column)
                batch.create_index(
                    batch.f("ix_api_keys_created_by_key_id"), ["created_by_key_id"], unique=False
                )
            elif table == "audit_events":
                batch.add_column(sa.Column("detail", sa.String(2048), nullable=True))
            elif table == "purge_deliveries":
                batch.drop_column("is_final")
                batch.add_column(
                    sa.Column("label", sa.String(16), nullable=False, server_default="node")
                )
    op.execute("UPDATE accounts SET email_verified_at = created_at")
    if not sqlite:
        # The defaults filled the existing rows; new rows get theirs from the
        # services. (SQLite keeps them: changing a default means a rebuild.)
        op.alter_column("accounts", "session_key", server_default=None)
        op.alter_column("purge_deliveries", "label", server_default=None)
    op.create_table(
        "key_usage_daily",
        sa.Column("key_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("successes", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("refusals", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_usage_daily_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "day", name=op.f("pk_key_usage_daily")),
    )


def downgrade() -> None:
    op.drop_table("key_usage_daily")
    with op.batch_alter_table("purge_deliveries") as batch:
        batch.drop_column("label")
        batch.add_column(
            sa.Column("is_final", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("detail")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(batch.f("ix_api_keys_created_by_key_id"))
        for name in (
            "replaces_id",
            "created_by_key_prefix",
            "created_by_key_id",
            "created_by_kind",
            "zone_ids",
            "allowed_cidrs",
            "permissions",
            "expires_at",
            "revoked_detail",
            "revoked_reason",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("session_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.drop_column("email_verified_at")
        batch.drop_column("session_key")
