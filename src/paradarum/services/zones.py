"""Zones: the hostnames an account has proven it controls, and so may purge.

The rules:

* a hostname is written in one form (``paradarum.hostnames.normalise``);
* an account adds it as **pending** and gets a random token to publish as a DNS TXT
  record at ``_paradarum-challenge.<hostname>``; verifying finds the record (the
  resolver is a setting) and makes the zone **active**;
* a hostname is held (active, or suspended) by one account at most — a partial
  unique index, so that of two accounts verifying at once exactly one wins; the
  other accounts' pending claims on it are dropped when it is verified, and adding a
  hostname held elsewhere is a 409 while the holder's record is there; pending
  claims block nobody (squatting gains nothing);
* zones follow their domain: held zones are re-checked in DNS every day
  (:meth:`ZoneService.recheck_due`); a holder whose record is gone loses the zone
  to an account that proves control (its verify, or the daily check), and three
  missed checks in a row suspend a zone (no purges) — the owner is told by mail;
* the most specific held zone owns a hostname (:func:`owners`, :func:`held_beneath`):
  a wildcard never reaches what another zone names more precisely;
* an account holds at most ``zone_limit`` zones.

Operators can make a zone active without DNS (``paradarum zones add EMAIL HOSTNAME
--verified``) for platforms that prove ownership when they provision a site.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from paradarum import dnsverify, hostnames
from paradarum.background import wait_for_event
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import persons, zones
from paradarum.errors import (
    AccountNotFound,
    Conflict,
    DnsUnavailable,
    NotAuthenticated,
    NotFound,
    RateLimited,
    ValidationFailed,
    ZoneTaken,
)
from paradarum.ratelimit import Limit, RateLimiter
from paradarum.services import audit, confinement, webhooks
from paradarum.services.accounts import home_account, require_verified
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.emails import Kind, enqueue
from paradarum.services.pagination import DEFAULT_LIMIT, Page, newest_first
from paradarum.services.roles import Action

logger = logging.getLogger("paradarum.zones")

# Held zones are looked for in DNS again this often; so many misses in a row suspend one.
RECHECK_EVERY = timedelta(days=1)
MISSES_TO_SUSPEND = 3
# The re-check job runs this often and checks at most this many zones a pass.
RECHECK_PASS_SECONDS = 600.0
RECHECKS_PER_PASS = 100

# Verifications per account and minute (each one asks DNS).
VERIFICATIONS_PER_MINUTE = 30
TOO_MANY_VERIFICATIONS = "Too many zone verifications. Try again later."


TOO_MANY_ADDITIONS = "Too many zones added recently. Try again later."


@dataclass(frozen=True, slots=True)
class AdditionLimits:
    """Zone additions per account and per client address, per window.

    Adding a zone tells whether its hostname is active in another account (409): a
    probe that costs nothing would enumerate every customer's hostnames. Both counts
    are taken before the answer is known, so probing costs the same as adding.
    """

    per_account: int = 20
    per_address: int = 60
    window_seconds: int = 600

    def limits(self, account_id: int, address: str | None) -> list[Limit]:
        found = [Limit(f"zone-add:{account_id}", self.per_account, self.window_seconds)]
        if address:
            found.append(
                Limit(f"zone-add-address:{address}", self.per_address, self.window_seconds)
            )
        return found


class ZoneStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    # The TXT record was missing on three daily checks in a row: the hostname stays
    # held by the account, but nothing is purged for it until it is verified again.
    SUSPENDED = "suspended"


# A held hostname is the account's, whether it may purge it now or not.
HELD = (str(ZoneStatus.ACTIVE), str(ZoneStatus.SUSPENDED))


class ZoneNotFound(NotFound):
    message = "No zone with that ID in this account."


class ZoneExists(Conflict):
    message = "This account already has a zone for that hostname."


class ZoneLimitReached(ValidationFailed):
    def __init__(self, limit: int) -> None:
        message = (
            f"This account already has {limit} zones, the most allowed. "
            "Delete a zone to add another."
        )
        super().__init__({"hostname": [message]}, message)


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    id: int
    hostname: str
    status: ZoneStatus
    token: str
    created_at: datetime
    verified_at: datetime | None

    @property
    def challenge_name(self) -> str:
        return hostnames.challenge_name(self.hostname)


def _verified(
    conn: Connection, *, account_id: int, zone_id: int, hostname: str, now: datetime
) -> None:
    """``zone.verified`` to the account's webhooks: the zone is active (again)."""
    webhooks.emit(
        conn,
        account_id=account_id,
        event=webhooks.Event.ZONE_VERIFIED,
        data={"id": zone_id, "hostname": hostname, "verifiedAt": now},
        now=now,
    )


