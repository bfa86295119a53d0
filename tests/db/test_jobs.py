"""The job queue on SQLite and PostgreSQL: leases and fencing, backoff with jitter,
giving up, fairness across accounts, bounded concurrency, at most once, counts, and
a pending job that outlives its process.

Most tests declare a kind of their own on the ``notifications`` table, whose
``perform`` follows a script: the outside world faked, the database real."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient
from typer.testing import CliRunner

from paradarum.cli import build_app
from paradarum.clock import FrozenClock
from paradarum.db.engine import Database
from paradarum.db.migrate import upgrade
from paradarum.db.tables import notifications, purges
from paradarum.passwords import Passwords
from paradarum.runtime import Runtime, build_runtime, open_database
from paradarum.services.context import ClientInfo, CredentialKind, Principal
from paradarum.services.emails import Kind, enqueue
from paradarum.services.jobs import (
    NEVER_FINISHED,
    OUTCOME_UNKNOWN,
    Claim,
    Delivery,
    JobKind,
    JobQueue,
    JobState,
    Outcome,
    RetryPolicy,
    Statuses,
    Worker,
)
from paradarum.services.roles import Role
from paradarum.web.app import create_app
from tests.cache import RecordingNode, recording_node
from tests.conftest import make_settings
from tests.mail import SmtpServer, smtp_server
from tests.support import PASSWORD, run, wait_until

CLIENT = ClientInfo(address="203.0.113.7", user_agent="test")
N = notifications
LEASE = 60.0


@dataclass
class Script:
    """What the probe kind's attempts answer, and what it saw."""

    outcomes: list[Outcome] = field(default_factory=list)
    performed: list[tuple[str, int]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    finished: list[tuple[str, str]] = field(default_factory=list)

    async def perform(self, claim: Claim[str]) -> Outcome:
        self.performed.append((claim.job, claim.attempt))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            # Hand the loop to the other attempts: the ones allowed run together here.
            for _ in range(5):
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        return self.outcomes.pop(0) if self.outcomes else Outcome.ok()

    def record_finished(self, _conn, claim: Claim[str], outcome: Outcome, _now: datetime) -> None:
        self.finished.append((claim.job, str(outcome.result)))


def probe_kind(
    script: Script,
    *,
    delivery: Delivery = Delivery.AT_LEAST_ONCE,
    policy: RetryPolicy | None = None,
    concurrency: int = 8,
    batch_size: int = 20,
) -> JobKind[str]:
    return JobKind(
        name="probe",
        table=N,
        account=N.c.account_id,
        columns=(N.c.dedupe_key,),
        load=lambda row: row.dedupe_key,
        created_at=N.c.created_at,
        perform=script.perform,
        finished=script.record_finished,
        policy=policy or RetryPolicy(base_seconds=10, max_seconds=1000, max_attempts=3),
        delivery=delivery,
        statuses=Statuses(done=("sent",), running="sending"),
        lease_seconds=LEASE,
        concurrency=concurrency,
        batch_size=batch_size,
    )


def worker(
    db: Database, clock: FrozenClock, script: Script, *, chance=lambda: 0.0, **kind: object
) -> Worker[str]:
    return JobQueue(db=db, clock=clock, chance=chance).add(probe_kind(script, **kind))  # type: ignore[arg-type]


def account(runtime: Runtime, email: str) -> int:
    made = run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT))
    # The sign-up's own email is out of the probe's way.
    with runtime.db.writing() as conn:
        conn.execute(N.delete().where(N.c.kind != "probe"))
    return int(made.id)


def queue(runtime: Runtime, account_id: int, name: str, *, at: datetime | None = None) -> None:
    """One row for the probe kind, due at ``at`` (now by default)."""
    moment = at or runtime.clock()
    with runtime.db.writing() as conn:
        conn.execute(
            N.insert().values(
                account_id=account_id,
                kind="probe",
                dedupe_key=name,
                payload="{}",
                status="queued",
                attempts=0,
                next_attempt_at=moment,
                created_at=moment,
            )
        )


def row(runtime: Runtime, name: str):
    with runtime.db.reading() as conn:
        return conn.execute(select(N).where(N.c.dedupe_key == name)).one()


