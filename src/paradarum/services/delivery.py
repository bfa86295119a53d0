"""Purge delivery: send queued purges to the cache nodes, in the background.

Each ``purge_deliveries`` row is one purge for one cache node. The delivery loop
(one per process, a background job of the runtime) repeatedly

1. **claims** due rows: ``status = 'queued'``, ``next_attempt_at <= now`` and no
   live claim (``claimed_until`` empty or past), taking them **round-robin across
   accounts** (each account's oldest due row first, then each account's second…),
   so one account's flood of purges never delays another's. A claim is a
   compare-and-swap on ``attempts``: ``UPDATE ... SET attempts = n + 1,
   claimed_until = now + lease WHERE id = ? AND attempts = n AND <still
   claimable>``. Of several processes or instances racing for a row exactly one
   changes it, so no delivery is sent twice by two live workers. A worker that
   dies mid-delivery leaves a claim that simply expires, and the row is picked up
   again.
2. **sends** the requests (``paradarum.purge_requests``), nodes in parallel, after
   asking the zones again (:func:`paradarum.services.purges.reach`): a zone that left
   the account since the purge was accepted (deleted, suspended, moved to the
   domain's new owner) is no longer reached, and a wildcard's ban leaves alone what
   other zones own now. A purge with nothing left to reach fails at once, unsent.
3. **records** the answer, fenced by the same ``attempts`` value: a worker whose
   claim expired and was taken over cannot overwrite the newer attempt. Failures
   are retried with exponential backoff until ``max_attempts``, then ``failed``
   with a short reason. The purge's own status follows its deliveries. Node
   addresses and raw errors go to the server log only.

Because the queue is the database, purges accepted while no loop runs (delivery
turned off, the process restarting) are delivered when a loop starts again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, func, or_, select, update

from paradarum.background import wait_for_any, wait_for_event
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import purge_deliveries, purges
from paradarum.purge_requests import node_requests
from paradarum.services.purges import DeliveryStatus, PurgeKind, PurgeStatus, Reach, reach
from paradarum.services.zones import active_zones

logger = logging.getLogger("paradarum.purge")

D = purge_deliveries


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to deliver one row, valid while ``attempts`` still equals ``attempt``."""

    delivery_id: int
    purge_id: int
    account_id: int
    node: str
    label: str
    kind: str
    targets: list[str]
    # The zones (hostnames) the purge is confined to at the cache.
    hosts: list[str]
    attempt: int


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
    """Claims, sends and records purge deliveries; :meth:`run` is the loop."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        max_attempts: int = 5,
        retry_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
        timeout_seconds: float = 10.0,
        lease_seconds: float = 120.0,
        poll_seconds: float = 1.0,
        batch_size: int = 20,
        concurrency: int = 8,
    ) -> None:
        self._db = db
        self._clock = clock
        self.max_attempts = max_attempts
        self._retry = retry_seconds
        self._retry_max = retry_max_seconds
        self._timeout = timeout_seconds
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._batch = batch_size
        self._concurrency = concurrency
        self._wake: asyncio.Event | None = None

    # -- the loop ---------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until ``stopping`` is set; a purge queued in this process wakes it."""
        self._wake = asyncio.Event()
        failures = 0
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, trust_env=False
        ) as http:
            while not stopping.is_set():
                # Cleared before the pass, so a purge queued during the pass is not missed.
                self._wake.clear()
                try:
                    handled = await self.run_once(http)
                    failures = 0
                except Exception:
                    # A database outage must not end the loop: log, back off, try again.
                    failures += 1
                    logger.exception("purge delivery pass failed")
                    await wait_for_event(stopping, min(30.0, self._poll * 2**failures))
                    continue
                if handled == 0:
                    await wait_for_any(stopping, self._wake, seconds=self._poll)
        self._wake = None

    def wake(self) -> None:
        """Deliver now rather than at the next poll (a purge was just queued)."""
        if self._wake is not None:
            self._wake.set()

    # -- one pass -----------------------------------------------------------------------

    async def run_once(self, http: httpx.AsyncClient) -> int:
        """Claim what is due, deliver it, record the outcome. Returns rows handled."""
        claims = await self.claim(self._batch)
        if not claims:
            return 0
        slots = asyncio.Semaphore(self._concurrency)

        async def deliver(claim: Claim) -> None:
            async with slots:
                failure = await self.send(http, claim)
            await self.record(claim, failure)

        await asyncio.gather(*(deliver(claim) for claim in claims))
        return len(claims)

    async def claim(self, limit: int) -> list[Claim]:
        now = self._clock()
        due = (
            D.c.status == str(DeliveryStatus.QUEUED),
            D.c.next_attempt_at <= now,
            or_(D.c.claimed_until.is_(None), D.c.claimed_until <= now),
        )
        # A plain read first, so that an idle poll never takes SQLite's write lock.
        found = await self._db.read(
            lambda conn: conn.execute(select(D.c.id).where(*due).limit(1)).first()
        )
        if found is None:
            return []
        turn = (
            func.row_number()
            .over(partition_by=purges.c.account_id, order_by=(D.c.next_attempt_at, D.c.id))
            .label("turn")
        )
        ranked = (
            select(
                D.c.id,
                D.c.purge_id,
                D.c.node,
                D.c.label,
                D.c.attempts,
                D.c.next_attempt_at,
                purges.c.account_id,
                purges.c.kind,
                purges.c.targets,
                purges.c.hosts,
                turn,
            )
            .join(purges, purges.c.id == D.c.purge_id)
            .where(*due)
            .subquery()
        )
        query = (
            select(ranked)
            .order_by(ranked.c.turn, ranked.c.next_attempt_at, ranked.c.id)
            .limit(limit)
        )
        lease_until = now + timedelta(seconds=self._lease)

        def work(conn: Connection) -> list[Claim]:
            claims: list[Claim] = []
            for row in conn.execute(query).all():
                changed = conn.execute(
                    update(D)
                    .where(D.c.id == row.id, D.c.attempts == row.attempts, *due)
                    .values(attempts=row.attempts + 1, claimed_until=lease_until, updated_at=now)
                ).rowcount
                if changed == 1:
                    claims.append(
                        Claim(
                            delivery_id=row.id,
                            purge_id=row.purge_id,
                            account_id=row.account_id,
                            node=row.node,
                            label=row.label,
                            kind=row.kind,
                            targets=list(json.loads(row.targets)),
                            hosts=list(json.loads(row.hosts or "[]")),
                            attempt=row.attempts + 1,
                        )
                    )
            purge_ids = sorted({claim.purge_id for claim in claims})
            if purge_ids:
                conn.execute(
                    update(purges)
                    .where(purges.c.id.in_(purge_ids), purges.c.status == str(PurgeStatus.QUEUED))
                    .values(status=str(PurgeStatus.RUNNING))
                )
            return claims

        return await self._db.write(work)

    async def send(self, http: httpx.AsyncClient, claim: Claim) -> Failure | None:
        """Send every request of ``claim``; None on success."""
        deadline = time.monotonic() + self._lease / 2
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

    def _backoff(self, attempt: int) -> float:
        return float(min(self._retry_max, self._retry * 2 ** (attempt - 1)))

    async def record(self, claim: Claim, failure: Failure | None) -> bool:
        """Record the outcome of ``claim``. False when the claim had been taken over."""
        now = self._clock()
        if failure is None:
            values: dict[str, Any] = {
                "status": str(DeliveryStatus.DONE),
                "last_error": None,
                "next_attempt_at": None,
            }
        elif failure.final or claim.attempt >= self.max_attempts:
            values = {"status": str(DeliveryStatus.FAILED), "last_error": failure.reason}
        else:
            retry_at = now + timedelta(seconds=self._backoff(claim.attempt))
            values = {
                "status": str(DeliveryStatus.QUEUED),
                "last_error": failure.reason,
                "next_attempt_at": retry_at,
            }
        recorded = await self._db.write(self._record, claim, values, now)
        if failure is not None:
            logger.warning(
                "purge delivery failed",
                extra={
                    "purge_id": claim.purge_id,
                    "node": claim.node,
                    "label": claim.label,
                    "attempt": claim.attempt,
                    "final": values["status"] == DeliveryStatus.FAILED,
                    "reason": failure.detail[:500],
                },
            )
        return recorded

    def _record(
        self, conn: Connection, claim: Claim, values: dict[str, Any], now: datetime
    ) -> bool:
        # Row locks in the same order as claim(): the delivery, then its purge.
        changed = conn.execute(
            update(D)
            .where(
                D.c.id == claim.delivery_id,
                D.c.attempts == claim.attempt,
                D.c.status == str(DeliveryStatus.QUEUED),
            )
            .values(claimed_until=None, updated_at=now, **values)
        ).rowcount
        if changed != 1:
            return False
        lock = select(purges.c.id).where(purges.c.id == claim.purge_id)
        if self._db.dialect == "postgresql":
            # Serialise the status roll-up of one purge: the last delivery to
            # finish must see every other delivery's final state.
            lock = lock.with_for_update()
        conn.execute(lock)
        counts: dict[str, int] = {
            str(status): int(count)
            for status, count in conn.execute(
                select(D.c.status, func.count())
                .where(D.c.purge_id == claim.purge_id)
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
            .where(purges.c.id == claim.purge_id)
            .values(status=str(status), completed_at=completed)
        )
        return True
