"""The job queue: "do this later, reliably", once for every kind of job.

Purge delivery, email and webhooks all keep their jobs as rows of their own table
(``purge_deliveries``, ``notifications``, ``webhook_deliveries``), with their own
columns for what the job is and, shared by all, ``status``, ``attempts``,
``next_attempt_at``, ``claimed_until`` and ``last_error``. The rows are inserted in
the transaction of the event they are about, so a job exists exactly when its event
happened; the queue is the database, so jobs survive restarts and ``kill -9``, and
any number of processes and instances may work one table at once.

This module owns, once, what every kind needs (why it is ours and not a library's:
``docs/jobs.md``):

* **claim with a lease**: a due row (queued, ``next_attempt_at`` past, no live
  claim) is claimed by a compare-and-swap on ``attempts``: ``UPDATE ... SET attempts
  = n + 1, claimed_until = now + lease WHERE id = ? AND attempts = n AND <still
  due>``. Of several workers racing for a row exactly one changes it. A worker that
  dies leaves a claim that simply expires;
* **a fenced record**: the outcome is written ``WHERE attempts = <the claim's>``,
  so a worker whose lease expired and was taken over cannot overwrite the newer
  attempt (:meth:`Worker.record` answers False);
* **retries with exponential backoff and jitter** (:class:`RetryPolicy`), until the
  policy gives up (a number of attempts, or a deadline after the row was made),
  then the **final failed state** with a short reason in ``last_error``;
* **at least once or at most once**, per kind (:class:`Delivery`). At least once:
  an expired lease makes the row due again (a purge sent twice does no harm). At
  most once: the row is marked with the kind's *running* status when claimed, and
  a row found running with its lease expired ends as failed, "outcome unknown",
  never performed a second time (an email must not arrive twice);
* **fairness across accounts**: rows are claimed round-robin, each account's oldest
  due row first, then each one's second..., and between claims the turn moves on
  to the next account, so one account's flood never delays another's jobs;
* **bounded concurrency** per kind (``concurrency`` attempts at once in a process)
  and a lease that starts when the attempt does: a row is claimed only when a slot
  is free to perform it;
* **one idle wait**: a worker that found nothing sleeps until woken
  (:meth:`Worker.wake`, called by whoever just queued a job in this process), told
  to stop, or ``poll_seconds`` pass (jobs queued by other processes, retries);
* **counts by state** per kind (:meth:`JobQueue.counts`), for readiness and the
  operator's ``paradarum jobs``.

Adding a kind
-------------
A kind is a declaration, :class:`JobKind`, registered with :meth:`JobQueue.add`,
which answers the kind's :class:`Worker`; the runtime registers its
:meth:`Worker.run` with :class:`paradarum.background.Background`::

    webhook = JobKind[WebhookJob](
        name="webhook",
        table=webhook_deliveries,                    # status, attempts, next_attempt_at,
                                                     # claimed_until, last_error
        account=webhook_endpoints.c.account_id,      # whose job it is (fairness)
        source=webhook_deliveries.join(webhook_endpoints),  # where account and columns are
        columns=(webhook_endpoints.c.url, webhook_deliveries.c.body),
        load=lambda row: WebhookJob(url=row.url, body=row.body),
        created_at=webhook_deliveries.c.created_at,  # for give_up_after
        policy=RetryPolicy(base_seconds=30, max_seconds=3600,
                           give_up_after=timedelta(hours=24)),
        delivery=Delivery.AT_LEAST_ONCE,
        perform=sender.perform,        # async (Claim[WebhookJob]) -> Outcome
        finished=sender.finished,      # (conn, claim, outcome, now) -> None, optional
        session=sender.session,        # optional: e.g. an httpx client per loop
    )
    worker = jobs.add(webhook)
    background.add_loop("webhooks", worker.run)

``perform`` does the work outside any transaction and answers an
:class:`Outcome`: ``Outcome.ok()``, ``Outcome.retry(reason)`` (the policy decides
whether another attempt follows or the row fails for good) or
``Outcome.fail(reason)`` (final at once). ``reason`` goes to ``last_error``, where
customers may read it: a short sentence, never an address or a secret; ``detail``
goes to the server log only. An exception raised by ``perform`` is logged and
counts as a retry (at most once: a final "outcome unknown").

``finished(conn, claim, outcome, now)`` runs in the transaction that records
every attempt's outcome (retries too: ``outcome.result``), only when the fence
held: the purge's status roll-up, the security-log entry of an email. The
outcome it sees is the resolved one: a retry the policy refused is a failure.
``claimed(conn, claims, now)`` runs in the claiming transaction; ``values(claim,
outcome, now)`` adds columns to the UPDATE that records the outcome (never update
the job's row again in ``finished``: see the field's comment).

Column names ``job_id``, ``job_attempts``, ``job_due``, ``job_account``,
``job_created`` and ``job_turn`` are the engine's; ``columns`` must not use them.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Row,
    Table,
    and_,
    case,
    func,
    null,
    or_,
    select,
    update,
)

from paradarum.background import wait_for_any, wait_for_event
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.types import as_utc
from paradarum.errors import Unavailable

logger = logging.getLogger("paradarum.jobs")

T = TypeVar("T")

# A source of chance in [0, 1): random.random, or a fixed value where tests freeze time.
Chance = Callable[[], float]

# What last_error says of an at-most-once job whose worker vanished mid-attempt.
OUTCOME_UNKNOWN = "outcome unknown: the process stopped during the attempt; not tried again"
# What last_error says of an at-least-once job whose last allowed attempt never ended.
NEVER_FINISHED = "gave up: its last attempt never finished"
ERROR_MAX = 500


class Delivery(StrEnum):
    AT_LEAST_ONCE = "at-least-once"
    AT_MOST_ONCE = "at-most-once"


class JobState(StrEnum):
    """Where a row stands, the same words for every kind (counts, the CLI)."""

    QUEUED = "queued"  # waiting for its first attempt or a retry
    RUNNING = "running"  # claimed: an attempt is under way (its lease is live)
    DONE = "done"
    FAILED = "failed"


class Result(StrEnum):
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended. ``reason`` is stored (customers may read it), ``detail``
    only logged; ``status``: a done status of the kind's own when it has several
    (email: ``recorded`` without a mail server)."""

    result: Result
    reason: str | None = None
    detail: str | None = None
    status: str | None = None
    # What perform wants finished() to see (email: the subject it sent); never stored.
    data: Any = None

    @classmethod
    def ok(cls, status: str | None = None, *, data: Any = None) -> Outcome:
        return cls(Result.DONE, status=status, data=data)

    @classmethod
    def retry(cls, reason: str, detail: str | None = None, *, data: Any = None) -> Outcome:
        return cls(Result.RETRY, reason=reason, detail=detail, data=data)

    @classmethod
    def fail(cls, reason: str, detail: str | None = None, *, data: Any = None) -> Outcome:
        return cls(Result.FAILED, reason=reason, detail=detail, data=data)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again: ``base_seconds`` doubling per attempt up to ``max_seconds``,
    with "equal jitter" (a delay of half to all of that), until ``max_attempts`` were
    made or the next attempt would fall later than ``give_up_after`` past the row's
    creation.

    Jitter, because failures come in waves (a cache node restarts, the mail relay is
    down for a minute): without it every job that failed together retries together,
    and hits the recovering service all at once, wave after wave. Downward only, so
    ``max_seconds`` stays the longest wait.
    """

    base_seconds: float
    max_seconds: float
    max_attempts: int | None = None
    give_up_after: timedelta | None = None
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts is None and self.give_up_after is None:
            raise ValueError("a retry policy must give up: max_attempts or give_up_after")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction of the delay, 0 to 1")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after attempt number ``attempt`` (1 for the first) failed."""
        return float(min(self.max_seconds, self.base_seconds * 2 ** min(attempt - 1, 60)))

    def delay(self, attempt: int, chance: float) -> float:
        """The wait after attempt ``attempt`` failed, for ``chance`` in [0, 1)."""
        ceiling = self.ceiling(attempt)
        return ceiling - ceiling * self.jitter * chance

    def retry_at(
        self, *, attempt: int, now: datetime, created_at: datetime | None, chance: float
    ) -> datetime | None:
        """When to try again after attempt ``attempt`` failed at ``now``; None: give up."""
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return None
        at = now + timedelta(seconds=self.delay(attempt, chance))
        if (
            self.give_up_after is not None
            and created_at is not None
            and at > created_at + self.give_up_after
        ):
            return None
        return at


