"""trust policies: CI jobs trade an OpenID Connect ID token for a short-lived key

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "trust_policies",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("audience", sa.String(512), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("pin_claim", sa.String(64), nullable=False),
        sa.Column("pin_value", sa.String(512), nullable=False),
        sa.Column("permissions", sa.String(16), nullable=False),
        sa.Column("zone_ids", sa.Text(), nullable=True),
        sa.Column("ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("member_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_trust_policies_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_policies")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_trust_policies_account_created", "trust_policies", ["account_id", "created_at", "id"]
    )
    op.create_index("ix_trust_policies_issuer_pin", "trust_policies", ["issuer", "pin_value"])
    op.create_table(
        "oidc_token_uses",
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_oidc_token_uses")),
    )
    op.create_index(
        op.f("ix_oidc_token_uses_expires_at"), "oidc_token_uses", ["expires_at"], unique=False
    )
    # Nullable columns: added in place on both databases (no rebuild of the key table).
    op.add_column("api_keys", sa.Column("trust_policy_id", ID, nullable=True))
    op.add_column("api_keys", sa.Column("created_by_subject", sa.String(255), nullable=True))
    op.create_index(
        op.f("ix_api_keys_trust_policy_id"), "api_keys", ["trust_policy_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_trust_policy_id"), table_name="api_keys")
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("created_by_subject")
        batch.drop_column("trust_policy_id")
    op.drop_index(op.f("ix_oidc_token_uses_expires_at"), table_name="oidc_token_uses")
    op.drop_table("oidc_token_uses")
    op.drop_index("ix_trust_policies_issuer_pin", table_name="trust_policies")
    op.drop_index("ix_trust_policies_account_created", table_name="trust_policies")
    op.drop_table("trust_policies")
