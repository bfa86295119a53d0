"""Webhooks: an account's events, for URLs of its choosing (docs/webhooks.md).

An account registers **endpoints** (an ``http(s)`` URL and the events it wants);
each gets a signing secret, shown once (at creation and at each roll) and kept
sealed (``paradarum.secretbox``): it must be read again to sign. An event
(:class:`Event`) is **emitted in the transaction of the action** (:func:`emit`):
one ``webhook_deliveries`` row per enabled endpoint that subscribes to it, so an
event is never sent without having happened and never lost once it has. The rows
are the ``webhook`` kind of the job queue, which sends them as the Standard
Webhooks specification says (``services/webhook_jobs.py``).

* The body is ``{"type", "timestamp", "data"}`` (JSON), made here and kept as it
  will be sent, so that every retry and resend carries the same bytes under the
  same ``webhook-id`` (``msg_...``, the receiver's idempotency key).
* A payload never carries a raw key (``id``, ``name``, ``keyPrefix`` only), and any
  string in it shaped like a key is cut to its prefix all the same.
* **Rolling** a secret keeps the previous one signing as well for a grace period
  (24 hours unless said otherwise, at most 7 days): the ``webhook-signature``
  header then carries both signatures, space-separated (the specification allows
  several), so a receiver verifies with either secret and switches without losing
  an event.
* **Where requests may go** is ``paradarum.egress``: a URL is refused when saved
  unless every address it resolves to is public (or admitted by the operator), and
  it is checked again at every send.
* ``api_key.expiring`` and ``api_key.expired`` are noticed by time
  (:meth:`WebhookService.announce_key_times`), once per key.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, select, update
from sqlalchemy.orm import aliased

from paradarum import egress
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys, key_announcements, webhook_deliveries, webhook_endpoints
from paradarum.errors import NotAuthenticated, NotFound, ValidationFailed
from paradarum.secretbox import SecretBox
from paradarum.services import audit
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.pagination import DEFAULT_LIMIT, Page, newest_first
from paradarum.services.roles import Action
from paradarum_client.keyformat import find_keys
from paradarum_client.models import rfc3339

logger = logging.getLogger("paradarum.webhooks")

E = webhook_endpoints
D = webhook_deliveries

MAX_ENDPOINTS = 10
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# How long a failed delivery is retried, counted from the event.
RETRY_FOR = timedelta(hours=24)
# After a roll, the previous secret signs too for this long (by default).
DEFAULT_SECRET_GRACE = timedelta(hours=24)
MAX_SECRET_GRACE = timedelta(days=7)
# Keys about to expire are announced this long before (api_key.expiring); keys that
# expired are looked for this far back (a server that was down for a while still
# announces them; older ones are history).
EXPIRING_WITHIN = timedelta(days=7)
EXPIRED_LOOKBACK = timedelta(days=7)


class Event(StrEnum):
    """What an endpoint may subscribe to (``type`` in the payload)."""

    KEY_CREATED = "api_key.created"
    KEY_REVOKED = "api_key.revoked"
    KEY_LEAKED = "api_key.leaked"
    KEY_EXPIRING = "api_key.expiring"
    KEY_EXPIRED = "api_key.expired"
    KEY_ROLLED = "api_key.rolled"
    MEMBER_JOINED = "member.joined"
    MEMBER_REMOVED = "member.removed"
    ZONE_VERIFIED = "zone.verified"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What may be shown about an endpoint: never its secret."""

    id: int
    account_id: int
    url: str
    events: tuple[str, ...]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    # Until when the secret before the last roll still signs (None: it does not).
    previous_secret_until: datetime | None


@dataclass(frozen=True, slots=True)
class NewSecret:
    """An endpoint and its signing secret: the one object that carries the secret,
    returned at creation and at a roll."""

    endpoint: Endpoint
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    endpoint_id: int
    message_id: str
    event: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    response_status: int | None
    created_at: datetime
    delivered_at: datetime | None


_ENDPOINT_COLUMNS = (
    E.c.id,
    E.c.account_id,
    E.c.url,
    E.c.events,
    E.c.enabled,
    E.c.created_at,
    E.c.updated_at,
    E.c.disabled_at,
    E.c.disabled_reason,
    E.c.failing_since,
    E.c.previous_secret_until,
)