@dataclass(frozen=True, slots=True)
class Statuses:
    """The kind's words for its rows' ``status``. ``running``: the status of a row
    being performed, required for (and only used by) at-most-once kinds; at least
    once, a claimed row stays ``queued`` with a live ``claimed_until``."""

    queued: str = "queued"
    done: tuple[str, ...] = ("done",)
    failed: str = "failed"
    running: str | None = None


@dataclass(frozen=True, slots=True)
class Claim(Generic[T]):
    """The right to perform one row, valid while its ``attempts`` equals ``attempt``."""

    id: int
    account_id: int
    attempt: int
    created_at: datetime | None
    job: T


@dataclass(frozen=True, kw_only=True)
class JobKind(Generic[T]):
    """One kind of job, declared (see the module docstring)."""

    name: str
    table: Table
    account: ColumnElement[Any]
    columns: Sequence[ColumnElement[Any]]
    load: Callable[[Row[Any]], T]
    perform: Callable[[Claim[T]], Awaitable[Outcome]]
    policy: RetryPolicy
    delivery: Delivery = Delivery.AT_LEAST_ONCE
    statuses: Statuses = field(default_factory=Statuses)
    source: FromClause | None = None
    created_at: ColumnElement[Any] | None = None
    # A column set to the time of every change (claim, outcome), if the table has one.
    updated_at: ColumnElement[Any] | None = None
    finished: Callable[[Connection, Claim[T], Outcome, datetime], None] | None = None
    # More columns written with an attempt's (resolved) outcome, in the same UPDATE:
    # on PostgreSQL, a second UPDATE of a row this transaction already changed takes
    # a key-share lock on the row its foreign key names, which deadlocks against a
    # finished() that locks that row (the purge's roll-up).
    values: Callable[[Claim[T], Outcome, datetime], Mapping[str, Any]] | None = None
    claimed: Callable[[Connection, list[Claim[T]], datetime], None] | None = None
    # Entered around a worker's loop (or pass): what perform needs open, e.g. a client.
    session: Callable[[], AbstractAsyncContextManager[object]] | None = None
    lease_seconds: float = 120.0
    concurrency: int = 8
    batch_size: int = 20
    poll_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.delivery is Delivery.AT_MOST_ONCE and self.statuses.running is None:
            raise ValueError(f"{self.name}: at most once needs a running status")
        if self.concurrency < 1 or self.batch_size < 1:
            raise ValueError(f"{self.name}: concurrency and batch_size are at least 1")

    @property
    def running(self) -> str | None:
        """The status of a row being performed: at most once only (at least once, a
        claimed row stays queued, with a live ``claimed_until``)."""
        return self.statuses.running if self.delivery is Delivery.AT_MOST_ONCE else None

    @property
    def from_clause(self) -> FromClause:
        return self.source if self.source is not None else self.table

    def due(self, now: datetime) -> tuple[ColumnElement[bool], ...]:
        """Claimable at ``now``: queued, due, and no live claim."""
        c = self.table.c
        return (
            c.status == self.statuses.queued,
            c.next_attempt_at <= now,
            or_(c.claimed_until.is_(None), c.claimed_until <= now),
        )

    def abandoned(self, now: datetime) -> ColumnElement[bool]:
        """At most once: running, with its lease over (whoever ran it stopped)."""
        c = self.table.c
        return and_(c.status == self.running, c.claimed_until <= now)

    def state(self, now: datetime) -> ColumnElement[str]:
        """The row's :class:`JobState`, in SQL (for counts)."""
        c = self.table.c
        running = [(and_(c.status == self.statuses.queued, c.claimed_until > now), "running")]
        if self.running is not None:
            running.append((c.status == self.running, "running"))
        return case(
            *running,
            (c.status == self.statuses.queued, "queued"),
            (c.status.in_(self.statuses.done), "done"),
            (c.status == self.statuses.failed, "failed"),
            else_=c.status,
        )


