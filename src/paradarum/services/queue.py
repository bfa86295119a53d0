"""The one durable job queue: purge deliveries, emails and webhook deliveries.

Every piece of "do this later, reliably" is a ``jobs`` row, inserted in the
transaction of the event that calls for it (so nothing is done that did not
happen, and nothing that happened is forgotten), and done by a :class:`Worker`
per kind in every process:

1. **claim**: due rows of the worker's kind (``queued`` and ``run_at <= now``, or
   ``running`` with an expired lease for kinds that may run twice) become
   ``running`` with ``lease_until = now + lease`` and ``attempts + 1``. Accounts
   are taken **in turn** (each account's oldest due job first, then each one's
   second…), so one account's flood never delays another's. On PostgreSQL the rows
   are locked ``FOR UPDATE SKIP LOCKED``: instances claiming at once take
   different rows without waiting on each other. On SQLite a write transaction is
   ``BEGIN IMMEDIATE``, so claims of the processes sharing the file queue up.
2. **perform**: the kind's :class:`Handler` does the work, at most
   ``concurrency`` jobs of a kind at once per process.
3. **finish**: the outcome is written **fenced** by the claim's ``attempts``: a
   worker whose lease ran out and whose job was claimed again cannot overwrite the
   newer attempt. A failure is retried with exponential backoff and jitter until
   the policy's attempts or time run out; then the job is ``failed`` for good. The
   handler's ``finished`` hook runs in the same transaction (a purge's roll-up, an
   email's security-log entry, a webhook endpoint's health).

A process killed mid-job (``kill -9``) leaves a ``running`` row whose lease ends;
kinds that may run twice (purges: idempotent; webhooks: the receiver dedupes on
``webhook-id``) are claimed again, at-most-once kinds (email: a second copy is
worse than none) end ``failed``. The queue is the database, so it survives
restarts.

Why not a library: procrastinate, pgqueuer and the like are PostgreSQL-only;
huey's and RQ's SQL or Redis storages have no leases (a job taken by a process
that dies is lost) and no fairness across accounts; Celery needs a broker. None
serves both the embedded SQLite file and PostgreSQL with the guarantees above.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Connection, and_, func, or_, select, update

from paradarum.background import wait_for_any, wait_for_event
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import jobs

logger = logging.getLogger("paradarum.queue")

J = jobs


class JobKind(StrEnum):
    PURGE = "purge"
    EMAIL = "email"
    WEBHOOK = "webhook"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Policy:
    """How a kind of job is retried and run."""

    max_attempts: int
    # The first retry's delay, doubled on each further attempt up to the maximum,
    # then stretched by up to ``jitter`` (0.25: up to 25 % later) so that jobs that
    # failed together do not all come back together.
    retry_seconds: float
    retry_max_seconds: float
    # Longer than one attempt can take: only a process that died lets it run out.
    lease_seconds: float
    # Jobs of this kind one process performs at once.
    concurrency: int = 4
    # No new attempt once the job is this old (None: attempts alone decide).
    give_up_after: timedelta | None = None
    jitter: float = 0.25
    # True: a job whose lease ran out while running is failed, never run again.
    at_most_once: bool = False

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        delay = min(self.retry_max_seconds, self.retry_seconds * 2 ** (attempt - 1))
        return delay * (1 + (rng or random).uniform(0, self.jitter))


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job: the right to perform it while ``attempts`` equals ``attempt``."""

    id: int
    kind: JobKind
    account_id: int
    subject_id: int | None
    payload: dict[str, Any]
    attempt: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt came to. ``error`` is short and safe to show the customer."""

    ok: bool
    error: str | None = None
    result: str | None = None
    # Not worth another attempt (a permanent refusal).
    final: bool = False

    @classmethod
    def done(cls, result: str | None = None) -> Outcome:
        return cls(ok=True, result=result)

    @classmethod
    def retry(cls, error: str, result: str | None = None) -> Outcome:
        return cls(ok=False, error=error, result=result)

    @classmethod
    def fail(cls, error: str, result: str | None = None) -> Outcome:
        return cls(ok=False, error=error, result=result, final=True)


class Handler(Protocol):
    """What one kind of job does. ``claimed`` and ``finished`` run inside the queue's
    transactions (keep them to statements); ``perform`` does the slow part."""

    kind: JobKind
    policy: Policy

    def claimed(self, conn: Connection, jobs: Sequence[Job], now: datetime) -> None: ...

    async def perform(self, job: Job) -> Outcome: ...

    def finished(
        self, conn: Connection, job: Job, status: JobStatus, outcome: Outcome, now: datetime
    ) -> None: ...


def enqueue(
    conn: Connection,
    db: Database,
    *,
    kind: JobKind,
    account_id: int,
    payload: Mapping[str, Any],
    now: datetime,
    subject_id: int | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Queue a job in the caller's transaction; its id, or None when a job with
    ``dedupe_key`` exists already (that event was queued before)."""
    statement = (
        db.insert(J)
        .values(
            kind=str(kind),
            account_id=account_id,
            subject_id=subject_id,
            dedupe_key=dedupe_key[:200] if dedupe_key else None,
            payload=json.dumps(dict(payload), default=str),
            status=str(JobStatus.QUEUED),
            attempts=0,
            run_at=now,
            created_at=now,
            updated_at=now,
        )
        .returning(J.c.id)
    )
    if dedupe_key:
        statement = statement.on_conflict_do_nothing(index_elements=[J.c.dedupe_key])
    row = conn.execute(statement).first()
    return None if row is None else int(row[0])