_DELIVERY_COLUMNS = (
    D.c.id,
    D.c.endpoint_id,
    D.c.message_id,
    D.c.event,
    D.c.payload,
    D.c.status,
    D.c.attempts,
    D.c.next_attempt_at,
    D.c.last_error,
    D.c.response_status,
    D.c.created_at,
    D.c.delivered_at,
)


def _endpoint(row: Any, now: datetime | None = None) -> Endpoint:
    until = row.previous_secret_until
    return Endpoint(
        id=row.id,
        account_id=row.account_id,
        url=row.url,
        events=tuple(json.loads(row.events)),
        enabled=bool(row.enabled),
        created_at=row.created_at,
        updated_at=row.updated_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        previous_secret_until=until if until is not None and (now is None or until > now) else None,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        message_id=row.message_id,
        event=row.event,
        payload=json.loads(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        response_status=row.response_status,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


# -- rules (pure) ---------------------------------------------------------------------


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes them: ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def events_of(requested: Sequence[str]) -> tuple[str, ...]:
    """The events an endpoint subscribes to: known ones, at least one, each once, in
    the order of :class:`Event`."""
    known = {str(event) for event in Event}
    unknown = [name for name in requested if name not in known]
    if unknown:
        shown = ", ".join(repr(name[:60]) for name in unknown[:5])
        raise ValidationFailed(
            {"events": [f"Unknown event {shown}; use {', '.join(known_events())}."]},
            "The webhook's events are invalid.",
        )
    if not requested:
        raise ValidationFailed(
            {"events": ["Subscribe to at least one event."]}, "The webhook's events are invalid."
        )
    wanted = set(requested)
    return tuple(name for name in known_events() if name in wanted)


def known_events() -> list[str]:
    return [str(event) for event in Event]


def key_data(row: Any) -> dict[str, Any]:
    """A key as events name it: never more than its prefix."""
    return {"id": row.id, "name": row.name, "keyPrefix": row.key_prefix}


def _no_keys(text: str) -> str:
    """Defence in depth: whatever is shaped like a key (a key pasted into a key's
    name, say) leaves as its 8-character prefix only."""
    parts: list[str] = []
    last = 0
    for found in find_keys(text):
        parts += [text[last : found.start()], found.group()[:8] + "…"]
        last = found.end()
    parts.append(text[last:])
    return "".join(parts)


def body(event: Event, data: Mapping[str, Any], now: datetime) -> str:
    """The payload as sent: ``{"type", "timestamp", "data"}``, compact JSON."""
    document = {"type": str(event), "timestamp": rfc3339(now), "data": data}
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=_json_value)
    return _no_keys(text)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# -- emitting -------------------------------------------------------------------------


def emit(
    conn: Connection,
    *,
    account_id: int,
    event: Event,
    data: Mapping[str, Any],
    now: datetime,
) -> int:
    """Queue ``event`` for every enabled endpoint of the account that subscribes to
    it, in the caller's transaction. Returns how many deliveries were queued."""
    rows = conn.execute(
        select(E.c.id, E.c.events).where(E.c.account_id == account_id, E.c.enabled.is_(True))
    ).all()
    targets = [row.id for row in rows if str(event) in json.loads(row.events)]
    if not targets:
        return 0
    payload = body(event, data, now)
    message_id = new_message_id()
    conn.execute(
        insert(D),
        [
            {
                "endpoint_id": endpoint_id,
                "account_id": account_id,
                "message_id": message_id,
                "event": str(event),
                "payload": payload,
                "status": str(DeliveryStatus.QUEUED),
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for endpoint_id in targets
        ],
    )
    return len(targets)


def emit_key_revoked(
    conn: Connection,
    *,
    account_id: int,
    key: Any,
    reason: str,
    now: datetime,
    detail: str | None = None,
    actor: str | None = None,
) -> None:
    """``api_key.revoked`` for ``key`` (a row with id, name and key_prefix)."""
    emit(
        conn,
        account_id=account_id,
        event=Event.KEY_REVOKED,
        data={
            **key_data(key),
            "revokedAt": now,
            "reason": reason,
            "detail": detail,
            "actor": actor,
        },
        now=now,
    )


# -- the service ----------------------------------------------------------------------


def _may(principal: Principal, *, direct: bool = False) -> None:
    """Owners and admins manage webhooks (``services/roles.py``); where events go and
    what signs them (``direct``) with a panel session only."""
    principal.require(Action.MANAGE_WEBHOOKS)
    if direct:
        principal.require(Action.DIRECT_WEBHOOKS)


class WebhookNotFound(NotFound):
    message = "No webhook endpoint with that ID in this account."


class DeliveryNotFound(NotFound):
    message = "No delivery with that ID for this webhook endpoint."


class WebhookLimitReached(ValidationFailed):
    def __init__(self, limit: int) -> None:
        super().__init__(
            {"url": [f"At most {limit} endpoints per account."]},
            f"This account already has {limit} webhook endpoints, the most allowed. "
            "Delete one to add another.",
        )


@dataclass(frozen=True, slots=True)
class Egress(egress.Rules):
    """How webhook URLs are checked: :class:`egress.Rules`, and the check made when a
    URL is saved."""

    async def check(self, url: str) -> egress.Target:
        """The URL checked now, or :class:`ValidationFailed` on ``url`` (DNS that does
        not answer is a 503)."""
        target = egress.parse_url(url)
        try:
            await self.address(target)
        except egress.Refused as exc:
            raise ValidationFailed(
                {"url": [f"{exc}."]}, f"The webhook URL is not accepted: {exc}."
            ) from None
        return target


class WebhookService:
    def __init__(self, *, db: Database, clock: Clock, box: SecretBox, egress: Egress) -> None:
        self._db = db
        self._clock = clock
        self._box = box
        self._egress = egress

    def _seal(self, endpoint_id: int, secret: str) -> str:
        return self._box.seal(secret, bound_to=bound_to(endpoint_id))

    @staticmethod
    def _own(conn: Connection, account_id: int, endpoint_id: int) -> Any:
        row = conn.execute(
            select(*_ENDPOINT_COLUMNS).where(E.c.id == endpoint_id, E.c.account_id == account_id)
        ).first()
        if row is None:
            raise WebhookNotFound
        return row

    async def create(
        self, *, principal: Principal, url: str, events: Sequence[str], client: ClientInfo
    ) -> NewSecret:
        _may(principal, direct=True)
        subscribed = events_of(events)
        target = await self._egress.check(url)
        secret = new_secret()
        now = self._clock()

        def work(conn: Connection) -> NewSecret:
            # Count-then-insert: hold the account, as key creation does.
            if not self._db.lock_account(conn, principal.account_id):
                raise NotAuthenticated
            count = conn.execute(
                select(func.count()).select_from(E).where(E.c.account_id == principal.account_id)
            ).scalar_one()
            if count >= MAX_ENDPOINTS:
                raise WebhookLimitReached(MAX_ENDPOINTS)
            endpoint_id = conn.execute(
                insert(E)
                .values(
                    account_id=principal.account_id,
                    url=target.url,
                    events=json.dumps(subscribed),
                    enabled=True,
                    # Sealed bound to the row's id, known only once inserted.
                    secret_sealed="",
                    created_at=now,
                    updated_at=now,
                )
                .returning(E.c.id)
            ).scalar_one()
            conn.execute(
                update(E)
                .where(E.c.id == endpoint_id)
                .values(secret_sealed=self._seal(endpoint_id, secret))
            )
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.WEBHOOK_CREATED,
                at=now,
                client=client,
                actor=principal,
                detail=f"Webhook endpoint {endpoint_id}: {shown_url(target.url)} for "
                f"{', '.join(subscribed)}.",
            )
            return NewSecret(_endpoint(self._own(conn, principal.account_id, endpoint_id)), secret)

        return await self._db.write(work)

    async def list(self, *, principal: Principal) -> list[Endpoint]:
        """The account's endpoints, newest first."""
        _may(principal)
        now = self._clock()
        query = (
            select(*_ENDPOINT_COLUMNS)
            .where(E.c.account_id == principal.account_id)
            .order_by(E.c.created_at.desc(), E.c.id.desc())
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_endpoint(row, now) for row in rows]

    async def get(self, *, principal: Principal, endpoint_id: int) -> Endpoint:
        _may(principal)
        row = await self._db.read(self._own, principal.account_id, endpoint_id)
        return _endpoint(row, self._clock())

    async def update(
        self,
        *,
        principal: Principal,
        endpoint_id: int,
        client: ClientInfo,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> Endpoint:
        """Change the URL (session only), the events, or pause and resume. Enabling an
        endpoint that Paradarum disabled clears why it was disabled."""
        _may(principal, direct=url is not None)
        values: dict[str, Any] = {}
        changes: list[str] = []
        if events is not None:
            values["events"] = json.dumps(events_of(events))
            changes.append(f"events {', '.join(json.loads(values['events']))}")
        if url is not None:
            target = await self._egress.check(url)
            values["url"] = target.url
            changes.append(f"URL {shown_url(target.url)}")
        now = self._clock()
        if enabled is not None:
            values["enabled"] = enabled
            changes.append("enabled" if enabled else "paused")
            if enabled:
                values.update(disabled_at=None, disabled_reason=None, failing_since=None)
        if not values:
            raise ValidationFailed({"body": ["Give url, events or enabled."]}, "Nothing to change.")
        values["updated_at"] = now

        def work(conn: Connection) -> Endpoint:
            self._own(conn, principal.account_id, endpoint_id)
            conn.execute(update(E).where(E.c.id == endpoint_id).values(**values))
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.WEBHOOK_UPDATED,
                at=now,
                client=client,
                actor=principal,
                detail=f"Webhook endpoint {endpoint_id}: {'; '.join(changes)}.",
            )
            return _endpoint(self._own(conn, principal.account_id, endpoint_id), now)

        return await self._db.write(work)

    async def delete(
        self, *, principal: Principal, endpoint_id: int, client: ClientInfo
    ) -> Endpoint:
        """Remove an endpoint with its delivery log; nothing more is sent to it."""
        _may(principal)
        now = self._clock()

        def work(conn: Connection) -> Endpoint:
            row = self._own(conn, principal.account_id, endpoint_id)
            conn.execute(delete(D).where(D.c.endpoint_id == endpoint_id))
            conn.execute(delete(E).where(E.c.id == endpoint_id))
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.WEBHOOK_DELETED,
                at=now,
                client=client,
                actor=principal,
                detail=f"Webhook endpoint {endpoint_id} ({shown_url(row.url)}) deleted.",
            )
            return _endpoint(row)

        return await self._db.write(work)

    async def roll_secret(
        self,
        *,
        principal: Principal,
        endpoint_id: int,
        client: ClientInfo,
        grace: timedelta = DEFAULT_SECRET_GRACE,
    ) -> NewSecret:
        """A new signing secret, shown once. The one it replaces keeps signing as well
        for ``grace`` (0: it stops at once); a secret from an earlier roll stops now."""
        _may(principal, direct=True)
        if not timedelta(0) <= grace <= MAX_SECRET_GRACE:
            raise ValidationFailed(
                {"gracePeriodMinutes": ["Use 0 to 10080 minutes (7 days)."]},
                "The grace period is invalid.",
            )
        secret = new_secret()
        now = self._clock()

        def work(conn: Connection) -> NewSecret:
            self._own(conn, principal.account_id, endpoint_id)
            current = conn.execute(select(E.c.secret_sealed).where(E.c.id == endpoint_id)).scalar()
            conn.execute(
                update(E)
                .where(E.c.id == endpoint_id)
                .values(
                    secret_sealed=self._seal(endpoint_id, secret),
                    previous_secret_sealed=current if grace else None,
                    previous_secret_until=now + grace if grace else None,
                    updated_at=now,
                )
            )
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.WEBHOOK_SECRET_ROLLED,
                at=now,
                client=client,
                actor=principal,
                detail=f"Webhook endpoint {endpoint_id}: new signing secret; the previous one "
                + (f"signs too until {rfc3339(now + grace)}." if grace else "stopped at once."),
            )
            row = self._own(conn, principal.account_id, endpoint_id)
            return NewSecret(_endpoint(row, now), secret)

        return await self._db.write(work)

    async def deliveries(
        self,
        *,
        principal: Principal,
        endpoint_id: int,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        """An endpoint's delivery log, newest first."""
        _may(principal)
        await self._db.read(self._own, principal.account_id, endpoint_id)
        query = select(*_DELIVERY_COLUMNS).where(
            D.c.endpoint_id == endpoint_id, D.c.account_id == principal.account_id
        )
        return await newest_first(
            self._db,
            query,
            moment=D.c.created_at,
            row_id=D.c.id,
            limit=limit,
            cursor=cursor,
            item=_delivery,
        )

    async def resend(
        self, *, principal: Principal, endpoint_id: int, delivery_id: int, client: ClientInfo
    ) -> Delivery:
        """A new delivery of the same message (same ``webhook-id`` and body), now."""
        _may(principal)
        now = self._clock()

        def work(conn: Connection) -> Delivery:
            endpoint = self._own(conn, principal.account_id, endpoint_id)
            if not endpoint.enabled:
                raise ValidationFailed(
                    {"id": ["The endpoint is disabled."]},
                    "This webhook endpoint is disabled: enable it first.",
                )
            row = conn.execute(
                select(*_DELIVERY_COLUMNS).where(
                    D.c.id == delivery_id, D.c.endpoint_id == endpoint_id
                )
            ).first()
            if row is None:
                raise DeliveryNotFound
            new_id = conn.execute(
                insert(D)
                .values(
                    endpoint_id=endpoint_id,
                    account_id=principal.account_id,
                    message_id=row.message_id,
                    event=row.event,
                    payload=row.payload,
                    status=str(DeliveryStatus.QUEUED),
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
                .returning(D.c.id)
            ).scalar_one()
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.WEBHOOK_RESENT,
                at=now,
                client=client,
                actor=principal,
                detail=f"Webhook endpoint {endpoint_id}: {row.event} {row.message_id} sent again.",
            )
            return _delivery(conn.execute(select(*_DELIVERY_COLUMNS).where(D.c.id == new_id)).one())

        return await self._db.write(work)

    # -- events Paradarum notices by time --------------------------------------------------

    async def announce_key_times(self) -> int:
        """Emit ``api_key.expiring`` (once per key, in its last 7 days) and
        ``api_key.expired`` (once per key, when it has expired); each key and event is
        recorded in ``key_announcements``, so every process may sweep."""
        now = self._clock()
        replacement = aliased(api_keys)

        def work(conn: Connection) -> int:
            announced = 0
            columns = (
                api_keys.c.id,
                api_keys.c.account_id,
                api_keys.c.name,
                api_keys.c.key_prefix,
                api_keys.c.expires_at,
            )
            for event, condition in (
                (
                    Event.KEY_EXPIRING,
                    and_(
                        api_keys.c.expires_at > now,
                        api_keys.c.expires_at <= now + EXPIRING_WITHIN,
                        # A rolled key in its grace period is being replaced already.
                        ~exists().where(replacement.c.replaces_id == api_keys.c.id),
                    ),
                ),
                (
                    Event.KEY_EXPIRED,
                    and_(
                        api_keys.c.expires_at <= now,
                        api_keys.c.expires_at > now - EXPIRED_LOOKBACK,
                    ),
                ),
            ):
                rows = conn.execute(
                    select(*columns)
                    .where(
                        api_keys.c.revoked_at.is_(None),
                        condition,
                        ~exists().where(
                            key_announcements.c.key_id == api_keys.c.id,
                            key_announcements.c.event == str(event),
                        ),
                    )
                    .order_by(api_keys.c.id)
                    .limit(1000)
                ).all()
                for row in rows:
                    first = conn.execute(
                        self._db.insert(key_announcements)
                        .values(key_id=row.id, event=str(event), announced_at=now)
                        .on_conflict_do_nothing()
                        .returning(key_announcements.c.key_id)
                    ).first()
                    if first is None:
                        continue  # another process announced it meanwhile
                    data = {**key_data(row), "expiresAt": row.expires_at}
                    emit(conn, account_id=row.account_id, event=event, data=data, now=now)
                    announced += 1
            return announced

        return await self._db.write(work)


def bound_to(endpoint_id: int) -> str:
    """What a sealed secret is bound to: its endpoint (a sealed value copied to another
    row does not open)."""
    return f"webhook-endpoint:{endpoint_id}"


def shown_url(url: str) -> str:
    """A URL as the security log and emails show it: without its query, where
    receivers often put a token."""
    return url.split("?", 1)[0][:300]