# -- backoff, jitter, giving up -------------------------------------------------------


def test_backoff_doubles_up_to_its_ceiling_and_jitter_stays_within_half_of_it():
    policy = RetryPolicy(base_seconds=2, max_seconds=60, max_attempts=20)
    chance = random.Random(24).random
    delays = [policy.delay(attempt, chance()) for attempt in range(1, 9)]
    ceilings = [policy.ceiling(attempt) for attempt in range(1, 9)]
    assert ceilings == [2, 4, 8, 16, 32, 60, 60, 60]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[5:])) == 3  # at the ceiling, jobs that failed together spread out
    assert policy.delay(3, 0.0) == 8 and policy.delay(3, 0.999999) > 4


def test_a_retry_is_due_after_the_jittered_backoff(frozen_runtime, clock):
    """Each failed attempt waits ``policy.delay(attempt, chance)`` from the moment it
    failed: the injected chance, the frozen clock, and nothing else."""
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "flaky")
    policy = RetryPolicy(base_seconds=10, max_seconds=1000, max_attempts=10)
    script = Script(outcomes=[Outcome.retry("the far end is down")] * 6)
    probe = worker(runtime.db, clock, script, chance=random.Random(7).random, policy=policy)
    expected = random.Random(7).random
    for attempt in range(1, 7):
        assert run(probe.run_once()) == 1
        waiting = row(runtime, "flaky")
        assert (waiting.status, waiting.attempts) == ("queued", attempt)
        assert waiting.last_error == "the far end is down"
        delay = (waiting.next_attempt_at - clock.now).total_seconds()
        assert delay == pytest.approx(policy.delay(attempt, expected()), abs=1e-5)
        assert policy.ceiling(attempt) / 2 <= delay <= policy.ceiling(attempt)
        clock.now = waiting.next_attempt_at - timedelta(milliseconds=1)
        assert run(probe.run_once()) == 0  # not due yet
        clock.now = waiting.next_attempt_at


def test_a_job_fails_for_good_after_its_last_attempt(frozen_runtime, clock):
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "doomed")
    script = Script(outcomes=[Outcome.retry("no answer")] * 5)
    probe = worker(runtime.db, clock, script)  # three attempts at most
    for _ in range(3):
        assert run(probe.run_once()) == 1
        clock.advance(1000)
    failed = row(runtime, "doomed")
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "no answer")
    assert failed.claimed_until is None
    assert run(probe.run_once()) == 0  # never again
    assert script.finished == [("doomed", "retry"), ("doomed", "retry"), ("doomed", "failed")]


def test_a_job_with_a_deadline_gives_up_when_the_next_attempt_would_be_late(frozen_runtime, clock):
    """Retried every 20 s for a minute after it was made: attempts at 0, 20, 40 and
    60 s; a fifth, at 80 s, would be past the deadline."""
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "for a minute")
    policy = RetryPolicy(base_seconds=20, max_seconds=20, give_up_after=timedelta(seconds=60))
    probe = worker(runtime.db, clock, Script(outcomes=[Outcome.retry("down")] * 9), policy=policy)
    while run(probe.run_once()):
        clock.advance(20)
    gave_up = row(runtime, "for a minute")
    assert (gave_up.status, gave_up.attempts) == ("failed", 4)


def test_a_final_failure_is_not_retried(frozen_runtime, clock):
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "refused")
    probe = worker(runtime.db, clock, Script(outcomes=[Outcome.fail("refused for good")]))
    assert run(probe.run_once()) == 1
    clock.advance(1000)
    assert run(probe.run_once()) == 0
    assert row(runtime, "refused").status == "failed"


# -- leases and fencing ------------------------------------------------------------------


