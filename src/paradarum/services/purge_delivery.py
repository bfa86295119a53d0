"""Purge delivery: the job-queue handler that sends a purge to one cache node.

A purge queues one job (``services/queue.py``, kind ``purge``) per configured cache
node; the queue claims them with a lease, accounts in turn, and retries failures
with backoff until ``PARADARUM_PURGE_MAX_ATTEMPTS``. This handler

1. on **claim**, marks the purge ``running``;
2. **sends** the node's requests (``paradarum.purge_requests``) within half the
   lease, so a slow node cannot outlive the claim, after asking the zones again
   (:func:`paradarum.services.purges.reach`): a zone that left the account since
   the purge was accepted (deleted, suspended, moved to the domain's new owner) is
   no longer reached, and a wildcard's ban leaves alone what other zones own now.
   A purge with nothing left to reach fails at once, unsent;
3. on **finish** (in the queue's fenced transaction), rolls the purge's status up
   from its nodes': the last node to answer makes it ``done`` or ``failed``.

A claim whose process died runs out and the job is claimed again: a purge is
idempotent, so sending it twice is harmless, and the fence on ``attempts`` keeps a
late worker from overwriting the newer attempt. Node addresses and raw errors go
to the server log only; customers see ``node-1``, ``node-2``… and a short reason.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import Connection, func, select, update

from paradarum.db.engine import Database
from paradarum.db.tables import jobs, purges
from paradarum.purge_requests import node_requests
from paradarum.services.purges import PurgeKind, PurgeStatus, Reach, reach
from paradarum.services.queue import Job, JobKind, JobStatus, Outcome, Policy
from paradarum.services.zones import active_zones

logger = logging.getLogger("paradarum.purge")


@dataclass(frozen=True, slots=True)
class Claim:
    """One node's part of a purge, as the job carries it."""

    purge_id: int
    account_id: int
    node: str
    label: str
    kind: str
    targets: list[str]
    # The zones (hostnames) the purge is confined to at the cache.
    hosts: list[str]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a node could not be purged: ``reason`` for the customer, ``detail`` for
    the operator's log."""

    reason: str
    detail: str
    # Retrying cannot help (the purge's zones are no longer the account's).
    final: bool = False


def current_reach(conn: Connection, claim: Claim) -> Reach:
    """What ``claim``'s purge may reach now: its zones that are still active in its
    account, with the ownership rule applied to the zones as they are now."""
    zones = [zone for zone in active_zones(conn, claim.account_id) if zone.hostname in claim.hosts]
    return reach(conn, kind=PurgeKind(claim.kind), targets=claim.targets, zones=zones)


