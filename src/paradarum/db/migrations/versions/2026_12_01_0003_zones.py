"""zones, and purges confined to them

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:00:00

``zones``: the hostnames an account has proven (by DNS) that it controls; a
hostname is active in one account at most (a partial unique index). ``purges.hosts``:
the zones a tag or "everything" purge is confined to at the cache.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "zones",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("hostname", sa.String(253), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_zones_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zones")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_zones_account_created", "zones", ["account_id", "created_at", "id"])
    op.create_index("uq_zones_account_hostname", "zones", ["account_id", "hostname"], unique=True)
    op.create_index(
        "uq_zones_active_hostname",
        "zones",
        ["hostname"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    with op.batch_alter_table("purges") as batch:
        batch.add_column(sa.Column("hosts", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("purges") as batch:
        batch.drop_column("hosts")
    op.drop_index("uq_zones_active_hostname", table_name="zones")
    op.drop_index("uq_zones_account_hostname", table_name="zones")
    op.drop_index("ix_zones_account_created", table_name="zones")
    op.drop_table("zones")
