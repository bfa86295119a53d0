"""The ``webhook`` kind of the job queue: one delivery, signed and sent.

A ``webhook_deliveries`` row is queued in the transaction of its event
(:func:`paradarum.services.webhooks.emit`); the queue (``services/jobs.py``) claims it
with a lease, fairly across accounts, and :meth:`WebhookSender.perform` makes one
attempt:

1. the endpoint is read again: deleted, paused or disabled since, nothing is sent;
2. its URL is checked again and its host resolved **now** (``paradarum.egress``):
   every address must be public (or in ``PARADARUM_WEBHOOK_ALLOWED_NETWORKS``), and
   the request goes to the address just checked, the hostname in ``Host`` and as the
   TLS server name: a DNS answer changed since the URL was saved (rebinding) reaches
   nothing;
3. the body, kept as it was queued, is signed for this attempt (``webhook-id``,
   ``webhook-timestamp``, ``webhook-signature``; the previous secret too during a
   roll's grace period) with the ``standardwebhooks`` package and POSTed, with no
   proxy, no redirect followed (a ``3xx`` is a failure), a deadline for the whole
   attempt (``PARADARUM_WEBHOOK_TIMEOUT_SECONDS``), and at most 4 KiB of the answer
   read;
4. a ``2xx`` is delivered; anything else is retried with backoff and jitter (10 s
   doubling, at most an hour apart) for up to 24 hours after the event, then failed.

At least once: a process that dies mid-attempt leaves a lease that runs out, and the
row is attempted again: the receiver deduplicates by ``webhook-id`` (the same for
every attempt and resend of a message).

:meth:`WebhookSender.finished` records, in the same transaction as the outcome, the
receiver's status, ``delivered_at``, the endpoint's ``failing_since`` and the
auto-disable rule: a delivery that failed for a day while nothing else reached the
endpoint since it was created disables the endpoint, with a security-log entry and
an email to the owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, select, update
from standardwebhooks import Webhook

from paradarum import egress
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import webhook_deliveries, webhook_endpoints
from paradarum.errors import DnsUnavailable, ValidationFailed
from paradarum.secretbox import CannotOpen, SecretBox
from paradarum.services import audit
from paradarum.services.context import ClientInfo
from paradarum.services.emails import Kind, enqueue
from paradarum.services.jobs import Claim, Delivery, JobKind, Outcome, Result, RetryPolicy, Statuses
from paradarum.services.webhooks import RETRY_FOR, DeliveryStatus, Egress, bound_to, shown_url
from paradarum_client import __version__

logger = logging.getLogger("paradarum.webhooks")

E = webhook_endpoints
D = webhook_deliveries

POLICY = RetryPolicy(base_seconds=10.0, max_seconds=3600.0, give_up_after=RETRY_FOR)
# The most of a receiver's answer that is read (and then dropped).
MAX_RESPONSE_BYTES = 4096
USER_AGENT = f"Paradarum-Webhooks/{__version__}"

# The HTTP client of the worker's loop (or pass) that is performing: its tasks see it.
_http: ContextVar[httpx.AsyncClient] = ContextVar("paradarum_webhook_http")


@dataclass(frozen=True, slots=True)
class WebhookJob:
    endpoint_id: int
    message_id: str
    payload: str


def load(row: Any) -> WebhookJob:
    return WebhookJob(endpoint_id=row.endpoint_id, message_id=row.message_id, payload=row.payload)


@dataclass(frozen=True, slots=True)
class Attempted(Outcome):
    """An attempt's outcome, with what :meth:`WebhookSender.finished` records besides:
    the receiver's HTTP status, and whether the failure is the endpoint's own (it
    counts towards disabling the endpoint; being paused, deleted, or a secret that
    cannot be read does not)."""

    response_status: int | None = None
    counts: bool = True


def _retry(reason: str, *, detail: str | None = None, status: int | None = None) -> Attempted:
    return Attempted(Result.RETRY, reason=reason, detail=detail, response_status=status)


def _fail(reason: str, *, detail: str | None = None) -> Attempted:
    """Final at once, and not the endpoint's fault."""
    return Attempted(Result.FAILED, reason=reason, detail=detail, counts=False)