def test_an_expired_lease_is_taken_over_and_the_stale_worker_cannot_record(
    frozen_runtime, settings, clock
):
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "leased")
    other_db = open_database(settings)  # another process or instance
    try:
        stale = worker(runtime.db, clock, Script())
        other = worker(other_db, clock, Script())
        [held] = run(stale.claim(5))
        assert held.attempt == 1
        assert run(other.claim(5)) == []  # claimed, though nothing was recorded
        clock.advance(LEASE - 1)
        assert run(other.claim(5)) == []
        clock.advance(1)  # the lease is over: the first worker is presumed dead
        [taken] = run(other.claim(5))
        assert taken.attempt == 2
        # The first worker wakes up late: its result no longer counts, either way.
        assert run(stale.record(held, Outcome.fail("late"))) is False
        assert run(stale.record(held, Outcome.ok())) is False
        assert row(runtime, "leased").status == "queued"
        assert run(other.record(taken, Outcome.ok())) is True
    finally:
        other_db.close()
    done = row(runtime, "leased")
    assert (done.status, done.attempts, done.claimed_until) == ("sent", 2, None)


def test_at_most_once_a_job_whose_worker_vanished_fails_as_outcome_unknown(
    frozen_runtime, settings, clock
):
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "once")
    other_db = open_database(settings)
    try:
        vanished = worker(runtime.db, clock, Script(), delivery=Delivery.AT_MOST_ONCE)
        script = Script()
        other = worker(other_db, clock, script, delivery=Delivery.AT_MOST_ONCE)
        [held] = run(vanished.claim(5))
        assert row(runtime, "once").status == "sending"
        clock.advance(LEASE)
        assert run(other.run_once()) == 0  # given up on, not performed again
        assert script.performed == []
        assert run(vanished.record(held, Outcome.ok())) is False
    finally:
        other_db.close()
    given_up = row(runtime, "once")
    assert (given_up.status, given_up.attempts) == ("failed", 1)
    assert given_up.last_error == OUTCOME_UNKNOWN


def test_a_job_whose_every_attempt_killed_its_worker_fails_without_another(frozen_runtime, clock):
    """At least once, an expired lease makes the row due again, but not past the
    policy's last attempt: a job that takes its worker down each time ends."""
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "poison")
    script = Script()
    probe = worker(runtime.db, clock, script)  # three attempts at most
    for attempt in (1, 2, 3):
        [claim] = run(probe.claim(1))  # and the worker dies
        assert claim.attempt == attempt
        clock.advance(LEASE)
    assert run(probe.run_once()) == 1
    assert script.performed == []
    ended = row(runtime, "poison")
    assert (ended.status, ended.last_error) == ("failed", NEVER_FINISHED)
    assert script.finished == [("poison", "failed")]


def test_at_most_once_an_attempt_that_raises_is_not_tried_again(frozen_runtime, clock):
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "raises")

    class Broken(Script):
        async def perform(self, claim: Claim[str]) -> Outcome:
            raise RuntimeError("halfway through")

    probe = worker(runtime.db, clock, Broken(), delivery=Delivery.AT_MOST_ONCE)
    assert run(probe.run_once()) == 1
    clock.advance(1000)
    assert run(probe.run_once()) == 0
    assert row(runtime, "raises").status == "failed"


def test_at_least_once_an_attempt_that_raises_is_retried(frozen_runtime, clock):
    runtime = frozen_runtime
    queue(runtime, account(runtime, "ada@example.com"), "raises")
    attempts: list[int] = []

    class FailsOnce(Script):
        async def perform(self, claim: Claim[str]) -> Outcome:
            attempts.append(claim.attempt)
            if claim.attempt == 1:
                raise RuntimeError("a bug met once")
            return Outcome.ok()

    probe = worker(runtime.db, clock, FailsOnce())
    run(probe.run_once())
    clock.advance(10)
    run(probe.run_once())
    assert attempts == [1, 2]
    assert row(runtime, "raises").status == "sent"


# -- fairness and concurrency ---------------------------------------------------------


def test_accounts_take_turns_each_with_its_oldest_due_job_first(frozen_runtime, clock):
    runtime = frozen_runtime
    ada, bob, cy = (account(runtime, f"{n}@example.com") for n in ("ada", "bob", "cy"))
    start = clock.now - timedelta(hours=1)
    # Ada's flood is older than anything else; Bob's and Cy's come later.
    for n in range(4):
        queue(runtime, ada, f"ada-{n}", at=start + timedelta(seconds=n))
    for n in range(2):
        queue(runtime, bob, f"bob-{n}", at=start + timedelta(minutes=10 + n))
    queue(runtime, cy, "cy-0", at=start + timedelta(minutes=20))
    probe = worker(runtime.db, clock, Script())

    batch = run(probe.claim(3))
    assert [claim.job for claim in batch] == ["ada-0", "bob-0", "cy-0"]
    # One at a time (as a free slot asks), the turn still goes round.
    order = [claim.job for _ in range(4) for claim in run(probe.claim(1))]
    assert order == ["ada-1", "bob-1", "ada-2", "ada-3"]
    assert run(probe.claim(1)) == []


