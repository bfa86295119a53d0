"""Purge requests: validate, confine to the caller's zones, rate-limit, queue one
delivery per cache node, report.

Paradarum is multi-tenant, so a purge reaches only what the caller has proven it
controls, its active zones (``services/zones.py``; for a key restricted to some
zones, those among them): every URL's host must be covered by one (else a 403
naming the others, and nothing is queued); a tag or "everything" purge carries the
zones' hostnames, and the cache bans only objects stored for them
(``purge_requests`` and ``deploy/varnish/paradarum.vcl``).

A purge is accepted in one write transaction that inserts the purge, one
``purge_deliveries`` row per configured cache node and the audit event. Nothing
is sent to a cache here: :mod:`paradarum.services.purge_jobs` does that in the
background, so the caller's ``202`` never waits for a cache node, and a queued
purge survives a restart because it lives in the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select

from paradarum import hostnames
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import purge_deliveries, purges
from paradarum.errors import NotAuthenticated, NotFound, NotYourHosts, RateLimited, ValidationFailed
from paradarum.ratelimit import Limit, RateLimiter
from paradarum.services import audit, confinement
from paradarum.services.context import ClientInfo, Principal
from paradarum.services.pagination import DEFAULT_LIMIT, Page, newest_first
from paradarum.services.roles import Action
from paradarum.services.zones import ZoneInfo, active_zones, held_beneath, owners

MAX_TARGETS = 100
URL_MAX = 2048
TAG_MAX = 128


class PurgeKind(StrEnum):
    URLS = "urls"
    TAGS = "tags"
    EVERYTHING = "everything"


class PurgeStatus(StrEnum):
    """Queued: no node tried yet. Running: some node still to answer. Done: every
    node purged. Failed: every node answered and at least one could not be purged."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


def node_label(index: int) -> str:
    """How a cache node is shown to customers: its place in the configuration, never
    its address (that is operator information)."""
    return f"node-{index + 1}"


class PurgeNotFound(NotFound):
    message = "No purge with that ID in this account."


@dataclass(frozen=True, slots=True)
class PurgeInfo:
    id: int
    kind: PurgeKind
    targets: list[str]
    status: PurgeStatus
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class NodeResult:
    """One cache node's part of a purge, as the customer may see it."""

    label: str
    status: DeliveryStatus
    attempts: int
    reason: str | None
    updated_at: datetime
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class PurgeDetail:
    purge: PurgeInfo
    nodes: list[NodeResult]


@dataclass(frozen=True, slots=True)
class PurgeScope:
    """What the calling credential may purge: read by a CMS plugin to say, before any
    purge, whether its key reaches the site it is installed on."""

    principal: Principal
    zones: list[str]
    # The host asked about (normalised), and whether a zone above covers it.
    hostname: str | None
    covered: bool | None


# -- rules (pure) ---------------------------------------------------------------


def _printable_ascii(value: str) -> bool:
    return all("!" <= ch <= "~" for ch in value)


def purge_url(raw: str) -> str | None:
    """The problem with ``raw`` as a purge URL, or None when it is fine."""
    if not raw or len(raw) > URL_MAX:
        return f"must be 1 to {URL_MAX} characters long"
    if not _printable_ascii(raw):
        return "must be ASCII without spaces or control characters (percent-encode the rest)"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an absolute http:// or https:// URL"
    if not parts.hostname:
        return "must include a host name"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if port == 0:
        return "has an invalid port"
    return None


def purge_tag(raw: str) -> str | None:
    """The problem with ``raw`` as a cache tag, or None when it is fine.

    Tags travel in HTTP headers as space- or comma-separated lists
    (``X-Cache-Tags`` from the origin, ``X-Purge-Tags`` to the cache), so a tag is
    visible ASCII without spaces or commas.
    """
    if not raw or len(raw) > TAG_MAX:
        return f"must be 1 to {TAG_MAX} characters long"
    if not _printable_ascii(raw) or "," in raw:
        return "must be printable ASCII without spaces or commas"
    return None