def signature(secrets: Sequence[str], *, message_id: str, at: datetime, payload: str) -> str:
    """The ``webhook-signature`` header: one ``v1,...`` per secret, space-separated."""
    return " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=at, data=payload) for secret in secrets
    )


class WebhookSender:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        box: SecretBox,
        egress: Egress,
        timeout: float,
        on_disabled: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._box = box
        self._egress = egress
        self._timeout = timeout
        self._on_disabled = on_disabled

    def kind(self) -> JobKind[WebhookJob]:
        return JobKind(
            name="webhook",
            table=D,
            account=D.c.account_id,
            columns=(D.c.endpoint_id, D.c.message_id, D.c.payload),
            load=load,
            perform=self.perform,
            policy=POLICY,
            delivery=Delivery.AT_LEAST_ONCE,
            statuses=Statuses(
                queued=str(DeliveryStatus.QUEUED),
                done=(str(DeliveryStatus.DELIVERED),),
                failed=str(DeliveryStatus.FAILED),
            ),
            created_at=D.c.created_at,
            updated_at=D.c.updated_at,
            finished=self.finished,
            values=self.values,
            session=self.session,
            # Longer than any one attempt (DNS, then the request) can take: only a
            # process that died lets a lease run out.
            lease_seconds=max(60.0, 3 * (self._timeout + self._egress.dns_timeout)),
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[httpx.AsyncClient]:
        """The HTTP client attempts go out on: no proxy from the environment (it would
        connect by name), no redirects, the deadline is :meth:`perform`'s own."""
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
        ) as http:
            token = _http.set(http)
            try:
                yield http
            finally:
                _http.reset(token)

    def _secrets(self, row: Any, now: datetime) -> list[str]:
        found = [self._box.open(row.secret_sealed, bound_to=bound_to(row.id))]
        until = row.previous_secret_until
        if row.previous_secret_sealed and until is not None and until > now:
            found.append(self._box.open(row.previous_secret_sealed, bound_to=bound_to(row.id)))
        return found

    async def perform(self, claim: Claim[WebhookJob]) -> Outcome:
        job = claim.job
        row = await self._db.read(
            lambda conn: conn.execute(
                select(
                    E.c.id,
                    E.c.url,
                    E.c.enabled,
                    E.c.secret_sealed,
                    E.c.previous_secret_sealed,
                    E.c.previous_secret_until,
                ).where(E.c.id == job.endpoint_id)
            ).first()
        )
        if row is None:
            return _fail("the endpoint was deleted")
        if not row.enabled:
            return _fail("the endpoint is disabled; not sent")
        now = self._clock()
        try:
            target = egress.parse_url(row.url)
            signing = self._secrets(row, now)
        except ValidationFailed as exc:
            return _fail(f"the URL is not usable: {exc.message}")
        except CannotOpen:
            return _fail(
                "the signing secret cannot be read: roll it",
                detail="sealed under another PARADARUM_SECRETS_KEY?",
            )
        try:
            address = await self._egress.address(target)
        except egress.Refused as exc:
            return _retry(f"not sent: {exc}")
        except DnsUnavailable:
            return _retry(f"DNS did not answer for {target.host}")
        request = egress.pinned(target, address)
        headers = {
            **request.headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": job.message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature(
                signing, message_id=job.message_id, at=now, payload=job.payload
            ),
        }
        try:
            async with asyncio.timeout(self._timeout):
                async with _http.get().stream(
                    "POST",
                    request.url,
                    content=job.payload.encode(),
                    headers=headers,
                    extensions=request.extensions,
                ) as response:
                    status = response.status_code
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES:
                            break
        except TimeoutError:
            return _retry(f"no answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return _retry(_connection_problem(exc), detail=f"{type(exc).__name__}: {exc}")
        if 200 <= status < 300:
            return Attempted(Result.DONE, response_status=status)
        if 300 <= status < 400:
            return _retry(f"HTTP {status}: redirects are not followed", status=status)
        return _retry(f"HTTP {status}", status=status)

    @staticmethod
    def values(claim: Claim[WebhookJob], outcome: Outcome, now: datetime) -> dict[str, Any]:
        """The delivery's own columns, written in the UPDATE that records the attempt
        (a second UPDATE of the row would make PostgreSQL check its foreign key again,
        locking the endpoint's row): the receiver's status, and when it was delivered."""
        values: dict[str, Any] = {}
        if isinstance(outcome, Attempted):
            values["response_status"] = outcome.response_status
        if outcome.result is Result.DONE:
            values["delivered_at"] = now
        return values

    def finished(
        self, conn: Connection, claim: Claim[WebhookJob], outcome: Outcome, now: datetime
    ) -> None:
        """In the transaction that records the attempt: the endpoint's health, and
        the auto-disable rule."""
        # A retry the queue gave up on may come as a plain Outcome: the endpoint's own
        # failure, its status as the attempt before recorded it.
        attempt = outcome if isinstance(outcome, Attempted) else None
        counts = attempt.counts if attempt is not None else True
        endpoint_id = claim.job.endpoint_id
        if outcome.result is Result.DONE:
            conn.execute(
                update(E)
                .where(E.c.id == endpoint_id, E.c.failing_since.is_not(None))
                .values(failing_since=None)
            )
            return
        if not counts:
            return
        conn.execute(
            update(E)
            .where(E.c.id == endpoint_id, E.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        if outcome.result is Result.FAILED:
            self._disable_if_dead(conn, claim, outcome, now)

    def _disable_if_dead(
        self, conn: Connection, claim: Claim[WebhookJob], outcome: Outcome, now: datetime
    ) -> None:
        """A delivery was given up after a day of attempts: if nothing reached the
        endpoint since it was created, the endpoint has failed for a day on end, and
        is disabled."""
        endpoint_id = claim.job.endpoint_id
        since = claim.created_at or now
        delivered_since = conn.execute(
            select(D.c.id)
            .where(
                D.c.endpoint_id == endpoint_id,
                D.c.created_at >= since - timedelta(days=2),
                D.c.delivered_at >= since,
            )
            .limit(1)
        ).first()
        if delivered_since is not None:
            return
        reason = f"Every delivery failed for a day; the last: {outcome.reason}"[:300]
        changed = conn.execute(
            update(E)
            .where(E.c.id == endpoint_id, E.c.enabled.is_(True))
            .values(enabled=False, disabled_at=now, disabled_reason=reason, updated_at=now)
        ).rowcount
        if changed != 1:
            return
        row = conn.execute(select(E.c.url, E.c.failing_since).where(E.c.id == endpoint_id)).one()
        audit.record(
            conn,
            account_id=claim.account_id,
            event=audit.Event.WEBHOOK_DISABLED,
            at=now,
            client=ClientInfo(),
            actor_type=audit.Actor.SYSTEM,
            detail=f"Webhook endpoint {endpoint_id} ({shown_url(row.url)}) disabled: {reason}",
        )
        enqueue(
            conn,
            self._db,
            account_id=claim.account_id,
            kind=Kind.WEBHOOK_DISABLED,
            dedupe_key=f"webhook_disabled:{endpoint_id}:{now.isoformat()}",
            payload={
                "endpoint_id": endpoint_id,
                "url": shown_url(row.url),
                "failing_since": row.failing_since.isoformat() if row.failing_since else None,
                "at": now.isoformat(),
                "reason": outcome.reason or "",
            },
            now=now,
        )
        logger.warning("webhook endpoint disabled", extra={"endpoint": endpoint_id})
        if self._on_disabled is not None:
            self._on_disabled()


def _connection_problem(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "the receiver could not be connected to"
    if isinstance(exc, httpx.TimeoutException):
        return "the receiver did not answer in time"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the receiver broke off the connection or did not speak HTTP"
    return "the request could not be completed"