class Worker(Generic[T]):
    """Claims, performs and records the jobs of one kind; :meth:`run` is its loop."""

    def __init__(self, kind: JobKind[T], *, db: Database, clock: Clock, chance: Chance) -> None:
        self.kind = kind
        self._db = db
        self._clock = clock
        self._chance = chance
        self._wake: asyncio.Event | None = None
        # The account served last: the next claim starts with the account after it.
        self._turn = 0

    # -- the loop ---------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Work until ``stopping`` is set; :meth:`wake` ends an idle wait at once."""
        self._wake = asyncio.Event()
        failures = 0
        try:
            async with self._session():
                while not stopping.is_set():
                    # Cleared before the pass, so a job queued during the pass is not missed.
                    self._wake.clear()
                    try:
                        handled = await self._pass(stopping)
                        failures = 0
                    except Exception:
                        # A database outage must not end the loop: log, back off, retry.
                        failures += 1
                        logger.exception("job pass failed", extra={"kind": self.kind.name})
                        await wait_for_event(
                            stopping, min(30.0, self.kind.poll_seconds * 2**failures)
                        )
                        continue
                    if handled == 0:
                        await wait_for_any(stopping, self._wake, seconds=self.kind.poll_seconds)
        finally:
            self._wake = None

    def wake(self) -> None:
        """Look for work now rather than at the next poll (a job was just queued)."""
        if self._wake is not None:
            self._wake.set()

    async def run_once(self) -> int:
        """One pass: claim and perform up to a batch of due rows, ``concurrency`` at a
        time, and record each outcome. Returns the number of rows handled."""
        async with self._session():
            return await self._pass(None)

    def _session(self) -> AbstractAsyncContextManager[object]:
        return self.kind.session() if self.kind.session is not None else _nothing()

    async def _pass(self, stopping: asyncio.Event | None) -> int:
        kind = self.kind
        handled = 0
        running: set[asyncio.Task[None]] = set()
        more = True
        try:
            while True:
                free = min(kind.concurrency - len(running), kind.batch_size - handled)
                if more and free > 0 and not (stopping is not None and stopping.is_set()):
                    # Claimed only when a slot is free: a lease starts with its attempt.
                    claims = await self.claim(free)
                    more = len(claims) == free
                    handled += len(claims)
                    for claim in claims:
                        running.add(asyncio.create_task(self._attempt(claim)))
                if not running:
                    return handled
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if running:
                await asyncio.wait(running)

    async def _attempt(self, claim: Claim[T]) -> None:
        limit = self.kind.policy.max_attempts
        try:
            if limit is not None and claim.attempt > limit:
                # Only expired leases claim a row past its last attempt: a job whose
                # every attempt killed its worker must not go round for ever.
                outcome = Outcome.fail(NEVER_FINISHED)
            else:
                outcome = await self.kind.perform(claim)
        except Exception as exc:
            logger.exception("job attempt raised", extra={"kind": self.kind.name, "job": claim.id})
            reason = "an unexpected error"
            if self.kind.delivery is Delivery.AT_MOST_ONCE:
                outcome = Outcome.fail(f"{reason}; not tried again", detail=repr(exc))
            else:
                outcome = Outcome.retry(reason, detail=repr(exc))
        try:
            await self.record(claim, outcome)
        except Exception:
            # The claim stays until its lease ends; then the kind's rule applies.
            logger.exception(
                "job outcome not recorded", extra={"kind": self.kind.name, "job": claim.id}
            )

    # -- claiming -----------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Claim[T]]:
        """Claim up to ``limit`` due rows, round-robin across accounts."""
        now = self._clock()
        kind = self.kind
        t = kind.table
        # A plain read first, so that an idle poll never takes SQLite's write lock.
        probes = [select(t.c.id).where(*kind.due(now)).limit(1)]
        if kind.delivery is Delivery.AT_MOST_ONCE:
            probes.append(select(t.c.id).where(kind.abandoned(now)).limit(1))

        def anything(conn: Connection) -> bool:
            return any(conn.execute(probe).first() is not None for probe in probes)

        if not await self._db.read(anything):
            return []
        return await self._db.write(self._claim, now, limit, self._turn)

    def _claim(self, conn: Connection, now: datetime, limit: int, after: int) -> list[Claim[T]]:
        kind = self.kind
        t = kind.table
        if kind.delivery is Delivery.AT_MOST_ONCE:
            # Its worker stopped mid-attempt: whether it took effect is unknown, and
            # performing it again could do it twice.
            given_up = conn.execute(
                update(t)
                .where(kind.abandoned(now))
                .values(
                    status=kind.statuses.failed,
                    claimed_until=None,
                    last_error=OUTCOME_UNKNOWN,
                    **self._stamp(now),
                )
            ).rowcount
            if given_up:
                logger.warning(
                    "jobs abandoned mid-attempt failed, not retried",
                    extra={"kind": kind.name, "count": given_up},
                )
        due = kind.due(now)
        created = kind.created_at if kind.created_at is not None else null()
        ranked = (
            select(
                t.c.id.label("job_id"),
                t.c.attempts.label("job_attempts"),
                t.c.next_attempt_at.label("job_due"),
                kind.account.label("job_account"),
                created.label("job_created"),
                *kind.columns,
                func.row_number()
                .over(partition_by=kind.account, order_by=(t.c.next_attempt_at, t.c.id))
                .label("job_turn"),
            )
            .select_from(kind.from_clause)
            .where(*due)
            .subquery()
        )
        r = ranked.c
        query = (
            select(ranked)
            .order_by(
                r.job_turn,
                # Round-robin: the accounts after the last one served come first.
                case((r.job_account > after, 0), else_=1),
                r.job_account,
                r.job_due,
                r.job_id,
            )
            .limit(limit)
        )
        lease_until = now + timedelta(seconds=kind.lease_seconds)
        claimed: dict[str, Any] = {"claimed_until": lease_until, **self._stamp(now)}
        if kind.running is not None:
            claimed["status"] = kind.running
        claims: list[Claim[T]] = []
        for row in conn.execute(query).all():
            changed = conn.execute(
                update(t)
                .where(t.c.id == row.job_id, t.c.attempts == row.job_attempts, *due)
                .values(attempts=row.job_attempts + 1, **claimed)
            ).rowcount
            if changed == 1:
                claims.append(
                    Claim(
                        id=row.job_id,
                        account_id=row.job_account,
                        attempt=row.job_attempts + 1,
                        created_at=as_utc(row.job_created),
                        job=kind.load(row),
                    )
                )
        if claims:
            self._turn = claims[-1].account_id
            if kind.claimed is not None:
                kind.claimed(conn, claims, now)
        return claims

    def _stamp(self, now: datetime) -> dict[str, datetime]:
        column = self.kind.updated_at
        return {column.key: now} if column is not None and column.key else {}

    # -- recording ----------------------------------------------------------------------

    async def record(self, claim: Claim[T], outcome: Outcome) -> bool:
        """Record how ``claim``'s attempt ended. False when the claim no longer held
        (it expired and another worker took the row over, or, at most once, the row
        was given up)."""
        now = self._clock()
        resolved = outcome
        retry_at = None
        if outcome.result is Result.RETRY:
            retry_at = self.kind.policy.retry_at(
                attempt=claim.attempt,
                now=now,
                created_at=claim.created_at,
                chance=self._chance(),
            )
            if retry_at is None:
                resolved = replace(
                    outcome, result=Result.FAILED, reason=outcome.reason or "gave up"
                )
        recorded = await self._db.write(self._record, claim, resolved, retry_at, now)
        if outcome.result is not Result.DONE:
            logger.warning(
                "job attempt failed",
                extra={
                    "kind": self.kind.name,
                    "job": claim.id,
                    "attempt": claim.attempt,
                    "final": resolved.result is Result.FAILED,
                    "reason": (outcome.detail or outcome.reason or "")[:ERROR_MAX],
                    "recorded": recorded,
                },
            )
        return recorded

    def _record(
        self,
        conn: Connection,
        claim: Claim[T],
        outcome: Outcome,
        retry_at: datetime | None,
        now: datetime,
    ) -> bool:
        kind = self.kind
        t = kind.table
        statuses = kind.statuses
        error = outcome.reason[:ERROR_MAX] if outcome.reason else None
        values: dict[str, Any]
        if outcome.result is Result.DONE:
            values = {
                "status": str(outcome.status or statuses.done[0]),
                "last_error": None,
                "next_attempt_at": None,
            }
        elif outcome.result is Result.RETRY:
            values = {"status": statuses.queued, "last_error": error, "next_attempt_at": retry_at}
        else:
            values = {"status": statuses.failed, "last_error": error}
        if kind.values is not None:
            values.update(kind.values(claim, outcome, now))
        changed = conn.execute(
            update(t)
            .where(
                t.c.id == claim.id,
                t.c.attempts == claim.attempt,
                t.c.status == (kind.running or statuses.queued),
            )
            .values(claimed_until=None, **values, **self._stamp(now))
        ).rowcount
        if changed != 1:
            return False
        if kind.finished is not None:
            kind.finished(conn, claim, outcome, now)
        return True

    # -- counts -------------------------------------------------------------------------

    def count(self, conn: Connection, now: datetime) -> dict[JobState, int]:
        """How many rows of this kind are in each state at ``now``."""
        state = self.kind.state(now).label("state")
        rows = conn.execute(select(state, func.count()).group_by(state)).all()
        counts = {each: 0 for each in JobState}
        for name, number in rows:
            if name in counts:
                counts[JobState(name)] += int(number)
        return counts


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield None