class PurgeDelivery:
    """The ``purge`` kind of job."""

    kind = JobKind.PURGE

    def __init__(
        self,
        *,
        db: Database,
        max_attempts: int = 5,
        retry_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
        timeout_seconds: float = 10.0,
        lease_seconds: float = 120.0,
        concurrency: int = 8,
    ) -> None:
        self._db = db
        self._timeout = timeout_seconds
        self.policy = Policy(
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            retry_max_seconds=retry_max_seconds,
            lease_seconds=lease_seconds,
            concurrency=concurrency,
        )
        self._tls: ssl.SSLContext | None = None

    def _client(self) -> httpx.AsyncClient:
        # A client per job (it lives on the loop that performs it); the TLS context,
        # the costly part, is made once.
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, trust_env=False, verify=self._tls
        )

    def claimed(self, conn: Connection, jobs: Sequence[Job], now: datetime) -> None:
        purge_ids = sorted({job.subject_id for job in jobs if job.subject_id is not None})
        if purge_ids:
            conn.execute(
                update(purges)
                .where(purges.c.id.in_(purge_ids), purges.c.status == str(PurgeStatus.QUEUED))
                .values(status=str(PurgeStatus.RUNNING))
            )

    async def perform(self, job: Job) -> Outcome:
        assert job.subject_id is not None
        row = await self._db.read(
            lambda conn: conn.execute(
                select(purges.c.account_id, purges.c.kind, purges.c.targets, purges.c.hosts).where(
                    purges.c.id == job.subject_id
                )
            ).first()
        )
        if row is None:
            return Outcome.fail("the purge no longer exists")
        claim = Claim(
            purge_id=job.subject_id,
            account_id=row.account_id,
            node=job.payload["node"],
            label=job.payload["label"],
            kind=row.kind,
            targets=list(json.loads(row.targets)),
            hosts=list(json.loads(row.hosts or "[]")),
        )
        async with self._client() as http:
            failure = await self.send(http, claim)
        if failure is None:
            return Outcome.done()
        logger.warning(
            "purge delivery failed",
            extra={
                "purge_id": job.subject_id,
                "node": claim.node,
                "label": claim.label,
                "attempt": job.attempt,
                "reason": failure.detail[:500],
            },
        )
        if failure.final:
            return Outcome.fail(failure.reason)
        return Outcome.retry(failure.reason)

    async def send(self, http: httpx.AsyncClient, claim: Claim) -> Failure | None:
        """Send every request of ``claim``; None on success."""
        deadline = time.monotonic() + self.policy.lease_seconds / 2
        now = await self._db.read(current_reach, claim)
        if not (now.targets if claim.kind == PurgeKind.URLS else now.hosts):
            return Failure(
                "its zones are no longer this account's", "not sent: no zone left", final=True
            )
        if now.outside or len(now.hosts) < len(claim.hosts):
            logger.info(
                "purge narrowed to the zones the account still holds",
                extra={"purge_id": claim.purge_id, "label": claim.label},
            )
        try:
            requests = node_requests(
                claim.node, claim.kind, now.targets, hosts=now.hosts, excepts=now.excepts
            )
        except (ValueError, httpx.InvalidURL) as exc:
            return Failure("the purge could not be sent", f"not sent: {exc}")
        for request in requests:
            if time.monotonic() > deadline:
                return Failure("the cache node answered too slowly", "gave up after half the lease")
            try:
                response = await http.request(request.method, request.url, headers=request.headers)
            except httpx.TimeoutException:
                return Failure(
                    f"no answer within {self._timeout:g} s", f"timed out after {self._timeout:g}s"
                )
            except httpx.HTTPError as exc:
                return Failure(
                    "the cache node could not be reached", f"{type(exc).__name__}: {exc}"
                )
            if not response.is_success:
                return Failure(
                    f"the cache node answered HTTP {response.status_code}",
                    f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                )
        return None

    def finished(
        self, conn: Connection, job: Job, status: JobStatus, outcome: Outcome, now: datetime
    ) -> None:
        """Roll the purge's status up from its nodes' (same transaction as the outcome)."""
        if job.subject_id is None:
            return
        lock = select(purges.c.id).where(purges.c.id == job.subject_id)
        if self._db.dialect == "postgresql":
            # Serialise the status roll-up of one purge: the last delivery to
            # finish must see every other delivery's final state.
            lock = lock.with_for_update()
        conn.execute(lock)
        counts: dict[str, int] = {
            str(state): int(count)
            for state, count in conn.execute(
                select(jobs.c.status, func.count())
                .where(jobs.c.kind == str(JobKind.PURGE), jobs.c.subject_id == job.subject_id)
                .group_by(jobs.c.status)
            ).all()
        }
        if counts.get(JobStatus.QUEUED, 0) or counts.get(JobStatus.RUNNING, 0):
            rolled, completed = PurgeStatus.RUNNING, None
        else:
            failed = counts.get(JobStatus.FAILED, 0)
            rolled, completed = (PurgeStatus.FAILED if failed else PurgeStatus.DONE), now
        conn.execute(
            update(purges)
            .where(purges.c.id == job.subject_id)
            .values(status=str(rolled), completed_at=completed)
        )
