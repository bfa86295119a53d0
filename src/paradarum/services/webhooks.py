"""Webhooks: an account's events, signed and delivered to URLs it chooses.

* **Endpoints** (``webhook_endpoints``): a URL, the events it wants, on or off, and a
  signing secret (``whsec_`` + 32 random bytes, base64) shown once at creation and on
  each roll. It is kept sealed (AES-GCM, with a key derived from the server's secret):
  signing needs it back, and a database dump alone must not give it away.
* **Events**: :func:`emit` queues one ``webhook`` job per subscribed, enabled
  endpoint, **in the transaction of the event** (the job queue, ``services/queue.py``):
  nothing is announced that did not happen. The body is the Standard Webhooks
  envelope ``{"type", "timestamp", "data"}``; ``data`` names keys by id, name and
  8-character prefix only, never a raw key.
* **Delivery** (:class:`WebhookDelivery`, the queue's handler): a ``POST`` with the
  Standard Webhooks headers (``webhook-id``, the same on every retry so receivers can
  dedupe; ``webhook-timestamp``; ``webhook-signature``, made with the
  ``standardwebhooks`` package). A ``2xx`` is delivered; anything else is retried with
  backoff and jitter for 24 hours, then failed. An endpoint that has had no successful
  delivery for a whole day while failing is turned off and its owner emailed.

**Where a delivery may go** (server-side request forgery): only ``http``/``https``
URLs whose host resolves to public addresses. Loopback, private, link-local (the
cloud metadata address among them), shared, reserved and multicast addresses are
refused, unless they are in ``PARADARUM_WEBHOOK_ALLOWED_NETWORKS``. The check runs
at creation and again at every send, after DNS, and the request is made **to the
address just checked** (the URL's host goes in ``Host`` and TLS SNI), so a DNS answer
that changes in between (rebinding) gains nothing. Redirects are never followed, the
whole attempt has a short timeout, and at most 64 KiB of the answer is read.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, and_, delete, func, select, update
from standardwebhooks.webhooks import Webhook

from paradarum import dnsverify
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys, jobs, webhook_endpoints
from paradarum.db.types import as_utc
from paradarum.errors import DnsUnavailable, Forbidden, NotFound, ValidationFailed
from paradarum.services.context import CredentialKind, Principal
from paradarum.services.pagination import newest_first_page, next_cursor
from paradarum.services.queue import Job, JobKind, JobStatus, Outcome, Policy, enqueue, requeue
from paradarum.services.roles import Action
from paradarum_client import keyformat

logger = logging.getLogger("paradarum.webhooks")

W = webhook_endpoints
ENDPOINT_LIMIT = 10
URL_MAX = 2048
RESPONSE_READ_LIMIT = 64 * 1024
# A delivery is retried for a day; an endpoint whose deliveries have all failed for a
# day is turned off at its next failure.
RETRY_FOR = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)
EXPIRING_NOTICE = timedelta(days=7)
USER_AGENT = "Paradarum-Webhooks/1"


class WebhookEvent(StrEnum):
    """The events an endpoint may subscribe to (its ``type`` on the wire)."""

    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    API_KEY_LEAKED = "api_key.leaked"
    API_KEY_EXPIRING = "api_key.expiring"
    API_KEY_EXPIRED = "api_key.expired"
    API_KEY_ROLLED = "api_key.rolled"
    MEMBER_JOINED = "member.joined"
    MEMBER_REMOVED = "member.removed"
    ZONE_VERIFIED = "zone.verified"


class WebhookNotFound(NotFound):
    message = "No webhook endpoint with that ID in this account."


class DeliveryNotFound(NotFound):
    message = "No delivery with that ID for this webhook endpoint."


class SessionOnly(Forbidden):
    message = "Webhooks are managed from a panel session, not with an API key."


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    # Why Paradarum turned it off (None when it is on or a person turned it off).
    disabled_reason: str | None
    failing_since: datetime | None


@dataclass(frozen=True, slots=True)
class NewSecret:
    endpoint: EndpointInfo
    # Shown once: at creation and on each roll.
    secret: str


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    id: int
    event_id: str
    event_type: str
    status: JobStatus
    attempts: int
    # The last attempt: what the receiver answered ("HTTP 500"), or why it failed.
    result: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[DeliveryInfo]
    next_cursor: str | None


# -- rules (pure) -----------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a webhook URL, before DNS; None when nothing."""
    if len(url) > URL_MAX:
        return f"must be at most {URL_MAX} characters"
    if any(ch <= " " or ch == "\x7f" for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if port == 0:
        return "must not use port 0"
    return None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_allowed(
    text: str, allowed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    """A public (globally routable) address, or one in the operator's extra networks.

    ``is_global`` is False for loopback, private (RFC 1918, unique local), link-local
    (169.254.169.254, the cloud metadata service, among them), shared (100.64/10),
    documentation, reserved and unspecified addresses; multicast is refused too."""
    try:
        address = _address(text)
    except ValueError:
        return False
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


def signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _events(values: Iterable[str]) -> list[str]:
    known = {str(event) for event in WebhookEvent}
    chosen = list(dict.fromkeys(values))
    unknown = [value for value in chosen if value not in known]
    if not chosen:
        raise ValidationFailed({"events": ["Choose at least one event."]})
    if unknown:
        raise ValidationFailed(
            {"events": [f"Unknown event {value!r}." for value in unknown[:5]]},
            f"Unknown events. Known ones: {', '.join(sorted(known))}.",
        )
    return sorted(chosen)


class SecretBox:
    """Seals signing secrets for storage (AES-256-GCM, a key derived from the server's
    secret with HKDF-SHA256). Rotating the server's secret makes old seals unreadable:
    roll each endpoint's secret after that."""

    def __init__(self, server_secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"paradarum webhook secrets v1"
        ).derive(server_secret.encode())
        self._aead = AESGCM(key)

    def seal(self, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), b"webhook")
        return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str) -> str | None:
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix("v1."))
            return self._aead.decrypt(raw[:12], raw[12:], b"webhook").decode()
        except (ValueError, InvalidTag):
            return None


