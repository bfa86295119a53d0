"""Tables (SQLAlchemy Core). API schemas live in ``paradarum.web.schemas``, apart,
so that a column such as ``key_hash`` can never leak into a response by accident.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from paradarum.db.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL; INTEGER on SQLite so that it is the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Bumped to end every session of the account (password change); JWTs carry it.
    Column("session_epoch", Integer, nullable=False, server_default=text("0")),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "account_id",
        Id,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(100), nullable=False),
    Column("key_prefix", String(8), nullable=False),
    # SHA-256 hex of the whole key. Unique: the hot path is one index lookup.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("last_used_address", String(64), nullable=True),
    Column("last_used_user_agent", String(512), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Index("ix_api_keys_account_created", "account_id", "created_at", "id"),
)

# Sessions ended early (sign-out), remembered until the token would expire anyway.
revoked_sessions = Table(
    "revoked_sessions",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column(
        "account_id",
        Id,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "account_id",
        Id,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("event", String(40), nullable=False),
    # "session" or "key" (or "anonymous" for a failed sign-in), plus an identifier
    # that is safe to show: a session's token id or a key's 8-character prefix.
    Column("actor_type", String(16), nullable=False),
    Column("actor_id", String(64), nullable=True),
    Column("key_id", Id, nullable=True),
    Column("key_prefix", String(8), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Index("ix_audit_events_account_occurred", "account_id", "occurred_at", "id"),
)

# Fixed-window counters for abuse limits shared by every instance on one database.
rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("bucket", String(255), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

purges = Table(
    "purges",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "account_id",
        Id,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),  # urls | tags | everything
    Column("targets", Text, nullable=False),  # JSON array
    Column("status", String(16), nullable=False),  # queued | running | done | failed
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    Index("ix_purges_account_created", "account_id", "created_at", "id"),
)

purge_deliveries = Table(
    "purge_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "purge_id",
        Id,
        ForeignKey("purges.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("node", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # queued | done | failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("is_final", Boolean, nullable=False, server_default=text("false")),
    Index("ix_purge_deliveries_due", "status", "next_attempt_at"),
)
