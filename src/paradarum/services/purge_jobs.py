"""Purge delivery: the job kind that sends queued purges to the cache nodes.

Each ``purge_deliveries`` row is one purge for one cache node, a job of the queue
(:mod:`paradarum.services.jobs`: leases, fencing, backoff with jitter, fairness
across accounts, at least once: a purge sent twice does no harm). An attempt

1. asks the zones again (:func:`paradarum.services.purges.reach`): a zone that left
   the account since the purge was accepted (deleted, suspended, moved to the
   domain's new owner) is no longer reached, and a wildcard's ban leaves alone what
   other zones own now. A purge with nothing left to reach fails at once, unsent;
2. sends the requests (``paradarum.purge_requests``) to its node, deliveries of
   different nodes and purges in parallel;
3. is recorded; the purge's own status follows its deliveries (:meth:`PurgeSender.
   finished`, in the transaction that records the attempt). Node addresses and raw
   errors go to the server log only, a short reason to the customer.

Because the queue is the database, purges accepted while no worker runs (delivery
turned off, the process restarting) are delivered when one starts again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy import Connection, Row, func, select, update

from paradarum.db.engine import Database
from paradarum.db.tables import purge_deliveries, purges
from paradarum.purge_requests import node_requests
from paradarum.services.jobs import Claim, Delivery, JobKind, Outcome, RetryPolicy
from paradarum.services.purges import DeliveryStatus, PurgeKind, PurgeStatus, Reach, reach
from paradarum.services.zones import active_zones

logger = logging.getLogger("paradarum.purge")

D = purge_deliveries
NAME = "purge"


@dataclass(frozen=True, slots=True)
class PurgeJob:
    """One purge for one cache node, as the delivery needs it."""

    purge_id: int
    node: str
    label: str
    kind: PurgeKind
    targets: list[str]
    # The zones (hostnames) the purge is confined to at the cache.
    hosts: list[str]


def load(row: Row[object]) -> PurgeJob:
    return PurgeJob(
        purge_id=row.purge_id,
        node=row.node,
        label=row.label,
        kind=PurgeKind(row.kind),
        targets=list(json.loads(row.targets)),
        hosts=list(json.loads(row.hosts or "[]")),
    )


def current_reach(conn: Connection, claim: Claim[PurgeJob]) -> Reach:
    """What ``claim``'s purge may reach now: its zones that are still active in its
    account, with the ownership rule applied to the zones as they are now."""
    job = claim.job
    zones = [zone for zone in active_zones(conn, claim.account_id) if zone.hostname in job.hosts]
    return reach(conn, kind=job.kind, targets=job.targets, zones=zones)


class PurgeSender:
    """Sends one delivery to its node (``perform``) and rolls the purge's status up
    (``finished``); one HTTP client per worker loop (``session``)."""

    def __init__(self, *, db: Database, timeout_seconds: float, lease_seconds: float) -> None:
        self._db = db
        self._timeout = timeout_seconds
        self._lease = lease_seconds
        self._http: httpx.AsyncClient | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        if self._http is not None:  # a pass inside the loop's session
            yield None
            return
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, trust_env=False
        ) as http:
            self._http = http
            try:
                yield None
            finally:
                self._http = None

    async def perform(self, claim: Claim[PurgeJob]) -> Outcome:
        """Send every request of ``claim``'s delivery to its node."""
        assert self._http is not None, "perform runs inside session()"
        job = claim.job
        deadline = time.monotonic() + self._lease / 2
        now = await self._db.read(current_reach, claim)
        if not (now.targets if job.kind == PurgeKind.URLS else now.hosts):
            return Outcome.fail("its zones are no longer this account's", "not sent: no zone left")
        if now.outside or len(now.hosts) < len(job.hosts):
            logger.info(
                "purge narrowed to the zones the account still holds",
                extra={"purge_id": job.purge_id, "label": job.label},
            )
        try:
            requests = node_requests(
                job.node, job.kind, now.targets, hosts=now.hosts, excepts=now.excepts
            )
        except (ValueError, httpx.InvalidURL) as exc:
            return Outcome.retry("the purge could not be sent", f"{job.node}: not sent: {exc}")
        for request in requests:
            if time.monotonic() > deadline:
                return Outcome.retry(
                    "the cache node answered too slowly",
                    f"{job.node}: gave up after half the lease",
                )
            try:
                response = await self._http.request(
                    request.method, request.url, headers=request.headers
                )
            except httpx.TimeoutException:
                return Outcome.retry(
                    f"no answer within {self._timeout:g} s",
                    f"{job.node}: timed out after {self._timeout:g}s",
                )
            except httpx.HTTPError as exc:
                return Outcome.retry(
                    "the cache node could not be reached",
                    f"{job.node}: {type(exc).__name__}: {exc}",
                )
            if not response.is_success:
                return Outcome.retry(
                    f"the cache node answered HTTP {response.status_code}",
                    f"{job.node}: HTTP {response.status_code} {response.reason_phrase}".strip(),
                )
        return Outcome.ok()

    @staticmethod
    def claimed(conn: Connection, claims: list[Claim[PurgeJob]], now: datetime) -> None:
        purge_ids = sorted({claim.job.purge_id for claim in claims})
        conn.execute(
            update(purges)
            .where(purges.c.id.in_(purge_ids), purges.c.status == str(PurgeStatus.QUEUED))
            .values(status=str(PurgeStatus.RUNNING))
        )

    def finished(
        self, conn: Connection, claim: Claim[PurgeJob], outcome: Outcome, now: datetime
    ) -> None:
        # Row locks in the same order as claims take them: the delivery, then its purge.
        purge_id = claim.job.purge_id
        lock = select(purges.c.id).where(purges.c.id == purge_id)
        if self._db.dialect == "postgresql":
            # Serialise the status roll-up of one purge: the last delivery to
            # finish must see every other delivery's final state.
            lock = lock.with_for_update()
        conn.execute(lock)
        counts: dict[str, int] = {
            str(status): int(count)
            for status, count in conn.execute(
                select(D.c.status, func.count())
                .where(D.c.purge_id == purge_id)
                .group_by(D.c.status)
            ).all()
        }
        if counts.get(DeliveryStatus.QUEUED, 0):
            status, completed = PurgeStatus.RUNNING, None
        else:
            failed = counts.get(DeliveryStatus.FAILED, 0)
            status, completed = (PurgeStatus.FAILED if failed else PurgeStatus.DONE), now
        conn.execute(
            update(purges)
            .where(purges.c.id == purge_id)
            .values(status=str(status), completed_at=completed)
        )


