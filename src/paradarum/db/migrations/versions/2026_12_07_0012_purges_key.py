"""purges remember the key they were made with

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 15:00:00

``purges.key_id``: the key a purge was made with (None: a panel session, or a purge
from before this column), so that a key confined to some zones lists only the purges
made with the keys it may see, as its security log does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("purges") as batch:
        batch.add_column(sa.Column("key_id", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("purges") as batch:
        batch.drop_column("key_id")