# -- events -----------------------------------------------------------------------


def key_data(row: Any) -> dict[str, Any]:
    """A key as webhooks name it: never more than its 8-character prefix."""
    return {"id": row.id, "name": row.name, "keyPrefix": row.key_prefix}


def without_keys(text: str) -> str:
    """``text`` (where a leak was found, say) with anything shaped like a key cut out:
    a delivery body never carries one."""
    return keyformat.PATTERN.sub("[a key, removed]", text)


def rfc3339(moment: datetime) -> str:
    from paradarum_client.models import rfc3339

    return str(rfc3339(moment))


def emit(
    conn: Connection,
    db: Database,
    *,
    account_id: int,
    event: WebhookEvent,
    data: Mapping[str, Any],
    now: datetime,
    once: str | None = None,
) -> int:
    """Queue ``event`` for each enabled endpoint of the account that subscribed to it,
    in the caller's transaction; how many were queued. ``once`` names the event so that
    it is queued once per endpoint however often this is called (a reminder)."""
    endpoints = conn.execute(
        select(W.c.id, W.c.events).where(W.c.account_id == account_id, W.c.enabled.is_(True))
    ).all()
    queued = 0
    body = {"type": str(event), "timestamp": rfc3339(now), "data": dict(data)}
    for endpoint in endpoints:
        if str(event) not in json.loads(endpoint.events):
            continue
        job_id = enqueue(
            conn,
            db,
            kind=JobKind.WEBHOOK,
            account_id=account_id,
            subject_id=endpoint.id,
            payload={"id": "msg_" + secrets.token_urlsafe(18), "body": body},
            now=now,
            dedupe_key=f"webhook:{endpoint.id}:{once}" if once else None,
        )
        queued += job_id is not None
    return queued


def _info(row: Any) -> EndpointInfo:
    return EndpointInfo(
        id=row.id,
        url=row.url,
        events=list(json.loads(row.events)),
        enabled=bool(row.enabled),
        created_at=row.created_at,
        updated_at=row.updated_at,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
    )


def _delivery(row: Any) -> DeliveryInfo:
    payload = json.loads(row.payload)
    status = JobStatus(row.status)
    return DeliveryInfo(
        id=row.id,
        event_id=payload["id"],
        event_type=payload["body"]["type"],
        status=status,
        attempts=row.attempts,
        result=row.result,
        error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_attempt_at=row.run_at if status is JobStatus.QUEUED else None,
    )


class Destination:
    """Where a URL may be sent: its checks at creation and at send time."""

    def __init__(
        self,
        *,
        allowed_networks: Sequence[str],
        nameserver: tuple[str, int] | None,
        dns_timeout: float,
    ) -> None:
        self._allowed = [ipaddress.ip_network(net, strict=False) for net in allowed_networks]
        self._nameserver = nameserver
        self._dns_timeout = dns_timeout

    async def address(self, url: str) -> str:
        """The address to connect to for ``url``: the first one it resolves to, once
        every one of them is allowed. Raises ValueError with the customer's reason."""
        problem = url_problem(url)
        if problem:
            raise ValueError(problem)
        host = urlsplit(url).hostname or ""
        try:
            addresses = [str(_address(host))]
        except ValueError:
            addresses = await dnsverify.host_addresses(
                host.rstrip(".") + ".", nameserver=self._nameserver, timeout=self._dns_timeout
            )
        if not addresses:
            raise ValueError(f"its host {host} does not resolve to an address")
        refused = [address for address in addresses if not address_allowed(address, self._allowed)]
        if refused:
            # Every address must pass: a client may connect to any of them.
            raise ValueError(
                f"its host {host} resolves to {refused[0]}, a private, loopback or "
                "otherwise non-public address"
            )
        return addresses[0]