def test_no_more_attempts_run_at_once_than_the_kind_allows(frozen_runtime, clock):
    runtime = frozen_runtime
    owner = account(runtime, "ada@example.com")
    for n in range(10):
        queue(runtime, owner, f"job-{n}")
    script = Script()
    probe = worker(runtime.db, clock, script, concurrency=3)
    assert run(probe.run_once()) == 10
    assert script.most_in_flight == 3
    assert sorted(name for name, _ in script.performed) == sorted(f"job-{n}" for n in range(10))
    assert {r.status for r in _probe_rows(runtime)} == {"sent"}


def _probe_rows(runtime: Runtime) -> list:
    with runtime.db.reading() as conn:
        return conn.execute(select(N).where(N.c.kind == "probe")).all()


def test_counts_say_how_many_rows_are_in_each_state(frozen_runtime, clock):
    runtime = frozen_runtime
    owner = account(runtime, "ada@example.com")
    for name in ("done", "failed", "running", "queued", "waiting"):
        queue(runtime, owner, name)
    probe = worker(runtime.db, clock, Script(), delivery=Delivery.AT_MOST_ONCE)
    with runtime.db.writing() as conn:
        for name, status in (("done", "sent"), ("failed", "failed")):
            conn.execute(update(N).where(N.c.dedupe_key == name).values(status=status))
    with runtime.db.writing() as conn:
        conn.execute(
            update(N)
            .where(N.c.dedupe_key == "waiting")
            .values(next_attempt_at=clock.now + timedelta(hours=1))
        )
    claims = run(probe.claim(1))
    assert [claim.job for claim in claims] == ["running"]
    with runtime.db.reading() as conn:
        assert probe.count(conn, clock.now) == {
            JobState.QUEUED: 2,
            JobState.RUNNING: 1,
            JobState.DONE: 1,
            JobState.FAILED: 1,
        }


# -- purge delivery: observable, and outliving its process ---------------------------


@pytest.fixture
def nodes() -> Iterator[list[RecordingNode]]:
    with ExitStack() as stack:
        yield [stack.enter_context(recording_node()) for _ in range(2)]


def purge_everything(runtime: Runtime, email: str) -> int:
    made = run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT))
    run(runtime.zones.add_for(email=email, hostname="www.example.com", verified=True))
    who = Principal(
        account_id=made.id, kind=CredentialKind.KEY, key_prefix="pdm_Abcd", role=Role.PURGER
    )
    info = run(runtime.purges.request(principal=who, client=CLIENT, everything=True))
    return int(info.id)


def purge_status(runtime: Runtime, purge_id: int) -> str:
    with runtime.db.reading() as conn:
        return str(conn.execute(select(purges.c.status).where(purges.c.id == purge_id)).scalar())


class TestObservable:
    @pytest.fixture
    def settings_overrides(self, nodes: list[RecordingNode]) -> dict[str, object]:
        # No loops: the test moves the queue itself.
        return {
            "cache_nodes": [node.base_url for node in nodes],
            "purge_delivery_enabled": False,
            "notifications_enabled": False,
        }

    def jobs_command(self, settings, monkeypatch) -> str:
        args = ["jobs", "--data-dir", str(settings.data_dir)]
        if not settings.is_sqlite:
            args += ["--database-url", str(settings.database_url)]
            monkeypatch.setenv("PARADARUM_JWT_SECRET", settings.jwt_secret.get_secret_value())
        result = CliRunner().invoke(build_app(), args)
        assert result.exit_code == 0, result.output
        return result.output

    def test_readiness_and_the_operator_command_count_jobs_by_kind_and_state(
        self, client, runtime, settings, monkeypatch
    ):
        purge_everything(runtime, "ada@example.com")
        ready = client.get("/api/health/ready")
        assert ready.status_code == 200
        data = ready.json()["data"]
        assert data["status"] == "ok"
        assert data["jobs"]["purge"] == {"queued": 2, "running": 0, "done": 0, "failed": 0}
        assert set(data["jobs"]["email"]) == {"queued", "running", "done", "failed"}

        lines = self.jobs_command(settings, monkeypatch).splitlines()
        assert lines[0].split() == ["kind", "queued", "running", "done", "failed"]
        assert ["purge", "2", "0", "0", "0"] in [line.split() for line in lines[1:]]
        assert "email" in [line.split()[0] for line in lines[1:]]

        assert run(runtime.purge_delivery.run_once()) == 2
        lines = self.jobs_command(settings, monkeypatch).splitlines()
        assert ["purge", "0", "0", "2", "0"] in [line.split() for line in lines[1:]]