def zone_info(row: Any) -> ZoneInfo:
    return ZoneInfo(
        id=row.id,
        hostname=row.hostname,
        status=ZoneStatus(row.status),
        token=row.token,
        created_at=row.created_at,
        verified_at=row.verified_at,
    )


def active_zones(
    conn: Connection, account_id: int, zone_ids: Sequence[int] | None = None
) -> list[ZoneInfo]:
    """The account's active zones (only ``zone_ids`` among them when given), in the
    caller's transaction: what a purge may touch."""
    query = select(zones).where(
        zones.c.account_id == account_id, zones.c.status == str(ZoneStatus.ACTIVE)
    )
    if zone_ids is not None:
        query = query.where(zones.c.id.in_(list(zone_ids)))
    return [zone_info(row) for row in conn.execute(query.order_by(zones.c.hostname)).all()]


def owners(conn: Connection, hosts: Iterable[str]) -> dict[str, Any]:
    """For each of ``hosts`` (URL hosts, normalised), the held zone that owns it: the
    most specific one (``hostnames.candidates``). Hosts nobody holds are left out."""
    wanted = {host: hostnames.candidates(host) for host in set(hosts)}
    names = sorted({name for names in wanted.values() for name in names})
    found: dict[str, Any] = {}
    for start in range(0, len(names), 500):
        rows = conn.execute(
            select(zones.c.id, zones.c.account_id, zones.c.hostname, zones.c.status).where(
                zones.c.hostname.in_(names[start : start + 500]), zones.c.status.in_(HELD)
            )
        ).all()
        found.update((row.hostname, row) for row in rows)
    return {
        host: next(found[name] for name in options if name in found)
        for host, options in wanted.items()
        if any(name in found for name in options)
    }


def _holder(conn: Connection, hostname: str, account_id: int) -> Any:
    """The zone of another account that holds ``hostname`` (active or suspended)."""
    return conn.execute(
        select(zones).where(
            zones.c.hostname == hostname,
            zones.c.status.in_(HELD),
            zones.c.account_id != account_id,
        )
    ).first()


def held_beneath(conn: Connection, wildcard: str) -> list[Any]:
    """The held zones (any account's) that name hostnames inside ``wildcard`` more
    precisely: what a ban for ``wildcard`` must leave alone unless they are the
    purge's own."""
    suffix = "." + wildcard.removeprefix("*.")
    rows = conn.execute(
        select(zones.c.id, zones.c.account_id, zones.c.hostname).where(
            zones.c.status.in_(HELD), zones.c.hostname.endswith(suffix, autoescape=True)
        )
    ).all()
    return [row for row in rows if hostnames.beneath(wildcard, row.hostname)]


