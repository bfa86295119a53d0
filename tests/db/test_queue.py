"""The job queue on SQLite and PostgreSQL: what an upgrade carries over, at most once
for emails, backoff with jitter, giving up, fairness, the operator's commands."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import select, text
from typer.testing import CliRunner

from paradarum.cli import build_app
from paradarum.db.migrate import alembic_config, upgrade
from paradarum.db.tables import jobs
from paradarum.runtime import Runtime, open_database
from paradarum.services.context import ClientInfo
from paradarum.services.queue import Job, JobKind, JobStatus, Outcome, Policy, enqueue
from tests.support import PASSWORD, run

CLIENT = ClientInfo(address="192.0.2.1")
BEFORE = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_an_upgrade_carries_every_pending_purge_delivery_and_email_over(settings):
    """Rows queued by the version before the job queue are in the queue after the
    upgrade, pending ones still pending, the outbox's event keys kept."""
    db = open_database(settings)
    try:
        config = alembic_config(db.url)
        with db.engine.connect() as conn:
            config.attributes["connection"] = conn.execution_options(paradarum_write=True)
            command.upgrade(config, "0004")
            at = db.sql_time(BEFORE)
            conn.execute(
                text(
                    "INSERT INTO accounts (email, password_hash, created_at, session_key,"
                    " email_verified_at) VALUES ('old@example.com', 'x', :at, 's', :at)"
                ),
                {"at": at},
            )
            account_id = conn.execute(text("SELECT id FROM accounts")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO purges (account_id, kind, targets, status, created_at, hosts)"
                    " VALUES (:a, 'tags', '[\"t\"]', 'running', :at, '[\"example.com\"]')"
                ),
                {"a": account_id, "at": at},
            )
            purge_id = conn.execute(text("SELECT id FROM purges")).scalar_one()
            for label, status, attempts in (("node-1", "done", 1), ("node-2", "queued", 2)):
                conn.execute(
                    text(
                        "INSERT INTO purge_deliveries (purge_id, node, label, status, attempts,"
                        " last_error, next_attempt_at, updated_at) VALUES (:p,"
                        " 'http://127.0.0.1:6081', :label, :status, :attempts, :error, :at, :at)"
                    ),
                    {
                        "p": purge_id,
                        "label": label,
                        "status": status,
                        "attempts": attempts,
                        "error": None if status == "done" else "the cache node answered HTTP 503",
                        "at": at,
                    },
                )
            for dedupe, status in (("key_expiring:7:7d", "sent"), ("key_added:8", "queued")):
                conn.execute(
                    text(
                        "INSERT INTO notifications (account_id, kind, dedupe_key, payload, status,"
                        " attempts, next_attempt_at, created_at) VALUES (:a, :kind, :d,"
                        " :payload, :status, 0, :at, :at)"
                    ),
                    {
                        "a": account_id,
                        "kind": dedupe.split(":")[0],
                        "d": dedupe,
                        "payload": json.dumps(
                            {"key": {"id": 8, "name": "n", "prefix": "pdm_Abcd"}}
                        ),
                        "status": status,
                        "at": at,
                    },
                )
            conn.commit()
        upgrade(db)
        with db.engine.connect() as conn:
            rows = conn.execute(select(jobs).order_by(jobs.c.id)).all()
        by_kind = [(row.kind, row.status, row.attempts, row.subject_id) for row in rows]
        assert by_kind == [
            ("purge", "done", 1, purge_id),
            ("purge", "queued", 2, purge_id),
            ("email", "done", 0, None),
            ("email", "queued", 0, None),
        ]
        assert json.loads(rows[1].payload) == {"node": "http://127.0.0.1:6081", "label": "node-2"}
        assert rows[1].last_error == "the cache node answered HTTP 503"
        assert rows[1].run_at == BEFORE
        assert [row.dedupe_key for row in rows[2:]] == ["key_expiring:7:7d", "key_added:8"]
        assert json.loads(rows[3].payload)["message"] == "key_added"
        assert {row.account_id for row in rows} == {account_id}
    finally:
        db.close()


class Flaky:
    """A kind of job that fails as it is told."""

    kind = JobKind.WEBHOOK

    def __init__(self, policy: Policy, outcomes: list[Outcome]) -> None:
        self.policy = policy
        self.outcomes = outcomes
        self.performed: list[int] = []
        self.finished_as: list[JobStatus] = []

    def claimed(self, conn, claimed, now) -> None:
        return None

    async def perform(self, job: Job) -> Outcome:
        self.performed.append(job.id)
        return self.outcomes.pop(0) if self.outcomes else Outcome.done()

    def finished(self, conn, job, status, outcome, now) -> None:
        self.finished_as.append(status)


def account(runtime: Runtime, email: str = "queue@example.com") -> int:
    created = run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT))
    return created.id


def queue_one(runtime: Runtime, account_id: int, **payload: object) -> int:
    with runtime.db.writing() as conn:
        job_id = enqueue(
            conn,
            runtime.db,
            kind=JobKind.WEBHOOK,
            account_id=account_id,
            payload=payload,
            now=runtime.clock(),
        )
    assert job_id is not None
    return job_id


def job_row(runtime: Runtime, job_id: int):
    with runtime.db.reading() as conn:
        return conn.execute(select(jobs).where(jobs.c.id == job_id)).one()