def test_a_purge_whose_process_died_mid_delivery_is_delivered_once_after_a_restart(
    tmp_path, database_url, nodes
):
    """The first process claims the deliveries and dies (``kill -9``: nothing
    recorded, its leases left behind). After the lease, the next process delivers
    each once; a second restart sends nothing more."""
    settings = make_settings(
        tmp_path / "data",
        database_url,
        cache_nodes=[node.base_url for node in nodes],
        purge_delivery_enabled=False,
        notifications_enabled=False,
        email_verification="off",
    )
    clock = FrozenClock()

    def start(**overrides: object) -> Runtime:
        runtime = build_runtime(
            settings.model_copy(update=overrides),
            clock=clock,
            passwords=Passwords(concurrency=2, memory_kib=1024),
        )
        upgrade(runtime.db)
        return runtime

    first = start()
    purge_id = purge_everything(first, "ada@example.com")
    assert len(run(first.purge_delivery.claim(10))) == 2
    first.close()
    clock.advance(120)  # the dead process's leases are over

    second = start(purge_delivery_enabled=True)
    with TestClient(create_app(runtime=second)):  # its background loop delivers
        wait_until(lambda: purge_status(second, purge_id) == "done", timeout=20)
    second.close()

    third = start()
    assert run(third.purge_delivery.run_once()) == 0
    third.close()
    for node in nodes:
        assert [request.method for request in node.requests] == ["BAN"]


class TestEmailAtMostOnce:
    @pytest.fixture
    def smtp(self, tmp_path) -> Iterator[SmtpServer]:
        with smtp_server(directory=tmp_path / "smtp") as server:
            yield server

    @pytest.fixture
    def settings_overrides(self, smtp: SmtpServer) -> dict[str, object]:
        return {"smtp_url": smtp.url(), "email_verification": "off"}

    def test_an_email_whose_sender_died_mid_send_is_never_sent_again(
        self, frozen_runtime, clock, smtp
    ):
        runtime = frozen_runtime
        made = run(
            runtime.accounts.signup(email="ada@example.com", password=PASSWORD, client=CLIENT)
        )
        with runtime.db.writing() as conn:
            conn.execute(N.delete())  # only this test's emails in the outbox

        def email(name: str) -> None:
            with runtime.db.writing() as conn:
                enqueue(
                    conn,
                    runtime.db,
                    account_id=made.id,
                    kind=Kind.VERIFY_EMAIL,
                    dedupe_key=name,
                    payload={},
                    now=clock(),
                )

        email("cut-short")
        delivery = runtime.email_delivery
        [held] = run(delivery.claim(1))  # then the process dies, mid-send
        assert row(runtime, "cut-short").status == "sending"
        clock.advance(delivery.kind.lease_seconds)
        assert run(delivery.run_once()) == 0
        given_up = row(runtime, "cut-short")
        assert (given_up.status, given_up.last_error) == ("failed", OUTCOME_UNKNOWN)
        assert run(delivery.record(held, Outcome.ok("sent"))) is False
        assert smtp.messages() == []

        email("next")  # the outbox goes on: the next email is sent, once
        assert run(delivery.run_once()) == 1
        assert row(runtime, "next").status == "sent"
        assert [received.rcpt_tos for received in smtp.messages()] == [["ada@example.com"]]