# -- the service -------------------------------------------------------------------


class WebhookService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        box: SecretBox,
        destination: Destination,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._box = box
        self._destination = destination
        self._on_queued = on_queued

    def _wake(self) -> None:
        if self._on_queued is not None:
            self._on_queued()

    @staticmethod
    def _session(principal: Principal) -> None:
        """A panel session whose role may manage webhooks (``services/roles.py``)."""
        if principal.kind is not CredentialKind.SESSION:
            raise SessionOnly
        principal.require(Action.MANAGE_WEBHOOKS)

    async def _checked_url(self, url: str) -> str:
        url = url.strip()
        try:
            await self._destination.address(url)
        except DnsUnavailable:
            raise
        except ValueError as exc:
            raise ValidationFailed(
                {"url": [f"The URL {exc}."]}, f"This URL cannot receive webhooks: it {exc}."
            ) from None
        return url

    def _row(self, conn: Connection, account_id: int, endpoint_id: int) -> Any:
        row = conn.execute(
            select(W).where(W.c.id == endpoint_id, W.c.account_id == account_id)
        ).first()
        if row is None:
            raise WebhookNotFound
        return row

    async def create(
        self, *, principal: Principal, url: str, events: Sequence[str], enabled: bool = True
    ) -> NewSecret:
        self._session(principal)
        chosen = _events(events)
        url = await self._checked_url(url)
        secret = signing_secret()
        now = self._clock()

        def work(conn: Connection) -> Any:
            self._db.lock_account(conn, principal.account_id)
            count = conn.execute(
                select(func.count()).select_from(W).where(W.c.account_id == principal.account_id)
            ).scalar_one()
            if count >= ENDPOINT_LIMIT:
                raise ValidationFailed(
                    {"url": [f"At most {ENDPOINT_LIMIT} endpoints per account."]},
                    f"This account already has {ENDPOINT_LIMIT} webhook endpoints, the most "
                    "allowed. Delete one to add another.",
                )
            endpoint_id = conn.execute(
                W.insert()
                .values(
                    account_id=principal.account_id,
                    url=url,
                    events=json.dumps(chosen),
                    enabled=enabled,
                    secret_sealed=self._box.seal(secret),
                    created_at=now,
                    updated_at=now,
                )
                .returning(W.c.id)
            ).scalar_one()
            return self._row(conn, principal.account_id, endpoint_id)

        row = await self._db.write(work)
        return NewSecret(endpoint=_info(row), secret=secret)

    async def list(self, *, principal: Principal) -> list[EndpointInfo]:
        self._session(principal)
        rows = await self._db.read(
            lambda conn: conn.execute(
                select(W).where(W.c.account_id == principal.account_id).order_by(W.c.id)
            ).all()
        )
        return [_info(row) for row in rows]

    async def get(self, *, principal: Principal, endpoint_id: int) -> EndpointInfo:
        self._session(principal)
        row = await self._db.read(lambda conn: self._row(conn, principal.account_id, endpoint_id))
        return _info(row)

    async def update(
        self,
        *,
        principal: Principal,
        endpoint_id: int,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> EndpointInfo:
        self._session(principal)
        values: dict[str, Any] = {}
        if url is not None:
            values["url"] = await self._checked_url(url)
        if events is not None:
            values["events"] = json.dumps(_events(events))
        if enabled is not None:
            values["enabled"] = enabled
            # On again (by a person): a fresh start, whatever turned it off.
            values["disabled_reason"] = None
            values["failing_since"] = None
        now = self._clock()

        def work(conn: Connection) -> Any:
            self._row(conn, principal.account_id, endpoint_id)
            if values:
                conn.execute(
                    update(W).where(W.c.id == endpoint_id).values(updated_at=now, **values)
                )
            return self._row(conn, principal.account_id, endpoint_id)

        return _info(await self._db.write(work))

    async def delete(self, *, principal: Principal, endpoint_id: int) -> EndpointInfo:
        """Delete an endpoint with its delivery log; nothing more is sent to it."""
        self._session(principal)

        def work(conn: Connection) -> Any:
            row = self._row(conn, principal.account_id, endpoint_id)
            conn.execute(
                delete(jobs).where(
                    jobs.c.kind == str(JobKind.WEBHOOK),
                    jobs.c.subject_id == endpoint_id,
                    jobs.c.status != str(JobStatus.RUNNING),
                )
            )
            conn.execute(delete(W).where(W.c.id == endpoint_id))
            return row

        return _info(await self._db.write(work))

    async def roll_secret(self, *, principal: Principal, endpoint_id: int) -> NewSecret:
        """A new signing secret, shown once; the old one signs nothing from now on."""
        self._session(principal)
        secret = signing_secret()
        now = self._clock()

        def work(conn: Connection) -> Any:
            self._row(conn, principal.account_id, endpoint_id)
            conn.execute(
                update(W)
                .where(W.c.id == endpoint_id)
                .values(secret_sealed=self._box.seal(secret), updated_at=now)
            )
            return self._row(conn, principal.account_id, endpoint_id)

        return NewSecret(endpoint=_info(await self._db.write(work)), secret=secret)

    async def deliveries(
        self, *, principal: Principal, endpoint_id: int, limit: int = 50, cursor: str | None = None
    ) -> DeliveryPage:
        """The endpoint's delivery log, newest first."""
        self._session(principal)
        query = newest_first_page(
            select(jobs).where(
                jobs.c.kind == str(JobKind.WEBHOOK),
                jobs.c.subject_id == endpoint_id,
                jobs.c.account_id == principal.account_id,
            ),
            moment=jobs.c.created_at,
            row_id=jobs.c.id,
            limit=limit,
            cursor=cursor,
        )

        def read(conn: Connection) -> list[Any]:
            self._row(conn, principal.account_id, endpoint_id)
            return list(conn.execute(query).all())

        rows = await self._db.read(read)
        return DeliveryPage(
            items=[_delivery(row) for row in rows[:limit]],
            next_cursor=next_cursor(rows, limit=limit, moment="created_at"),
        )

    async def resend(
        self, *, principal: Principal, endpoint_id: int, delivery_id: int
    ) -> DeliveryInfo:
        """Send a delivery again (same event, same ``webhook-id``), with a fresh day of
        retries. One still pending is simply due now."""
        self._session(principal)
        now = self._clock()

        def work(conn: Connection) -> Any:
            self._row(conn, principal.account_id, endpoint_id)
            mine = and_(
                jobs.c.id == delivery_id,
                jobs.c.kind == str(JobKind.WEBHOOK),
                jobs.c.subject_id == endpoint_id,
            )
            row = conn.execute(select(jobs).where(mine)).first()
            if row is None:
                raise DeliveryNotFound
            if not requeue(conn, job_id=delivery_id, now=now):
                conn.execute(
                    update(jobs)
                    .where(mine, jobs.c.status == str(JobStatus.QUEUED))
                    .values(run_at=now, updated_at=now)
                )
            return conn.execute(select(jobs).where(mine)).one()

        row = await self._db.write(work)
        self._wake()
        return _delivery(row)

    async def announce_expiries(self) -> int:
        """Queue ``api_key.expiring`` (7 days before) and ``api_key.expired`` for keys
        of accounts with endpoints; each once per key and endpoint. Periodic."""
        now = self._clock()

        def work(conn: Connection) -> int:
            accounts_with = select(W.c.account_id).where(W.c.enabled.is_(True)).distinct()
            rows = conn.execute(
                select(
                    api_keys.c.id,
                    api_keys.c.account_id,
                    api_keys.c.name,
                    api_keys.c.key_prefix,
                    api_keys.c.expires_at,
                ).where(
                    api_keys.c.account_id.in_(accounts_with),
                    api_keys.c.revoked_at.is_(None),
                    api_keys.c.expires_at > now - timedelta(days=1),
                    api_keys.c.expires_at <= now + EXPIRING_NOTICE,
                )
            ).all()
            queued = 0
            for row in rows:
                expires = as_utc(row.expires_at)
                assert expires is not None
                event = (
                    WebhookEvent.API_KEY_EXPIRED
                    if expires <= now
                    else WebhookEvent.API_KEY_EXPIRING
                )
                queued += emit(
                    conn,
                    self._db,
                    account_id=row.account_id,
                    event=event,
                    data={"key": {**key_data(row), "expiresAt": rfc3339(expires)}},
                    now=now,
                    once=f"{event}:{row.id}",
                )
            return queued

        queued = await self._db.write(work)
        if queued:
            self._wake()
        return queued


# -- delivery ----------------------------------------------------------------------


class WebhookDelivery:
    """The ``webhook`` kind of job: one signed ``POST`` to one endpoint."""

    kind = JobKind.WEBHOOK

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        box: SecretBox,
        destination: Destination,
        timeout_seconds: float,
        on_disabled: Callable[[Connection, Any, datetime], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._box = box
        self._destination = destination
        self._timeout = timeout_seconds
        self._on_disabled = on_disabled
        self.policy = Policy(
            max_attempts=60,
            retry_seconds=5.0,
            retry_max_seconds=3600.0,
            lease_seconds=max(60.0, 4 * timeout_seconds),
            concurrency=8,
            give_up_after=RETRY_FOR,
        )
        self._tls: ssl.SSLContext | None = None

    def claimed(self, conn: Connection, claimed: Sequence[Job], now: datetime) -> None:
        return None

    async def perform(self, job: Job) -> Outcome:
        row = await self._db.read(
            lambda conn: conn.execute(
                select(W.c.url, W.c.enabled, W.c.secret_sealed).where(W.c.id == job.subject_id)
            ).first()
        )
        if row is None:
            return Outcome.fail("the endpoint was deleted")
        if not row.enabled:
            return Outcome.fail("the endpoint is disabled")
        secret = self._box.open(row.secret_sealed)
        if secret is None:
            return Outcome.fail("the signing secret cannot be read; roll it")
        try:
            address = await self._destination.address(row.url)
        except DnsUnavailable:
            return Outcome.retry("DNS did not answer")
        except ValueError as exc:
            return Outcome.retry(f"not sent: the URL {exc}")
        body = json.dumps(job.payload["body"], separators=(",", ":")).encode()
        now = self._clock()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": job.payload["id"],
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(job.payload["id"], now, body),
        }
        return await self._post(row.url, address, headers, body)

    def _client(self) -> httpx.AsyncClient:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, trust_env=False, verify=self._tls
        )

    async def _post(self, url: str, address: str, headers: dict[str, str], body: bytes) -> Outcome:
        parts = urlsplit(url)
        host = parts.hostname or ""
        literal = f"[{address}]" if ":" in address else address
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        # To the address that was checked, not to whatever the name resolves to now;
        # the URL's host in Host and in TLS (SNI, certificate check).
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        headers = {**headers, "host": parts.netloc.rpartition("@")[2]}
        started = time.monotonic()
        try:
            async with self._client() as http:
                request = http.build_request(
                    "POST", target, headers=headers, content=body, extensions={"sni_hostname": host}
                )
                response = await http.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if (
                            read >= RESPONSE_READ_LIMIT
                            or time.monotonic() - started > self._timeout
                        ):
                            break
                finally:
                    await response.aclose()
        except httpx.TimeoutException:
            return Outcome.retry(f"no answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            logger.info("webhook not delivered", extra={"reason": f"{type(exc).__name__}"})
            return Outcome.retry("the endpoint could not be reached")
        status = response.status_code
        result = f"HTTP {status}"
        if 200 <= status < 300:
            return Outcome.done(result)
        if 300 <= status < 400:
            return Outcome.retry(
                f"the endpoint answered HTTP {status}; redirects are not followed", result
            )
        return Outcome.retry(f"the endpoint answered HTTP {status}", result)

    def finished(
        self, conn: Connection, job: Job, status: JobStatus, outcome: Outcome, now: datetime
    ) -> None:
        """Keep the endpoint's health: failing since when; off after a day of it."""
        if status is JobStatus.DONE:
            conn.execute(
                update(W)
                .where(W.c.id == job.subject_id, W.c.failing_since.is_not(None))
                .values(failing_since=None)
            )
            return
        conn.execute(
            update(W)
            .where(W.c.id == job.subject_id, W.c.failing_since.is_(None))
            .values(failing_since=now)
        )
        row = conn.execute(select(W).where(W.c.id == job.subject_id)).first()
        if row is None or not row.enabled or row.failing_since is None:
            return
        failing_since = as_utc(row.failing_since)
        if failing_since is None or failing_since > now - DISABLE_AFTER:
            return
        # A whole day without one delivery getting through: the receiver is gone or
        # broken, and retrying everything forever helps nobody.
        conn.execute(
            update(W)
            .where(W.c.id == row.id, W.c.enabled.is_(True))
            .values(
                enabled=False,
                disabled_reason="Turned off: no delivery succeeded for 24 hours.",
                updated_at=now,
            )
        )
        if self._on_disabled is not None:
            self._on_disabled(conn, row, now)
