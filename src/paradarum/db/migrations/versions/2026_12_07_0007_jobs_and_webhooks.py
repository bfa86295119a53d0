"""one job queue for purges, emails and webhooks; webhook endpoints

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 03:00:00

``jobs`` replaces ``purge_deliveries`` and ``notifications``: every row of both is
copied, pending ones included, so nothing queued before the upgrade is lost, and
the outbox's event keys come along (a reminder already sent is not sent again).
A notification left ``sending`` stays claimed until its lease ends and then fails
("at most once"), as before. ``webhook_endpoints``: where an account's events go.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)

_jobs = sa.table(
    "jobs",
    *(
        sa.column(name)
        for name in (
            "kind",
            "account_id",
            "subject_id",
            "dedupe_key",
            "payload",
            "status",
            "attempts",
            "run_at",
            "lease_until",
            "last_error",
            "result",
            "created_at",
            "updated_at",
            "finished_at",
        )
    ),
)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("subject_id", ID, nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("run_at", TIME, nullable=False),
        sa.Column("lease_until", TIME, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("result", sa.String(200), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_jobs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_jobs_dedupe_key")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_due", "jobs", ["status", "kind", "run_at"])
    op.create_index("ix_jobs_subject", "jobs", ["kind", "subject_id", "id"])
    op.create_index("ix_jobs_account_id", "jobs", ["account_id"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("failing_since", TIME, nullable=True),
        sa.Column("disabled_reason", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webhook_endpoints_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_webhook_endpoints_account", "webhook_endpoints", ["account_id", "id"])

    conn = op.get_bind()
    _copy_purge_deliveries(conn)
    _copy_notifications(conn)
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("purge_deliveries") as batch:
        batch.drop_index("ix_purge_deliveries_purge_id")
        batch.drop_index("ix_purge_deliveries_due")
    op.drop_table("purge_deliveries")


def _insert(conn: Any, rows: list[dict[str, Any]]) -> None:
    for first in range(0, len(rows), 500):
        conn.execute(_jobs.insert(), rows[first : first + 500])


def _copy_purge_deliveries(conn: Any) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT d.purge_id, d.node, d.label, d.status, d.attempts, d.last_error,"
            " d.next_attempt_at, d.updated_at, d.claimed_until, p.account_id, p.created_at"
            " FROM purge_deliveries d JOIN purges p ON p.id = d.purge_id ORDER BY d.id"
        )
    ).all()
    _insert(
        conn,
        [
            {
                "kind": "purge",
                "account_id": row.account_id,
                "subject_id": row.purge_id,
                "dedupe_key": None,
                "payload": json.dumps({"node": row.node, "label": row.label}),
                # A queued row a worker had claimed is queued again: purges are
                # idempotent, and its old claim's process is gone with the old code.
                "status": row.status,
                "attempts": row.attempts,
                "run_at": row.next_attempt_at or row.updated_at,
                "lease_until": None,
                "last_error": (row.last_error or "")[:500] or None,
                "result": None,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "finished_at": None if row.status == "queued" else row.updated_at,
            }
            for row in rows
        ],
    )


_OUTBOX_STATUS = {
    "queued": ("queued", None),
    "sending": ("running", None),
    "sent": ("done", "sent"),
    "recorded": ("done", "recorded"),
    "failed": ("failed", None),
}


def _copy_notifications(conn: Any) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT account_id, recipient, kind, dedupe_key, payload, status, attempts,"
            " next_attempt_at, claimed_until, created_at, sent_at, last_error"
            " FROM notifications ORDER BY id"
        )
    ).all()
    jobs = []
    for row in rows:
        status, result = _OUTBOX_STATUS.get(row.status, ("failed", None))
        jobs.append(
            {
                "kind": "email",
                "account_id": row.account_id,
                "subject_id": None,
                "dedupe_key": row.dedupe_key,
                "payload": json.dumps(
                    {
                        "message": row.kind,
                        "data": json.loads(row.payload),
                        "recipient": row.recipient,
                    }
                ),
                "status": status,
                "attempts": row.attempts,
                "run_at": row.next_attempt_at or row.created_at,
                "lease_until": row.claimed_until if status == "running" else None,
                "last_error": row.last_error,
                "result": result,
                "created_at": row.created_at,
                "updated_at": row.sent_at or row.created_at,
                "finished_at": row.sent_at if status == "done" else None,
            }
        )
    _insert(conn, jobs)


def downgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=True),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notifications_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_table(
        "purge_deliveries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("purge_id", ID, nullable=False),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["purge_id"],
            ["purges.id"],
            name=op.f("fk_purge_deliveries_purge_id_purges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purge_deliveries")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("purge_deliveries") as batch:
        batch.create_index("ix_purge_deliveries_due", ["status", "next_attempt_at"])
        batch.create_index("ix_purge_deliveries_purge_id", ["purge_id"])
    conn = op.get_bind()
    for row in conn.execute(
        sa.text(
            "SELECT subject_id, payload, status, attempts, last_error, run_at, updated_at"
            " FROM jobs WHERE kind = 'purge' ORDER BY id"
        )
    ).all():
        where = json.loads(row.payload)
        conn.execute(
            sa.text(
                "INSERT INTO purge_deliveries (purge_id, node, label, status, attempts,"
                " last_error, next_attempt_at, updated_at) VALUES (:purge_id, :node, :label,"
                " :status, :attempts, :last_error, :next_attempt_at, :updated_at)"
            ),
            {
                "purge_id": row.subject_id,
                "node": where["node"],
                "label": where["label"],
                "status": "queued" if row.status == "running" else row.status,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "next_attempt_at": row.run_at if row.status in ("queued", "running") else None,
                "updated_at": row.updated_at,
            },
        )
    back = {"queued": "queued", "running": "sending", "failed": "failed"}
    for row in conn.execute(
        sa.text(
            "SELECT account_id, dedupe_key, payload, status, attempts, run_at, lease_until,"
            " created_at, finished_at, last_error, result FROM jobs WHERE kind = 'email'"
            " AND dedupe_key IS NOT NULL ORDER BY id"
        )
    ).all():
        payload = json.loads(row.payload)
        conn.execute(
            sa.text(
                "INSERT INTO notifications (account_id, recipient, kind, dedupe_key, payload,"
                " status, attempts, next_attempt_at, claimed_until, created_at, sent_at,"
                " last_error) VALUES (:account_id, :recipient, :kind, :dedupe_key, :payload,"
                " :status, :attempts, :run_at, :lease_until, :created_at, :sent_at, :last_error)"
            ),
            {
                "account_id": row.account_id,
                "recipient": payload.get("recipient"),
                "kind": payload.get("message", ""),
                "dedupe_key": row.dedupe_key,
                "payload": json.dumps(payload.get("data", {})),
                "status": back.get(row.status) or row.result or "sent",
                "attempts": row.attempts,
                "run_at": row.run_at,
                "lease_until": row.lease_until,
                "created_at": row.created_at,
                "sent_at": row.finished_at if row.status == "done" else None,
                "last_error": row.last_error,
            },
        )
    op.drop_index("ix_webhook_endpoints_account", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_jobs_account_id", table_name="jobs")
    op.drop_index("ix_jobs_subject", table_name="jobs")
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_table("jobs")
