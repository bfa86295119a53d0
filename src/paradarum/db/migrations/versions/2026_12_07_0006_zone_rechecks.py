"""zones that follow their domain: re-checks, suspension; security-log entries about a zone

Revision ID: 0006
Revises: 0009
Create Date: 2026-12-07 03:00:00

``zones.checked_at`` / ``zones.missed_checks``: when the TXT record of an active zone
was last looked for, and how many checks in a row found it missing (three suspend the
zone). A suspended zone still holds its hostname, so the unique index on a held
hostname covers ``active`` and ``suspended``. ``audit_events.zone_id``: the zone an
entry is about, so that a key confined to some zones reads only their entries.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("status = 'active'")
HELD = sa.text("status IN ('active', 'suspended')")


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("missed_checks", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.drop_index("uq_zones_active_hostname", table_name="zones")
    op.create_index(
        "uq_zones_active_hostname",
        "zones",
        ["hostname"],
        unique=True,
        sqlite_where=HELD,
        postgresql_where=HELD,
    )
    op.create_index("ix_zones_status_checked", "zones", ["status", "checked_at"])
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("zone_id", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("zone_id")
    op.drop_index("ix_zones_status_checked", table_name="zones")
    op.drop_index("uq_zones_active_hostname", table_name="zones")
    op.execute("UPDATE zones SET status = 'active' WHERE status = 'suspended'")
    op.create_index(
        "uq_zones_active_hostname",
        "zones",
        ["hostname"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("missed_checks")
        batch.drop_column("checked_at")
