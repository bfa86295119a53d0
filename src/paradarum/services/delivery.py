"""Purge delivery: send queued purges to the cache nodes, in the background.

Each ``purge_deliveries`` row is one purge for one cache node. A delivery loop
(one thread per process, started by the app) repeatedly

1. **claims** due rows: ``status = 'queued'``, ``next_attempt_at <= now`` and no
   live claim (``claimed_until`` empty or past). A claim is a compare-and-swap
   on ``attempts``: ``UPDATE ... SET attempts = n + 1, claimed_until = now + lease
   WHERE id = ? AND attempts = n AND <still claimable>``. Of several processes or
   instances racing for a row exactly one changes it, so no delivery is sent
   twice by two live workers; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` also keeps
   them from queueing behind each other. A worker that dies mid-delivery leaves
   a claim that simply expires, and the row is picked up again.
2. **sends** the requests (``PURGE <path>`` with the URL's ``Host``; ``BAN`` with
   ``X-Purge-Tags``; ``BAN`` with ``X-Purge-All: 1``), nodes in parallel.
3. **records** the answer, fenced by the same ``attempts`` value: a worker whose
   claim expired and was taken over cannot overwrite the newer attempt. Failures
   are retried with exponential backoff until ``max_attempts``, then ``failed``
   with the reason. The purge's own status follows its deliveries.

Because the queue is the database, purges accepted while no loop runs (delivery
turned off, the process restarting) are delivered when a loop starts again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import func, or_, select, update

from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import purge_deliveries, purges
from paradarum.purge_requests import node_requests
from paradarum.services.purges import DONE, FAILED, QUEUED, RUNNING

logger = logging.getLogger("paradarum.purge")

D = purge_deliveries
ERROR_MAX = 500


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to deliver one row, valid while ``attempts`` still equals ``attempt``."""

    delivery_id: int
    purge_id: int
    node: str
    kind: str
    targets: list[str]
    attempt: int


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


class PurgeDelivery:
    """Claims, sends and records purge deliveries; optionally as a background thread."""

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
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._loop, name="paradarum-purge-delivery", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the deliveries in hand are recorded; unclaimed rows stay queued."""
        with self._lock:
            thread = self._thread
            self._stopping.set()
            self._wake.set()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            self._thread = None
            self._close_clients()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (a purge was just queued)."""
        self._wake.set()

    def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            # Cleared before the pass, so a purge queued during the pass is not missed.
            self._wake.clear()
            try:
                handled = self.run_once()
                failures = 0
            except Exception:
                # A database outage must not kill the loop: log, back off, try again.
                failures += 1
                logger.exception("purge delivery pass failed")
                handled = 0
                self._stopping.wait(min(30.0, self._poll * 2**failures))
            if handled == 0:
                self._wake.wait(self._poll)

    def _clients(self) -> tuple[httpx.Client, ThreadPoolExecutor]:
        if self._http is None:
            self._http = httpx.Client(
                timeout=self._timeout, follow_redirects=False, trust_env=False
            )
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self._concurrency, thread_name_prefix="paradarum-purge-send"
            )
        return self._http, self._pool

    def _close_clients(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- one pass -----------------------------------------------------------------

    def run_once(self) -> int:
        """Claim what is due, deliver it, record the outcome. Returns rows handled."""
        claims = self.claim(self._batch)
        if not claims:
            return 0
        http, pool = self._clients()
        outcomes = list(pool.map(lambda claim: (claim, self.send(http, claim)), claims))
        for claim, error in outcomes:
            self.record(claim, error)
        return len(claims)

    def claim(self, limit: int) -> list[Claim]:
        now = self._clock()
        due = (
            D.c.status == QUEUED,
            D.c.next_attempt_at <= now,
            or_(D.c.claimed_until.is_(None), D.c.claimed_until <= now),
        )
        # A plain read first, so that an idle poll never takes SQLite's write lock.
        with self._db.read() as conn:
            if conn.execute(select(D.c.id).where(*due).limit(1)).first() is None:
                return []
        query = (
            select(D.c.id, D.c.purge_id, D.c.node, D.c.attempts, purges.c.kind, purges.c.targets)
            .join(purges, purges.c.id == D.c.purge_id)
            .where(*due)
            .order_by(D.c.next_attempt_at, D.c.id)
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            query = query.with_for_update(of=D, skip_locked=True)
        lease_until = now + timedelta(seconds=self._lease)
        claims: list[Claim] = []
        with self._db.write() as conn:
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
                            node=row.node,
                            kind=row.kind,
                            targets=list(json.loads(row.targets)),
                            attempt=row.attempts + 1,
                        )
                    )
            purge_ids = sorted({claim.purge_id for claim in claims})
            if purge_ids:
                conn.execute(
                    update(purges)
                    .where(purges.c.id.in_(purge_ids), purges.c.status == QUEUED)
                    .values(status=RUNNING)
                )
        return claims

    def send(self, http: httpx.Client, claim: Claim) -> str | None:
        """Send every request of ``claim``; None on success, else the reason."""
        deadline = time.monotonic() + self._lease / 2
        try:
            requests = node_requests(claim.node, claim.kind, claim.targets)
        except (ValueError, httpx.InvalidURL) as exc:
            return _clip(f"invalid cache node {claim.node!r}: {exc}")
        for request in requests:
            if time.monotonic() > deadline:
                return "gave up: the node answered too slowly"
            try:
                response = http.request(request.method, request.url, headers=request.headers)
            except httpx.TimeoutException:
                return f"timed out after {self._timeout:g}s"
            except httpx.HTTPError as exc:
                return _clip(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            if not response.is_success:
                reason = response.reason_phrase or ""
                return _clip(f"HTTP {response.status_code} {reason}".strip())
        return None

    def _backoff(self, attempt: int) -> float:
        return float(min(self._retry_max, self._retry * 2 ** (attempt - 1)))

    def record(self, claim: Claim, error: str | None) -> bool:
        """Record the outcome of ``claim``. False when the claim had been taken over."""
        now = self._clock()
        if error is None:
            values: dict[str, object] = {
                "status": DONE,
                "is_final": True,
                "last_error": None,
                "next_attempt_at": None,
            }
        elif claim.attempt >= self.max_attempts:
            values = {"status": FAILED, "is_final": True, "last_error": error}
        else:
            retry_at = now + timedelta(seconds=self._backoff(claim.attempt))
            values = {"status": QUEUED, "last_error": error, "next_attempt_at": retry_at}
        with self._db.write() as conn:
            # Row locks in the same order as claim(): the delivery, then its purge.
            changed = conn.execute(
                update(D)
                .where(
                    D.c.id == claim.delivery_id,
                    D.c.attempts == claim.attempt,
                    D.c.status == QUEUED,
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
            if counts.get(QUEUED, 0):
                conn.execute(
                    update(purges).where(purges.c.id == claim.purge_id).values(status=RUNNING)
                )
            else:
                conn.execute(
                    update(purges)
                    .where(purges.c.id == claim.purge_id)
                    .values(status=FAILED if counts.get(FAILED, 0) else DONE, completed_at=now)
                )
        if error is not None:
            logger.warning(
                "purge delivery failed",
                extra={
                    "purge_id": claim.purge_id,
                    "node": claim.node,
                    "attempt": claim.attempt,
                    "final": values["status"] == FAILED,
                    "reason": error,
                },
            )
        return True