class JobQueue:
    """The process's job kinds and their workers; counts across kinds."""

    # Readiness may be asked every second by every load balancer; counting a table
    # of every job ever done is not free, so counts are reused for a few seconds.
    COUNTS_MAX_AGE = 5.0

    def __init__(self, *, db: Database, clock: Clock, chance: Chance = random.random) -> None:
        self._db = db
        self._clock = clock
        self._chance = chance
        self._workers: dict[str, Worker[Any]] = {}
        self._counted: tuple[float, dict[str, dict[JobState, int]]] | None = None

    def add(self, kind: JobKind[T]) -> Worker[T]:
        """Register ``kind``; its worker (whose ``run`` the runtime makes a loop)."""
        if kind.name in self._workers:
            raise ValueError(f"a job kind named {kind.name} exists already")
        worker = Worker(kind, db=self._db, clock=self._clock, chance=self._chance)
        self._workers[kind.name] = worker
        return worker

    def __getitem__(self, name: str) -> Worker[Any]:
        return self._workers[name]

    @property
    def names(self) -> list[str]:
        return list(self._workers)

    def count(self, conn: Connection) -> dict[str, dict[JobState, int]]:
        now = self._clock()
        return {name: worker.count(conn, now) for name, worker in self._workers.items()}

    async def counts(self, *, max_age: float = 0.0) -> Mapping[str, Mapping[JobState, int]]:
        """Rows by kind and state; reused when read less than ``max_age`` seconds ago."""
        if self._counted is not None and time.monotonic() - self._counted[0] < max_age:
            return self._counted[1]
        counts = await self._db.read(self.count)
        self._counted = (time.monotonic(), counts)
        return counts

    async def snapshot(self) -> Mapping[str, Mapping[JobState, int]] | None:
        """Counts for readiness: at most ``COUNTS_MAX_AGE`` seconds old, or None when
        they cannot be read within a second. Readiness is about this process serving;
        it must not wait on the general database threads, nor fail for a count."""
        try:
            return await asyncio.wait_for(self.counts(max_age=self.COUNTS_MAX_AGE), 1.0)
        except (TimeoutError, Unavailable):
            return None  # the database's trouble is logged where it happened
        except Exception:
            logger.exception("job counts could not be read")
            return None