def _targets(field: str, values: Sequence[str], check: Callable[[str], str | None]) -> list[str]:
    if not 1 <= len(values) <= MAX_TARGETS:
        raise ValidationFailed(
            {field: [f"Give 1 to {MAX_TARGETS} {field}."]}, f"The {field} list is invalid."
        )
    problems = []
    for index, value in enumerate(values):
        problem = check(value)
        if problem:
            shown = value if len(value) <= 80 else value[:77] + "..."
            problems.append(f"Item {index + 1} ({shown!r}) {problem}.")
    if problems:
        raise ValidationFailed({field: problems}, f"The {field} list is invalid.")
    # The same target twice is one purge; keep the caller's order.
    return list(dict.fromkeys(values))


def purge_request(
    *, urls: Sequence[str] | None, tags: Sequence[str] | None, everything: bool | None
) -> tuple[PurgeKind, list[str]]:
    """``(kind, targets)`` from a request that must name exactly one kind."""
    given = [
        name
        for name, value in (("urls", urls), ("tags", tags), ("everything", everything))
        if value is not None
    ]
    if len(given) != 1:
        message = (
            "Give exactly one of urls, tags or everything."
            if not given
            else f"Give only one of urls, tags or everything, not {' and '.join(given)}."
        )
        fields = given or ["body"]
        raise ValidationFailed({field: [message] for field in fields}, message)
    if urls is not None:
        return PurgeKind.URLS, _targets("urls", urls, purge_url)
    if tags is not None:
        return PurgeKind.TAGS, _targets("tags", tags, purge_tag)
    if everything is not True:
        raise ValidationFailed(
            {"everything": ["Must be true to purge everything."]}, "The request is invalid."
        )
    return PurgeKind.EVERYTHING, []


# -- service --------------------------------------------------------------------


NO_ZONE = (
    "You have no active zone to purge: add a zone (POST /api/account/zones) and verify it first."
)


def confine(kind: PurgeKind, targets: Sequence[str], zone_names: Sequence[str]) -> list[str]:
    """The hostnames a purge is confined to, or the refusal: URLs on hosts that no
    zone covers (403, naming them), or a tag or everything purge without zones (400)."""
    if kind is PurgeKind.URLS:
        outside = sorted(
            {
                host or target
                for target in targets
                if not (host := hostnames.url_host(target))
                or not any(hostnames.covers(zone, host) for zone in zone_names)
            }
        )
        if outside:
            raise NotYourHosts(outside)
    elif not zone_names:
        field = "tags" if kind is PurgeKind.TAGS else "everything"
        raise ValidationFailed({field: [NO_ZONE]}, NO_ZONE)
    return list(zone_names)


@dataclass(frozen=True, slots=True)
class Reach:
    """What a purge may reach, decided from the zones as they are at that moment.

    ``targets``: for URLs, those whose host is owned by one of the purge's zones;
    ``hosts``: the zones a ban is confined to; ``excepts``: per wildcard zone among
    them, the hostnames other zones hold beneath it (a ban of the wildcard leaves
    them alone); ``outside``: the URL hosts that are not the purge's.
    """

    targets: list[str]
    hosts: list[str]
    excepts: dict[str, list[str]]
    outside: list[str]


def reach(
    conn: Connection, *, kind: PurgeKind, targets: Sequence[str], zones: Sequence[ZoneInfo]
) -> Reach:
    """Confine a purge to ``zones`` (the account's active zones it may use) with the
    ownership rule: the most specific held zone owns a hostname, so a wildcard zone
    never reaches a hostname that another zone (another account's, or one the key may
    not use) names more precisely, not by URL and not by a ban."""
    names = [zone.hostname for zone in zones]
    mine = {zone.id for zone in zones}
    if kind is PurgeKind.URLS:
        hosts = {target: hostnames.url_host(target) for target in targets}
        owner = owners(conn, [host for host in hosts.values() if host])
        kept: list[str] = []
        outside: set[str] = set()
        for target, host in hosts.items():
            found = owner.get(host) if host else None
            if found is not None and found.id in mine:
                kept.append(target)
            else:
                outside.add(host or target)
        return Reach(kept, names, {}, sorted(outside))
    excepts = {}
    for name in names:
        if hostnames.is_wildcard(name):
            others = sorted(row.hostname for row in held_beneath(conn, name) if row.id not in mine)
            if others:
                excepts[name] = others
    return Reach(list(targets), names, excepts, [])