def purge_kind(
    *,
    db: Database,
    max_attempts: int = 5,
    retry_seconds: float = 2.0,
    retry_max_seconds: float = 300.0,
    timeout_seconds: float = 10.0,
    lease_seconds: float = 120.0,
    poll_seconds: float = 1.0,
    batch_size: int = 20,
    concurrency: int = 8,
) -> JobKind[PurgeJob]:
    """Purge delivery as a job kind (``PARADARUM_PURGE_*`` set the policy)."""
    sender = PurgeSender(db=db, timeout_seconds=timeout_seconds, lease_seconds=lease_seconds)
    return JobKind(
        name=NAME,
        table=D,
        account=purges.c.account_id,
        source=D.join(purges, purges.c.id == D.c.purge_id),
        columns=(
            D.c.purge_id,
            D.c.node,
            D.c.label,
            purges.c.kind,
            purges.c.targets,
            purges.c.hosts,
        ),
        load=load,
        created_at=purges.c.created_at,
        updated_at=D.c.updated_at,
        policy=RetryPolicy(
            base_seconds=retry_seconds, max_seconds=retry_max_seconds, max_attempts=max_attempts
        ),
        delivery=Delivery.AT_LEAST_ONCE,
        perform=sender.perform,
        claimed=sender.claimed,
        finished=sender.finished,
        session=sender.session,
        lease_seconds=lease_seconds,
        concurrency=concurrency,
        batch_size=batch_size,
        poll_seconds=poll_seconds,
    )