class ZoneService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        zone_limit: int,
        nameserver: tuple[str, int] | None,
        dns_timeout: float,
        limiter: RateLimiter,
        additions: AdditionLimits | None = None,
        verifications_per_minute: int = VERIFICATIONS_PER_MINUTE,
        verifies_email: bool = False,
    ) -> None:
        self._db = db
        self._limiter = limiter
        self._additions = additions or AdditionLimits()
        self._verifications = verifications_per_minute
        self._verifies_email = verifies_email
        self._clock = clock
        self._limit = zone_limit
        self._nameserver = nameserver
        self._dns_timeout = dns_timeout

    async def add(self, *, principal: Principal, hostname: str, client: ClientInfo) -> ZoneInfo:
        """A pending zone; 409 when another account holds the hostname and its TXT
        record is still there (asked of DNS at once); 429 past the additions allowed
        per account and per address."""
        principal.require(Action.MANAGE_ZONES)
        confinement.require_account_wide(principal)
        name = hostnames.normalise(hostname)
        await self._check_addition_rate(principal.account_id, client)
        now = self._clock()

        def work(conn: Connection, *, despite_holder: bool = False) -> ZoneInfo:
            if not self._db.lock_account(conn, principal.account_id):
                raise NotAuthenticated
            if self._verifies_email:
                require_verified(conn, principal.person_id)
            return self._insert(
                conn,
                account_id=principal.account_id,
                hostname=name,
                status=ZoneStatus.PENDING,
                now=now,
                client=client,
                actor=principal,
                despite_holder=despite_holder,
            )

        try:
            return await self._write(work)
        except ZoneTaken:
            # Held elsewhere: ask DNS at once whether the holder still proves control.
            # Its record gone, the domain may have changed hands: the new owner may
            # claim it, and verifying moves the zone (``verify``).
            holder = await self._db.read(lambda conn: _holder(conn, name, principal.account_id))
            if holder is None or await self._holder_record_present(holder):
                raise
        return await self._write(functools.partial(work, despite_holder=True))

    async def _check_addition_rate(self, account_id: int, client: ClientInfo) -> None:
        limits = self._additions.limits(account_id, client.address)
        # Neither count is taken while the other is full: a refused addition costs
        # the account nothing at another address, and the address nothing for others.
        retry = await self._limiter.retry_after(limits)
        if not retry:
            for limit in limits:
                retry = max(retry, await self._limiter.consume(limit))
        if retry:
            raise RateLimited(retry, TOO_MANY_ADDITIONS)

    def _insert(
        self,
        conn: Connection,
        *,
        account_id: int,
        hostname: str,
        status: ZoneStatus,
        now: datetime,
        client: ClientInfo,
        actor: Principal | None,
        despite_holder: bool = False,
    ) -> ZoneInfo:
        existing = conn.execute(
            select(zones.c.account_id).where(zones.c.hostname == hostname)
        ).all()
        if any(row.account_id == account_id for row in existing):
            raise ZoneExists
        held_elsewhere = _holder(conn, hostname, account_id)
        if held_elsewhere is not None and (status is ZoneStatus.ACTIVE or not despite_holder):
            raise ZoneTaken
        count = conn.execute(
            select(func.count()).select_from(zones).where(zones.c.account_id == account_id)
        ).scalar_one()
        if count >= self._limit:
            raise ZoneLimitReached(self._limit)
        verified_at = now if status is ZoneStatus.ACTIVE else None
        token = secrets.token_urlsafe(24)
        zone_id = conn.execute(
            insert(zones)
            .values(
                account_id=account_id,
                hostname=hostname,
                status=str(status),
                token=token,
                created_at=now,
                verified_at=verified_at,
            )
            .returning(zones.c.id)
        ).scalar_one()
        if status is ZoneStatus.ACTIVE:
            self._drop_other_claims(conn, hostname=hostname, account_id=account_id)
        audit.record(
            conn,
            account_id=account_id,
            event=audit.Event.ZONE_VERIFIED if verified_at else audit.Event.ZONE_ADDED,
            at=now,
            client=client,
            actor=actor,
            actor_type=None if actor else audit.Actor.SYSTEM,
            detail=hostname if not verified_at else f"{hostname} (made active by an operator)",
            zone_id=zone_id,
        )
        if verified_at:
            _verified(conn, account_id=account_id, zone_id=zone_id, hostname=hostname, now=now)
        return ZoneInfo(zone_id, hostname, status, token, now, verified_at)

    @staticmethod
    def _drop_other_claims(
        conn: Connection, *, hostname: str, account_id: int, keep: int | None = None
    ) -> None:
        """Other accounts' pending claims on ``hostname`` go (but ``keep``: the zone that
        just moved away, which its old holder keeps as a pending claim)."""
        query = delete(zones).where(
            zones.c.hostname == hostname,
            zones.c.account_id != account_id,
            zones.c.status == str(ZoneStatus.PENDING),
        )
        if keep is not None:
            query = query.where(zones.c.id != keep)
        conn.execute(query)

    async def _write(self, work: Any) -> ZoneInfo:
        try:
            result: ZoneInfo = await self._db.write(work)
        except IntegrityError as exc:
            # Two accounts making one hostname active at once: the index lets one win.
            raise ZoneTaken from exc
        return result

    async def list(
        self, *, principal: Principal, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ZoneInfo]:
        """Newest first (``created_at``, then ``id``); a key limited to some zones sees
        those only."""
        query = select(zones).where(zones.c.account_id == principal.account_id)
        within = confinement.zone_filter(principal)
        return await newest_first(
            self._db,
            query if within is None else query.where(within),
            moment=zones.c.created_at,
            row_id=zones.c.id,
            limit=limit,
            cursor=cursor,
            item=zone_info,
        )

    async def _get(self, account_id: int, zone_id: int) -> ZoneInfo:
        row = await self._db.read(
            lambda conn: conn.execute(
                select(zones).where(zones.c.id == zone_id, zones.c.account_id == account_id)
            ).first()
        )
        if row is None:
            raise ZoneNotFound
        return zone_info(row)

    async def verify(self, *, principal: Principal, zone_id: int, client: ClientInfo) -> ZoneInfo:
        """Look for the TXT record; found → active (and other pending claims dropped)."""
        principal.require(Action.MANAGE_ZONES)
        zone = await self._get(principal.account_id, zone_id)
        confinement.require_zone(principal, zone.id)
        if zone.status is ZoneStatus.ACTIVE:
            return zone
        # Each verification sends a DNS question for a name the caller chose.
        retry = await self._limiter.consume(
            Limit(f"zone-verify:{principal.account_id}", self._verifications, 60)
        )
        if retry:
            raise RateLimited(retry, TOO_MANY_VERIFICATIONS)
        name = zone.challenge_name
        found = await dnsverify.txt_values(
            name, nameserver=self._nameserver, timeout=self._dns_timeout
        )
        problem = dnsverify.check_challenge(found, zone.token, name=name)
        if problem is not None:
            raise ValidationFailed(
                {"verification": [problem[0].upper() + problem[1:] + "."]},
                f"The zone could not be verified: {problem}. Create a TXT record at {name} "
                f"with the value {zone.token}, then verify again (DNS changes can take a "
                "few minutes to show).",
            )
        now = self._clock()

        def work(conn: Connection) -> ZoneInfo:
            holder = _holder(conn, zone.hostname, principal.account_id)
            if holder is not None:
                # Another account holds it. The same DNS answer says whether its record
                # is still there: then it keeps the zone; else the zone moves here.
                if dnsverify.check_challenge(found, holder.token, name=name) is None:
                    raise ZoneTaken
                self._move(conn, holder=holder, now=now)
            changed = conn.execute(
                update(zones)
                .where(
                    zones.c.id == zone.id,
                    zones.c.account_id == principal.account_id,
                    zones.c.status.in_([str(ZoneStatus.PENDING), str(ZoneStatus.SUSPENDED)]),
                )
                .values(
                    status=str(ZoneStatus.ACTIVE), verified_at=now, checked_at=now, missed_checks=0
                )
            ).rowcount
            if changed != 1:  # deleted (or verified) meanwhile
                row = conn.execute(select(zones).where(zones.c.id == zone.id)).first()
                if row is None:
                    raise ZoneNotFound
                return zone_info(row)
            self._drop_other_claims(
                conn,
                hostname=zone.hostname,
                account_id=principal.account_id,
                keep=holder.id if holder is not None else None,
            )
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.ZONE_VERIFIED,
                at=now,
                client=client,
                actor=principal,
                detail=zone.hostname,
                zone_id=zone.id,
            )
            _verified(
                conn,
                account_id=principal.account_id,
                zone_id=zone.id,
                hostname=zone.hostname,
                now=now,
            )
            return ZoneInfo(
                zone.id, zone.hostname, ZoneStatus.ACTIVE, zone.token, zone.created_at, now
            )

        return await self._write(work)

    async def delete(self, *, principal: Principal, zone_id: int, client: ClientInfo) -> ZoneInfo:
        principal.require(Action.MANAGE_ZONES)
        now = self._clock()

        def work(conn: Connection) -> ZoneInfo:
            row = conn.execute(
                select(zones).where(
                    zones.c.id == zone_id, zones.c.account_id == principal.account_id
                )
            ).first()
            if row is None:
                raise ZoneNotFound
            confinement.require_zone(principal, zone_id)
            conn.execute(delete(zones).where(zones.c.id == zone_id))
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.ZONE_DELETED,
                at=now,
                client=client,
                actor=principal,
                detail=row.hostname,
                zone_id=zone_id,
            )
            return zone_info(row)

        return await self._db.write(work)

    # -- zones follow their domain -------------------------------------------------------

    def _move(self, conn: Connection, *, holder: Any, now: datetime) -> None:
        """``holder`` (another account's held zone) stops being active: its record is
        gone and someone else proved control. It stays as a pending claim of its old
        account, with an entry in its security log and a mail. The caller activates
        the new owner's zone in the same transaction."""
        conn.execute(
            update(zones)
            .where(zones.c.id == holder.id)
            .values(
                status=str(ZoneStatus.PENDING), verified_at=None, checked_at=None, missed_checks=0
            )
        )
        audit.record(
            conn,
            account_id=holder.account_id,
            event=audit.Event.ZONE_MOVED,
            at=now,
            client=ClientInfo(),
            actor_type=audit.Actor.SYSTEM,
            detail=(
                f"{holder.hostname}: its DNS record was gone and another account proved "
                "control of the domain; the zone is that account's now"
            ),
            zone_id=holder.id,
        )
        enqueue(
            conn,
            self._db,
            account_id=holder.account_id,
            kind=Kind.ZONE_MOVED,
            dedupe_key=f"zone_moved:{holder.id}:{now.isoformat()}",
            payload={"hostname": holder.hostname, "zone_id": holder.id, "at": now.isoformat()},
            now=now,
        )

    async def _holder_record_present(self, holder: Any) -> bool:
        name = hostnames.challenge_name(holder.hostname)
        found = await dnsverify.txt_values(
            name, nameserver=self._nameserver, timeout=self._dns_timeout
        )
        return dnsverify.check_challenge(found, holder.token, name=name) is None

    async def run_rechecks(self, stopping: asyncio.Event) -> None:
        """The background job: a pass of :meth:`recheck_due` every
        :data:`RECHECK_PASS_SECONDS` until ``stopping`` (none at stop: a pass asks DNS
        and can wait for it)."""
        while not await wait_for_event(stopping, RECHECK_PASS_SECONDS):
            try:
                await self.recheck_due(stopping)
            except Exception:  # the database went away mid-pass: try again next time
                logger.exception("zone re-check pass failed")

    async def recheck_due(self, stopping: asyncio.Event | None = None) -> int:
        """The re-check job (every :data:`RECHECK_PASS_SECONDS`): each held zone whose
        record was last looked for :data:`RECHECK_EVERY` ago or more is looked for
        again. Found: all is well (a suspended zone is active again). Missing, while
        another account's pending claim has its record there: the zone moves to that
        account. Missing on :data:`MISSES_TO_SUSPEND` checks in a row: suspended, and
        the owner is mailed. DNS not answering counts as nothing. Returns the zones
        checked. Safe with many processes: each zone is claimed by moving its
        ``checked_at``, which one process only can do."""
        now = self._clock()
        due = await self._db.read(
            lambda conn: conn.execute(
                select(zones.c.id, zones.c.checked_at)
                .where(
                    zones.c.status.in_(HELD),
                    or_(zones.c.checked_at.is_(None), zones.c.checked_at <= now - RECHECK_EVERY),
                )
                .order_by(zones.c.id)
                .limit(RECHECKS_PER_PASS)
            ).all()
        )
        checked = 0
        for row in due:
            if stopping is not None and stopping.is_set():
                break
            try:
                checked += await self._recheck(row.id, row.checked_at, now)
            except DnsUnavailable:
                logger.warning("zone re-check: DNS did not answer", extra={"zone_id": row.id})
        return checked

    async def _recheck(self, zone_id: int, previous: datetime | None, now: datetime) -> bool:
        def claim(conn: Connection) -> Any:
            was = (
                zones.c.checked_at.is_(None) if previous is None else zones.c.checked_at == previous
            )
            changed = conn.execute(
                update(zones)
                .where(zones.c.id == zone_id, zones.c.status.in_(HELD), was)
                .values(checked_at=now)
            ).rowcount
            if changed != 1:
                return None  # another process took it, or it changed meanwhile
            return conn.execute(select(zones).where(zones.c.id == zone_id)).first()

        zone = await self._db.write(claim)
        if zone is None:
            return False
        name = hostnames.challenge_name(zone.hostname)
        try:
            found = await dnsverify.txt_values(
                name, nameserver=self._nameserver, timeout=self._dns_timeout
            )
        except DnsUnavailable:
            # Not a miss: look again at the next pass.
            await self._db.write(
                lambda conn: conn.execute(
                    update(zones)
                    .where(zones.c.id == zone_id, zones.c.checked_at == now)
                    .values(checked_at=previous)
                )
            )
            raise
        await self._db.write(functools.partial(self._settle, zone=zone, found=found, now=now))
        return True

    def _settle(self, conn: Connection, *, zone: Any, found: Sequence[str], now: datetime) -> None:
        """Record one re-check of ``zone`` whose challenge name held ``found``."""
        name = hostnames.challenge_name(zone.hostname)
        current = conn.execute(select(zones).where(zones.c.id == zone.id)).first()
        if current is None or current.status not in HELD:
            return  # deleted or moved meanwhile
        if dnsverify.check_challenge(found, current.token, name=name) is None:
            values: dict[str, Any] = {"missed_checks": 0}
            if current.status == ZoneStatus.SUSPENDED:
                values.update(status=str(ZoneStatus.ACTIVE), verified_at=now)
                audit.record(
                    conn,
                    account_id=current.account_id,
                    event=audit.Event.ZONE_VERIFIED,
                    at=now,
                    client=ClientInfo(),
                    actor_type=audit.Actor.SYSTEM,
                    detail=f"{current.hostname} (its DNS record is back)",
                    zone_id=current.id,
                )
                _verified(
                    conn,
                    account_id=current.account_id,
                    zone_id=current.id,
                    hostname=current.hostname,
                    now=now,
                )
            conn.execute(update(zones).where(zones.c.id == current.id).values(**values))
            return
        claimant = next(
            (
                row
                for row in conn.execute(
                    select(zones)
                    .where(
                        zones.c.hostname == current.hostname,
                        zones.c.account_id != current.account_id,
                        zones.c.status == str(ZoneStatus.PENDING),
                    )
                    .order_by(zones.c.created_at, zones.c.id)
                ).all()
                if dnsverify.check_challenge(found, row.token, name=name) is None
            ),
            None,
        )
        if claimant is not None:
            self._move(conn, holder=current, now=now)
            conn.execute(
                update(zones)
                .where(zones.c.id == claimant.id)
                .values(
                    status=str(ZoneStatus.ACTIVE), verified_at=now, checked_at=now, missed_checks=0
                )
            )
            self._drop_other_claims(
                conn, hostname=current.hostname, account_id=claimant.account_id, keep=current.id
            )
            audit.record(
                conn,
                account_id=claimant.account_id,
                event=audit.Event.ZONE_VERIFIED,
                at=now,
                client=ClientInfo(),
                actor_type=audit.Actor.SYSTEM,
                detail=f"{current.hostname} (found by the daily DNS check)",
                zone_id=claimant.id,
            )
            _verified(
                conn,
                account_id=claimant.account_id,
                zone_id=claimant.id,
                hostname=current.hostname,
                now=now,
            )
            return
        missed = current.missed_checks + 1
        values = {"missed_checks": missed}
        if missed >= MISSES_TO_SUSPEND and current.status == ZoneStatus.ACTIVE:
            values["status"] = str(ZoneStatus.SUSPENDED)
            audit.record(
                conn,
                account_id=current.account_id,
                event=audit.Event.ZONE_SUSPENDED,
                at=now,
                client=ClientInfo(),
                actor_type=audit.Actor.SYSTEM,
                detail=(
                    f"{current.hostname}: no TXT record at {name} on {missed} daily checks "
                    "in a row; nothing is purged for it until it is verified again"
                ),
                zone_id=current.id,
            )
            enqueue(
                conn,
                self._db,
                account_id=current.account_id,
                kind=Kind.ZONE_SUSPENDED,
                dedupe_key=f"zone_suspended:{current.id}:{now.isoformat()}",
                payload={
                    "hostname": current.hostname,
                    "zone_id": current.id,
                    "at": now.isoformat(),
                },
                now=now,
            )
        conn.execute(update(zones).where(zones.c.id == current.id).values(**values))

    # -- operators ------------------------------------------------------------------

    async def add_for(self, *, email: str, hostname: str, verified: bool) -> ZoneInfo:
        """An operator adds a zone to an account: active at once with ``verified``.

        With ``verified``, a zone the account already claims (pending, or suspended)
        is made active instead: the customer may well have added it first."""
        name = hostnames.normalise(hostname)
        now = self._clock()

        def work(conn: Connection) -> ZoneInfo:
            account_id = self._account_id(conn, email)
            if not self._db.lock_account(conn, account_id):
                raise AccountNotFound
            if verified:
                claimed = conn.execute(
                    select(zones).where(zones.c.account_id == account_id, zones.c.hostname == name)
                ).first()
                if claimed is not None:
                    return self._activate_for_operator(conn, zone=claimed, now=now)
            return self._insert(
                conn,
                account_id=account_id,
                hostname=name,
                status=ZoneStatus.ACTIVE if verified else ZoneStatus.PENDING,
                now=now,
                client=ClientInfo(address="cli"),
                actor=None,
            )

        return await self._write(work)

    def _activate_for_operator(self, conn: Connection, *, zone: Any, now: datetime) -> ZoneInfo:
        if zone.status == str(ZoneStatus.ACTIVE):
            raise ZoneExists
        if _holder(conn, zone.hostname, zone.account_id) is not None:
            raise ZoneTaken
        conn.execute(
            update(zones)
            .where(zones.c.id == zone.id)
            .values(status=str(ZoneStatus.ACTIVE), verified_at=now, checked_at=now, missed_checks=0)
        )
        self._drop_other_claims(conn, hostname=zone.hostname, account_id=zone.account_id)
        audit.record(
            conn,
            account_id=zone.account_id,
            event=audit.Event.ZONE_VERIFIED,
            at=now,
            client=ClientInfo(address="cli"),
            actor=None,
            actor_type=audit.Actor.SYSTEM,
            detail=f"{zone.hostname} (made active by an operator)",
            zone_id=zone.id,
        )
        _verified(
            conn, account_id=zone.account_id, zone_id=zone.id, hostname=zone.hostname, now=now
        )
        row = conn.execute(select(zones).where(zones.c.id == zone.id)).one()
        return zone_info(row)

    async def list_for(self, email: str) -> Sequence[ZoneInfo]:
        def read(conn: Connection) -> Sequence[ZoneInfo]:
            account_id = self._account_id(conn, email)
            rows = conn.execute(
                select(zones)
                .where(zones.c.account_id == account_id)
                .order_by(zones.c.created_at.desc(), zones.c.id.desc())
            ).all()
            return [zone_info(row) for row in rows]

        return await self._db.read(read)

    @staticmethod
    def _account_id(conn: Connection, email: str) -> int:
        normalised = email.strip().lower()
        person_id = conn.execute(
            select(persons.c.id).where(persons.c.email == normalised)
        ).scalar_one_or_none()
        account_id = home_account(conn, person_id) if person_id is not None else None
        if account_id is None:
            raise AccountNotFound(f"No account with the email {normalised}.")
        return account_id