def requeue(conn: Connection, *, job_id: int, now: datetime, only_failed: bool = False) -> bool:
    """Make a finished job due again from a fresh start (an operator's retry, a
    customer's resend)."""
    finished = (
        [str(JobStatus.FAILED)] if only_failed else [str(JobStatus.FAILED), str(JobStatus.DONE)]
    )
    return (
        conn.execute(
            update(J)
            .where(J.c.id == job_id, J.c.status.in_(finished))
            .values(
                status=str(JobStatus.QUEUED),
                attempts=0,
                run_at=now,
                lease_until=None,
                finished_at=None,
                updated_at=now,
                created_at=now,
            )
        ).rowcount
        == 1
    )


class JobQueue:
    """Claims and finishes jobs; one per process, shared by every kind's worker."""

    def __init__(self, *, db: Database, clock: Clock, rng: random.Random | None = None) -> None:
        self._db = db
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._workers: dict[JobKind, Worker] = {}

    # -- producers ----------------------------------------------------------------------

    def wake(self, kind: JobKind) -> None:
        """Look for due jobs of ``kind`` now rather than at the next poll (one was just
        queued by this process)."""
        worker = self._workers.get(kind)
        if worker is not None:
            worker.wake()

    def wake_all(self) -> None:
        for worker in self._workers.values():
            worker.wake()

    def waker(self, kind: JobKind) -> Callable[[], None]:
        return lambda: self.wake(kind)

    # -- consumers ----------------------------------------------------------------------

    def _claimable(self, kind: JobKind, policy: Policy, now: datetime) -> Any:
        due = and_(J.c.status == str(JobStatus.QUEUED), J.c.run_at <= now)
        if not policy.at_most_once:
            due = or_(due, and_(J.c.status == str(JobStatus.RUNNING), J.c.lease_until <= now))
        return and_(J.c.kind == str(kind), due)

    async def claim(self, handler: Handler, limit: int) -> list[Job]:
        """Claim up to ``limit`` due jobs of the handler's kind, accounts in turn."""
        kind, policy = handler.kind, handler.policy
        now = self._clock()
        claimable = self._claimable(kind, policy, now)
        lost = and_(
            J.c.kind == str(kind),
            J.c.status == str(JobStatus.RUNNING),
            J.c.lease_until <= now,
        )
        # A plain read first, so that an idle poll never takes SQLite's write lock.
        found = await self._db.read(
            lambda conn: conn.execute(
                select(J.c.id)
                .where(or_(claimable, lost) if policy.at_most_once else claimable)
                .limit(1)
            ).first()
        )
        if found is None or limit <= 0:
            return []
        turn = (
            func.row_number()
            .over(partition_by=J.c.account_id, order_by=(J.c.run_at, J.c.id))
            .label("turn")
        )
        ranked = select(J.c.id, J.c.run_at, turn).where(claimable).subquery()
        chosen = (
            select(ranked.c.id)
            .order_by(ranked.c.turn, ranked.c.run_at, ranked.c.id)
            .limit(limit)
            .correlate(None)
            .scalar_subquery()
        )
        candidates = select(J.c.id).where(J.c.id.in_(chosen), claimable).correlate(None)
        if self._db.dialect == "postgresql":
            # Rows another instance is claiming right now are skipped, not waited for.
            candidates = candidates.with_for_update(skip_locked=True)
        lease_until = now + timedelta(seconds=policy.lease_seconds)

        def work(conn: Connection) -> list[Job]:
            if policy.at_most_once:
                # Its process died mid-job: whether it was done is unknown, and doing
                # it again could do it twice.
                conn.execute(
                    update(J)
                    .where(lost)
                    .values(
                        status=str(JobStatus.FAILED),
                        last_error="the process stopped during the attempt; not tried again",
                        lease_until=None,
                        updated_at=now,
                        finished_at=now,
                    )
                )
            rows = conn.execute(
                update(J)
                .where(J.c.id.in_(candidates.scalar_subquery()), claimable)
                .values(
                    status=str(JobStatus.RUNNING),
                    attempts=J.c.attempts + 1,
                    lease_until=lease_until,
                    updated_at=now,
                )
                .returning(
                    J.c.id,
                    J.c.account_id,
                    J.c.subject_id,
                    J.c.payload,
                    J.c.attempts,
                    J.c.created_at,
                )
            ).all()
            claimed = [
                Job(
                    id=row.id,
                    kind=kind,
                    account_id=row.account_id,
                    subject_id=row.subject_id,
                    payload=json.loads(row.payload),
                    attempt=row.attempts,
                    created_at=row.created_at,
                )
                for row in sorted(rows, key=lambda row: row.id)
            ]
            if claimed:
                handler.claimed(conn, claimed, now)
            return claimed

        return await self._db.write(work)

    def _values(
        self, handler: Handler, job: Job, outcome: Outcome, now: datetime
    ) -> dict[str, Any]:
        policy = handler.policy
        common: dict[str, Any] = {"lease_until": None, "updated_at": now, "result": outcome.result}
        if outcome.ok:
            return {**common, "status": str(JobStatus.DONE), "last_error": None, "finished_at": now}
        error = (outcome.error or "failed")[:500]
        retry_at = now + timedelta(seconds=policy.backoff(job.attempt, self._rng))
        too_old = policy.give_up_after is not None and retry_at - job.created_at > (
            policy.give_up_after
        )
        if outcome.final or job.attempt >= policy.max_attempts or too_old:
            return {
                **common,
                "status": str(JobStatus.FAILED),
                "last_error": error,
                "finished_at": now,
            }
        return {**common, "status": str(JobStatus.QUEUED), "last_error": error, "run_at": retry_at}

    async def finish(self, handler: Handler, job: Job, outcome: Outcome) -> bool:
        """Record ``outcome`` of ``job``. False when the claim had been taken over."""
        now = self._clock()
        values = self._values(handler, job, outcome, now)
        status = JobStatus(values["status"])

        def work(conn: Connection) -> bool:
            changed = conn.execute(
                update(J)
                .where(
                    J.c.id == job.id,
                    J.c.attempts == job.attempt,
                    J.c.status == str(JobStatus.RUNNING),
                )
                .values(**values)
            ).rowcount
            if changed != 1:
                return False
            handler.finished(conn, job, status, outcome, now)
            return True

        recorded = await self._db.write(work)
        if not outcome.ok:
            logger.warning(
                "job attempt failed",
                extra={
                    "job": job.id,
                    "kind": str(job.kind),
                    "attempt": job.attempt,
                    "final": status is JobStatus.FAILED,
                    "reason": (outcome.error or "")[:200],
                },
            )
        return recorded

    async def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by kind and state (every kind and state present, zeros included)."""

        def work(conn: Connection) -> list[Any]:
            return list(
                conn.execute(
                    select(J.c.kind, J.c.status, func.count()).group_by(J.c.kind, J.c.status)
                ).all()
            )

        counts = {str(kind): {str(status): 0 for status in JobStatus} for kind in JobKind}
        for kind, status, number in await self._db.read(work):
            counts.setdefault(kind, {})[status] = int(number)
        return counts

    # -- workers ------------------------------------------------------------------------

    @property
    def workers(self) -> dict[JobKind, Worker]:
        return dict(self._workers)

    def worker(self, handler: Handler, *, poll_seconds: float = 1.0) -> Worker:
        worker = Worker(queue=self, handler=handler, poll_seconds=poll_seconds)
        self._workers[handler.kind] = worker
        return worker


class Worker:
    """Performs one kind's jobs in one process: claims as many as it has free slots
    (the policy's ``concurrency``), performs them in parallel, finishes each."""

    def __init__(self, *, queue: JobQueue, handler: Handler, poll_seconds: float) -> None:
        self._queue = queue
        self.handler = handler
        self._poll = poll_seconds
        self._wake: asyncio.Event | None = None

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _perform(self, job: Job) -> None:
        try:
            outcome = await self.handler.perform(job)
        except Exception:
            logger.exception("job failed unexpectedly", extra={"job": job.id})
            outcome = Outcome.retry("an internal error; tried again later")
        try:
            await self._queue.finish(self.handler, job, outcome)
        except Exception:
            # Its lease runs out and the job is claimed again (or failed, at most once).
            logger.exception("job outcome not recorded", extra={"job": job.id})

    async def run(self, stopping: asyncio.Event) -> None:
        """Work until ``stopping`` is set, then finish the jobs in hand."""
        self._wake = wake = asyncio.Event()
        in_flight: set[asyncio.Task[None]] = set()
        failures = 0

        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            wake.set()  # a slot is free

        try:
            while not stopping.is_set():
                wake.clear()  # before the claim, so a job queued meanwhile is not missed
                free = self.handler.policy.concurrency - len(in_flight)
                if free > 0:
                    try:
                        claimed = await self._queue.claim(self.handler, free)
                        failures = 0
                    except Exception:
                        # A database outage must not end the loop: log, back off, retry.
                        failures += 1
                        logger.exception("job claim failed", extra={"kind": str(self.handler.kind)})
                        await wait_for_event(stopping, min(30.0, self._poll * 2**failures))
                        continue
                    for job in claimed:
                        task = asyncio.get_running_loop().create_task(
                            self._perform(job), name=f"paradarum-job-{job.id}"
                        )
                        in_flight.add(task)
                        task.add_done_callback(done)
                    if claimed and len(claimed) == free:
                        # Saturated: wait for a slot; more may be due.
                        await wait_for_any(stopping, wake, seconds=self._poll)
                        continue
                await wait_for_any(stopping, wake, seconds=self._poll)
        finally:
            if in_flight:
                await asyncio.wait(in_flight)
            self._wake = None

    async def run_once(self, limit: int | None = None) -> int:
        """Claim what is due (up to ``limit``, else the concurrency), perform and finish
        it; the number of jobs handled (tests, operator commands)."""
        claimed = await self._queue.claim(self.handler, limit or self.handler.policy.concurrency)
        await asyncio.gather(*(self._perform(job) for job in claimed))
        return len(claimed)

    async def drain(self) -> int:
        """Run passes until nothing is due."""
        total = 0
        while handled := await self.run_once():
            total += handled
        return total
