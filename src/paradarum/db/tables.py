"""Tables (SQLAlchemy Core). API shapes live in ``paradarum_client.models``, apart,
so that a column such as ``key_hash`` can never leak into a response by accident.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
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
# Every table with a generated id is AUTOINCREMENT on SQLite (sqlite_autoincrement):
# without it SQLite hands the highest id out again after that row is deleted, and
# an id that comes back could meet something that still refers to the old row (a
# session token, a log line). PostgreSQL sequences never go back.

# An account: what keys, zones and purges belong to. People reach it through
# memberships, each with a role (services/roles.py).
accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Every member must have a second factor: those without one may only enrol.
    Column("require_two_factor", Boolean, nullable=False, server_default=text("false")),
    sqlite_autoincrement=True,
)

# A person who signs in: one email, one password, any number of accounts.
persons = Table(
    "persons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Random, carried by every session token of the person and compared on each
    # request: a new value (password change) ends every session at once, and a
    # token of a deleted person can never match a later person's value.
    Column("session_key", String(32), nullable=False),
    Column("email_verified_at", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,
)

# Who belongs to which account, as what. Removing a member deletes the row: their
# sessions find no membership on the very next request.
memberships = Table(
    "memberships",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),  # services.roles.Role
    Column("created_at", UTCDateTime(), nullable=False),
    Index("uq_memberships_account_person", "account_id", "person_id", unique=True),
    Index("ix_memberships_person", "person_id"),
    sqlite_autoincrement=True,
)

# Invitations to join an account. The link's token is signed, not stored: this row
# is what makes it single use (accepted_at) and revocable (withdrawn_at).
invitations = Table(
    "invitations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", String(16), nullable=False),
    Column("invited_by_member_id", Id, nullable=True),
    Column("invited_by_email", String(320), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Column("withdrawn_at", UTCDateTime(), nullable=True),
    Index("ix_invitations_account_created", "account_id", "created_at", "id"),
    sqlite_autoincrement=True,
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
    # user | leaked | rolled | member, and for leaked where the key was found.
    Column("revoked_reason", String(16), nullable=True),
    Column("revoked_detail", String(2048), nullable=True),
    # None = never. A key past it is refused like a revoked one and frees its slot.
    Column("expires_at", UTCDateTime(), nullable=True),
    # full | purge
    Column("permissions", String(16), nullable=False, server_default=text("'full'")),
    # JSON arrays, None when unrestricted.
    Column("allowed_cidrs", Text, nullable=True),
    Column("zone_ids", Text, nullable=True),
    # Who created it: a member's session or another key (kept by prefix too, so that
    # the record outlives the creating key's row); the member and their email are
    # kept as they were, so that the record outlives the membership.
    Column("created_by_kind", String(16), nullable=False, server_default=text("'member'")),
    Column("created_by_key_id", Id, nullable=True, index=True),
    Column("created_by_key_prefix", String(8), nullable=True),
    Column("created_by_member_id", Id, nullable=True),
    Column("created_by_email", String(320), nullable=True),
    # The member who vouches for the key now: its creator, or whoever kept it when
    # the creator was removed. The key may do no more than their current role
    # allows; with no one vouching (NULL) it does nothing.
    Column(
        "member_id",
        Id,
        ForeignKey("memberships.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    # The key this one replaced when it was rolled.
    Column("replaces_id", Id, nullable=True),
    # Minted by a trust policy for a CI job (created_by_kind "oidc"): the policy (kept
    # after the policy is deleted, so the record stays readable) and the token's
    # subject. Such keys are short-lived and do not count against the key limit.
    Column("trust_policy_id", Id, nullable=True, index=True),
    Column("created_by_subject", String(255), nullable=True),
    Index("ix_api_keys_account_created", "account_id", "created_at", "id"),
    sqlite_autoincrement=True,
)

# Successful and refused requests per key and UTC day, counted in each process's
# memory and added here every few seconds (services/usage.py).
key_usage_daily = Table(
    "key_usage_daily",
    metadata,
    Column("key_id", Id, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("successes", BigInteger, nullable=False, server_default=text("0")),
    Column("refusals", BigInteger, nullable=False, server_default=text("0")),
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
    # Who did it, as the owner reads it: a member's email, a key's prefix,
    # "github", "system" (None: nobody signed in, e.g. a failed sign-in).
    Column("actor_name", String(320), nullable=True),
    Column("key_id", Id, nullable=True),
    Column("key_prefix", String(8), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    # A short, safe explanation (why a key was refused, where a leak was found).
    Column("detail", String(2048), nullable=True),
    # The zone the entry is about (zone events), for keys confined to some zones.
    Column("zone_id", Id, nullable=True),
    Index("ix_audit_events_account_occurred", "account_id", "occurred_at", "id"),
    sqlite_autoincrement=True,
)

# Hostnames an account purges, once proven by DNS. A hostname is held (active, or
# suspended while its record is missing) in one account at most (the partial unique
# index); pending claims block nobody. Held zones are re-checked in DNS every day.
zones = Table(
    "zones",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("hostname", String(253), nullable=False),
    Column("status", String(16), nullable=False),  # pending | active | suspended
    # The value the TXT record must hold: random, shown to the account only.
    Column("token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("verified_at", UTCDateTime(), nullable=True),
    # The last re-check of a held zone's record, and how many in a row missed it.
    Column("checked_at", UTCDateTime(), nullable=True),
    Column("missed_checks", Integer, nullable=False, server_default=text("0")),
    Index("ix_zones_account_created", "account_id", "created_at", "id"),
    Index("uq_zones_account_hostname", "account_id", "hostname", unique=True),
    Index(
        "uq_zones_active_hostname",
        "hostname",
        unique=True,
        sqlite_where=text("status IN ('active', 'suspended')"),
        postgresql_where=text("status IN ('active', 'suspended')"),
    ),
    Index("ix_zones_status_checked", "status", "checked_at"),
    sqlite_autoincrement=True,
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
    # Tag and "everything" purges: the zones (hostnames, JSON) they are confined to.
    Column("hosts", Text, nullable=True),
    # The key it was made with (None: a session), for keys confined to some zones.
    Column("key_id", Id, nullable=True),
    Index("ix_purges_account_created", "account_id", "created_at", "id"),
    sqlite_autoincrement=True,
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
    # The node's base URL (operator information) and how customers see it: node-1, ...
    Column("node", String(255), nullable=False),
    Column("label", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # queued | done | failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Index("ix_purge_deliveries_due", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# The notification outbox: one row per event to tell an account's owner about,
# written in the transaction of the event itself (so nothing is announced that did
# not happen, and nothing that happened goes untold), sent by a background loop.
# ``dedupe_key`` makes each event one notification at most.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    # Whom to write to; None: the account's first owner.
    Column("recipient", String(320), nullable=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    # What the message says (JSON): names, prefixes, times, addresses. Never a secret.
    Column("payload", Text, nullable=False),
    # queued | sending | sent | failed | recorded (kept without mail configured)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("last_error", String(500), nullable=True),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Who may trade an OpenID Connect ID token for a short-lived key of the account: the
# issuer, the audience and exact claim values the token must carry. ``pin_claim`` /
# ``pin_value`` repeat the condition on an immutable identity (repository_id, ...)
# that every policy must have, so that a token finds its policies by index.
trust_policies = Table(
    "trust_policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("issuer", String(512), nullable=False),
    Column("audience", String(512), nullable=False),
    Column("conditions", Text, nullable=False),  # JSON object: claim -> exact value
    Column("pin_claim", String(64), nullable=False),
    Column("pin_value", String(512), nullable=False),
    Column("permissions", String(16), nullable=False),  # full | purge
    Column("zone_ids", Text, nullable=True),  # JSON array, None: every zone
    Column("ttl_seconds", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # The member who made it: the keys it mints act for them (services/roles.py).
    Column("member_id", Id, nullable=True),
    Index("ix_trust_policies_account_created", "account_id", "created_at", "id"),
    Index("ix_trust_policies_issuer_pin", "issuer", "pin_value"),
    sqlite_autoincrement=True,
)

# ID tokens already exchanged, by SHA-256 of issuer and ``jti``, kept until the token
# would have expired anyway: a token is good for one key.
oidc_token_uses = Table(
    "oidc_token_uses",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)


# A person's TOTP authenticator (RFC 6238). The shared secret is sealed (AES-GCM,
# ``paradarum.secretbox``), never stored readable; TOTP is on once ``confirmed_at`` is
# set by a first code. ``last_step`` is the 30-second step of the last code accepted:
# a code of that step or an earlier one is refused (no replay).
totp_factors = Table(
    "totp_factors",
    metadata,
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True),
    Column("secret_sealed", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("confirmed_at", UTCDateTime(), nullable=True),
    Column("last_step", BigInteger, nullable=True),
)

# One-time recovery codes, by SHA-256 (they are random, 50 bits each: see
# services/twofactor.py for why no password hash is needed). Spent by setting used_at.
recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Index("ix_recovery_codes_person_hash", "person_id", "code_hash"),
    sqlite_autoincrement=True,
)

# Passkeys (WebAuthn credentials) used as a second factor: the credential's id and
# public key (base64url), and the authenticator's signature counter.
passkeys = Table(
    "passkeys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
    Column("credential_id", String(1400), nullable=False, unique=True),
    Column("public_key", Text, nullable=False),
    Column("sign_count", BigInteger, nullable=False, server_default=text("0")),
    Column("name", String(100), nullable=False),
    Column("transports", String(200), nullable=True),  # JSON array
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Index("ix_passkeys_person_id", "person_id"),
    sqlite_autoincrement=True,
)

# Challenges of a sign-in's second step (and of a passkey registration), by SHA-256
# of the opaque token handed out: valid 5 minutes, once, ended by 5 failures.
auth_challenges = Table(
    "auth_challenges",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),  # sign-in | passkey
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", Id, nullable=True),
    # The WebAuthn challenge (base64url) of a passkey ceremony under way.
    Column("webauthn_challenge", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("used_at", UTCDateTime(), nullable=True),
    Index("ix_auth_challenges_person_id", "person_id"),
)

# Where an account's events are sent (services/webhooks.py): an http(s) URL, the
# events it subscribes to, and the secret deliveries are signed with (Standard
# Webhooks). The secret must be read again to sign, so it is sealed
# (``paradarum.secretbox``), never stored readable; after a roll the previous one
# keeps signing too until ``previous_secret_until``. An endpoint whose deliveries
# failed for a day is disabled (``disabled_at``, ``disabled_reason``);
# ``failing_since`` is its first failure since its last success.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("events", Text, nullable=False),  # JSON array of event types
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("secret_sealed", String(255), nullable=False),
    Column("previous_secret_sealed", String(255), nullable=True),
    Column("previous_secret_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("disabled_reason", String(300), nullable=True),
    Column("failing_since", UTCDateTime(), nullable=True),
    Index("ix_webhook_endpoints_account_created", "account_id", "created_at", "id"),
    sqlite_autoincrement=True,
)

# One message to one endpoint: the job-queue rows of the ``webhook`` kind. The body
# is kept as sent (``payload``: {type, timestamp, data}, never a raw key), so that a
# retry or a resend carries the same bytes under the same ``message_id``.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        Id,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(40), nullable=False),
    Column("event", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    # queued | delivered | failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Events about a key that Paradarum itself notices by time (``api_key.expiring``,
# ``api_key.expired``): one row per key and event, so that each is announced once
# whatever the number of processes sweeping.
key_announcements = Table(
    "key_announcements",
    metadata,
    Column("key_id", Id, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("event", String(40), primary_key=True),
    Column("announced_at", UTCDateTime(), nullable=False),
)