def test_failures_back_off_exponentially_with_jitter_then_fail_for_good(frozen_runtime, clock):
    policy = Policy(max_attempts=4, retry_seconds=10, retry_max_seconds=25, lease_seconds=60)
    handler = Flaky(policy, [Outcome.retry("down")] * 4)
    worker = frozen_runtime.queue.worker(handler)
    job_id = queue_one(frozen_runtime, account(frozen_runtime))
    delays = []
    for _ in range(3):
        assert run(worker.run_once()) == 1
        row = job_row(frozen_runtime, job_id)
        assert (row.status, row.last_error) == ("queued", "down")
        delay = (row.run_at - clock.now).total_seconds()
        delays.append(delay)
        assert run(worker.run_once()) == 0  # not due yet
        clock.advance(delay)
    # 10, 20, then the cap of 25, each stretched by at most a quarter.
    for delay, base in zip(delays, (10, 20, 25), strict=True):
        assert base <= delay <= base * 1.25
    assert run(worker.run_once()) == 1
    row = job_row(frozen_runtime, job_id)
    assert (row.status, row.attempts, row.finished_at) == ("failed", 4, clock.now)
    assert handler.finished_as == [JobStatus.QUEUED] * 3 + [JobStatus.FAILED]
    clock.advance(86400)
    assert run(worker.run_once()) == 0  # failed is final


def test_jitter_spreads_jobs_that_failed_together():
    policy = Policy(max_attempts=9, retry_seconds=60, retry_max_seconds=3600, lease_seconds=60)
    rng = random.Random(7)
    delays = {round(policy.backoff(3, rng), 3) for _ in range(20)}
    assert len(delays) == 20 and min(delays) >= 240 and max(delays) <= 300


def test_a_job_older_than_its_time_limit_is_not_tried_again(frozen_runtime, clock):
    policy = Policy(
        max_attempts=100,
        retry_seconds=3600,
        retry_max_seconds=3600,
        lease_seconds=60,
        give_up_after=timedelta(hours=3),
    )
    handler = Flaky(policy, [Outcome.retry("down")] * 10)
    worker = frozen_runtime.queue.worker(handler)
    job_id = queue_one(frozen_runtime, account(frozen_runtime))
    attempts = 0
    while (row := job_row(frozen_runtime, job_id)).status == "queued":
        clock.advance(max(0.0, (row.run_at - clock.now).total_seconds()))
        attempts += run(worker.run_once())
    assert job_row(frozen_runtime, job_id).status == "failed"
    assert attempts == 3  # at 0 s, ~1 h and ~2 h; a fourth would be past 3 h


def test_an_at_most_once_job_whose_process_died_is_failed_not_done_again(
    frozen_runtime, clock, settings
):
    policy = Policy(
        max_attempts=5, retry_seconds=1, retry_max_seconds=1, lease_seconds=60, at_most_once=True
    )
    handler = Flaky(policy, [])
    job_id = queue_one(frozen_runtime, account(frozen_runtime))
    held = run(frozen_runtime.queue.claim(handler, 1))  # and the process dies
    assert [job.id for job in held] == [job_id]
    other_db = open_database(settings)
    try:
        from paradarum.services.queue import JobQueue

        other = JobQueue(db=other_db, clock=clock).worker(Flaky(policy, []))
        assert run(other.run_once()) == 0
        clock.advance(60)
        assert run(other.run_once()) == 0
    finally:
        other_db.close()
    row = job_row(frozen_runtime, job_id)
    assert row.status == "failed" and "not tried again" in row.last_error
    assert run(frozen_runtime.queue.finish(handler, held[0], Outcome.done())) is False


def test_a_claim_takes_accounts_in_turn(frozen_runtime):
    policy = Policy(max_attempts=1, retry_seconds=1, retry_max_seconds=1, lease_seconds=60)
    busy, quiet = account(frozen_runtime), account(frozen_runtime, "quiet@example.com")
    flood = [queue_one(frozen_runtime, busy, n=n) for n in range(10)]
    late = queue_one(frozen_runtime, quiet)
    claimed = run(frozen_runtime.queue.claim(Flaky(policy, []), 3))
    assert {job.id for job in claimed} == {flood[0], flood[1], late}


def test_operators_see_counts_and_retry_a_failed_job(frozen_runtime, settings, clock):
    policy = Policy(max_attempts=1, retry_seconds=1, retry_max_seconds=1, lease_seconds=60)
    worker = frozen_runtime.queue.worker(Flaky(policy, [Outcome.fail("refused")]))
    job_id = queue_one(frozen_runtime, account(frozen_runtime))
    queue_one(frozen_runtime, account(frozen_runtime, "second@example.com"))
    run(worker.run_once(1))
    counts = run(frozen_runtime.queue.counts())
    assert counts["webhook"] == {"queued": 1, "running": 0, "done": 0, "failed": 1}

    options = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        options += ["--database-url", settings.database_url]
    env = (
        {"PARADARUM_JWT_SECRET": settings.jwt_secret.get_secret_value()}
        if (settings.jwt_secret)
        else {}
    )
    cli = CliRunner()
    shown = cli.invoke(build_app(), ["jobs", "status", "--json", *options], env=env)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["webhook"]["failed"] == 1
    table = cli.invoke(build_app(), ["jobs", "status", *options], env=env)
    assert "webhook" in table.output and "failed" in table.output
    retried = cli.invoke(build_app(), ["jobs", "retry", str(job_id), *options], env=env)
    assert retried.exit_code == 0, retried.output
    assert job_row(frozen_runtime, job_id).status == "queued"
    again = cli.invoke(build_app(), ["jobs", "retry", str(job_id), *options], env=env)
    assert again.exit_code == 1 and "No failed job" in again.output