def _info(row: Any) -> PurgeInfo:
    return PurgeInfo(
        id=row.id,
        kind=PurgeKind(row.kind),
        targets=list(json.loads(row.targets)),
        status=PurgeStatus(row.status),
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


def _node_results(conn: Connection, purge_ids: Sequence[int]) -> dict[int, list[NodeResult]]:
    """Each purge's nodes, in the order the nodes are configured."""
    found: dict[int, list[NodeResult]] = {purge_id: [] for purge_id in purge_ids}
    rows = conn.execute(
        select(purge_deliveries)
        .where(purge_deliveries.c.purge_id.in_(list(purge_ids)))
        .order_by(purge_deliveries.c.purge_id, purge_deliveries.c.id)
    ).all()
    for d in rows:
        found[d.purge_id].append(
            NodeResult(
                label=d.label,
                status=DeliveryStatus(d.status),
                attempts=d.attempts,
                reason=d.last_error,
                updated_at=d.updated_at,
                next_attempt_at=d.next_attempt_at if d.status == DeliveryStatus.QUEUED else None,
            )
        )
    return found


class PurgeService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        limiter: RateLimiter,
        nodes: Sequence[str],
        purges_per_window: int,
        window_seconds: int,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._nodes = list(dict.fromkeys(node.rstrip("/") for node in nodes))
        self._per_window = purges_per_window
        self._window = window_seconds
        # Called after a purge is committed: wakes this process's delivery loop.
        self._on_queued = on_queued

    @property
    def nodes(self) -> list[str]:
        return list(self._nodes)

    async def request(
        self,
        *,
        principal: Principal,
        client: ClientInfo,
        urls: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        everything: bool | None = None,
    ) -> PurgeInfo:
        """Queue a purge for every cache node; returns at once (delivery is separate)."""
        principal.require(Action.PURGE)
        kind, targets = purge_request(urls=urls, tags=tags, everything=everything)

        def allowed(conn: Connection) -> list[str]:
            zones = active_zones(conn, principal.account_id, principal.zone_ids)
            names = confine(kind, targets, [zone.hostname for zone in zones])
            # Covered is not enough: the most specific zone owns a hostname.
            outside = reach(conn, kind=kind, targets=targets, zones=zones).outside
            if outside:
                raise NotYourHosts(outside)
            return names

        # Refused purges do not count against the limit: checked first, and again
        # in the transaction that queues (a zone may be deleted in between).
        await self._db.read(allowed)
        retry = await self._limiter.consume(
            Limit(f"purge:{principal.account_id}", self._per_window, self._window)
        )
        if retry:
            raise RateLimited(retry, "Too many purges for this account. Try again later.")
        now = self._clock()
        # No cache node configured: nothing to deliver, so the purge is done at once.
        status = PurgeStatus.QUEUED if self._nodes else PurgeStatus.DONE

        def work(conn: Connection) -> int:
            if not self._db.lock_account(conn, principal.account_id):
                raise NotAuthenticated
            hosts = allowed(conn)
            purge_id = int(
                conn.execute(
                    insert(purges)
                    .values(
                        account_id=principal.account_id,
                        kind=str(kind),
                        targets=json.dumps(targets),
                        hosts=json.dumps(hosts),
                        key_id=principal.key_id,
                        status=str(status),
                        created_at=now,
                        completed_at=None if self._nodes else now,
                    )
                    .returning(purges.c.id)
                ).scalar_one()
            )
            if self._nodes:
                conn.execute(
                    insert(purge_deliveries),
                    [
                        {
                            "purge_id": purge_id,
                            "node": node,
                            "label": node_label(index),
                            "status": str(DeliveryStatus.QUEUED),
                            "attempts": 0,
                            "next_attempt_at": now,
                            "updated_at": now,
                        }
                        for index, node in enumerate(self._nodes)
                    ],
                )
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.PURGE_REQUESTED,
                at=now,
                client=client,
                actor=principal,
                key_id=principal.key_id,
                key_prefix=principal.key_prefix,
            )
            return purge_id

        purge_id = await self._db.write(work)
        if self._nodes and self._on_queued is not None:
            self._on_queued()
        return PurgeInfo(
            id=purge_id,
            kind=kind,
            targets=targets,
            status=status,
            created_at=now,
            completed_at=None if self._nodes else now,
        )

    async def scope(self, *, principal: Principal, hostname: str | None = None) -> PurgeScope:
        """The active zones ``principal`` may purge (for a zone-restricted key, those of
        its zones), and whether one of them covers ``hostname``, by the rule a URL purge
        applies (:func:`confine`). A caller whose role may not purge is refused, as its
        purges would be."""
        principal.require(Action.PURGE)
        host = None
        if hostname is not None:
            # A site's address may carry a port or a trailing dot: the host is what counts.
            raw = hostname.strip()
            bare = raw and not any(ch in raw for ch in "/?#@\\")
            host = hostnames.url_host(f"http://{raw}/") if bare else None
            if host is None:
                problem = "Give a hostname, such as www.example.com."
                raise ValidationFailed({"hostname": [problem]}, problem)

        def read(conn: Connection) -> list[str]:
            zones = active_zones(conn, principal.account_id, principal.zone_ids)
            return [zone.hostname for zone in zones]

        names = await self._db.read(read)
        covered = None if host is None else any(hostnames.covers(zone, host) for zone in names)
        return PurgeScope(principal=principal, zones=names, hostname=host, covered=covered)

    async def list(
        self, *, principal: Principal, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[PurgeInfo]:
        """Newest first (``created_at``, then ``id``); for a key limited to some zones,
        only the purges made with the keys it may see (``services/confinement.py``)."""
        query = select(purges).where(purges.c.account_id == principal.account_id)
        within = await self._db.read(lambda conn: confinement.purge_filter(conn, principal))
        if within is not None:
            query = query.where(within)
        return await newest_first(
            self._db,
            query,
            moment=purges.c.created_at,
            row_id=purges.c.id,
            limit=limit,
            cursor=cursor,
            item=_info,
        )

    async def get(self, *, principal: Principal, purge_id: int) -> PurgeDetail:
        """One purge with each node's result; another account's purge is not found,
        and one outside a zone-limited key's reach is a 403."""

        def read(conn: Connection) -> tuple[Any, list[NodeResult]]:
            row = conn.execute(
                select(purges).where(
                    purges.c.id == purge_id, purges.c.account_id == principal.account_id
                )
            ).first()
            if row is None:
                raise PurgeNotFound
            confinement.require_purge(conn, principal, row.key_id)
            return row, _node_results(conn, [purge_id]).get(purge_id, [])

        row, nodes = await self._db.read(read)
        return PurgeDetail(purge=_info(row), nodes=nodes)

    async def with_nodes(self, items: Sequence[PurgeInfo]) -> Sequence[PurgeDetail]:
        """``items`` (the account's own, from :meth:`request` or :meth:`list`) with each
        node's result, in one query: so that every answer about a purge says what the
        cache nodes did (an empty list: no node, nothing was sent)."""
        ids = [item.id for item in items]
        found = await self._db.read(lambda conn: _node_results(conn, ids)) if ids else {}
        return [PurgeDetail(purge=item, nodes=found.get(item.id, [])) for item in items]
