"""The API-key lifecycle: create (within the limit), list, revoke, roll.

A key is *active* while it is neither revoked nor past its ``expires_at``; only
active keys count against the limit and authenticate.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, select, update

from paradarum import keys
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.queries import usable_key
from paradarum.db.tables import api_keys, memberships, zones
from paradarum.errors import (
    AlreadyRevoked,
    KeyLimitReached,
    KeyNotFound,
    NotAuthenticated,
    RateLimited,
    RestrictedKey,
    ValidationFailed,
)
from paradarum.ratelimit import Limit, RateLimiter
from paradarum.services import audit, confinement, validation, webhooks
from paradarum.services.accounts import require_verified
from paradarum.services.context import ClientInfo, CredentialKind, Permission, Principal
from paradarum.services.emails import Kind, enqueue
from paradarum.services.pagination import DEFAULT_LIMIT, Page, newest_first
from paradarum.services.roles import Action, Role, require

MAX_EXPIRY = timedelta(days=366)
MAX_CIDRS = 20
MAX_ZONE_IDS = 100
MAX_GRACE = timedelta(days=7)


class KeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class RevokeReason(StrEnum):
    USER = "user"
    LEAKED = "leaked"
    ROLLED = "rolled"
    # Minted by a trust policy that was deleted since.
    POLICY = "policy"
    # Its member was demoted to a role that could not create it, or removed.
    MEMBER = "member"


class CreatorKind(StrEnum):
    """Who created a key: a member (with a session), another key, or a CI job."""

    MEMBER = "member"
    KEY = "key"
    # A CI job's OpenID Connect ID token, traded under a trust policy (services/trust.py).
    OIDC = "oidc"


class ListFilter(StrEnum):
    ALL = "all"
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class KeySettings:
    """The optional settings of a key; the defaults are a key as it always was."""

    expires_at: datetime | None = None
    permission: Permission = Permission.FULL
    allowed_cidrs: tuple[str, ...] | None = None
    zone_ids: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown about a key, ever: no hash, no raw key."""

    id: int
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_address: str | None
    last_used_user_agent: str | None
    revoked_at: datetime | None
    revoked_reason: RevokeReason | None
    revoked_detail: str | None
    settings: KeySettings
    created_by_kind: CreatorKind
    created_by_key_prefix: str | None
    replaces_id: int | None
    created_by_member_id: int | None = None
    created_by_email: str | None = None
    # Minted for a CI job by this trust policy, for the token's subject.
    trust_policy_id: int | None = None
    created_by_subject: str | None = None

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        expires = self.settings.expires_at
        if expires is not None and expires <= now:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """The one object that carries the raw key, returned once at creation."""

    info: KeyInfo
    raw_key: str


_PUBLIC_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.key_prefix,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.last_used_address,
    api_keys.c.last_used_user_agent,
    api_keys.c.revoked_at,
    api_keys.c.revoked_reason,
    api_keys.c.revoked_detail,
    api_keys.c.expires_at,
    api_keys.c.permissions,
    api_keys.c.allowed_cidrs,
    api_keys.c.zone_ids,
    api_keys.c.created_by_kind,
    api_keys.c.created_by_key_prefix,
    api_keys.c.replaces_id,
    api_keys.c.created_by_member_id,
    api_keys.c.created_by_email,
    api_keys.c.trust_policy_id,
    api_keys.c.created_by_subject,
)


def key_info(row: Any) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        key_prefix=row.key_prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        last_used_address=row.last_used_address,
        last_used_user_agent=row.last_used_user_agent,
        revoked_at=row.revoked_at,
        revoked_reason=RevokeReason(row.revoked_reason) if row.revoked_reason else None,
        revoked_detail=row.revoked_detail,
        settings=KeySettings(
            expires_at=row.expires_at,
            permission=Permission(row.permissions),
            allowed_cidrs=tuple(json.loads(row.allowed_cidrs)) if row.allowed_cidrs else None,
            zone_ids=tuple(json.loads(row.zone_ids)) if row.zone_ids else None,
        ),
        created_by_kind=CreatorKind(row.created_by_kind),
        created_by_key_prefix=row.created_by_key_prefix,
        replaces_id=row.replaces_id,
        created_by_member_id=row.created_by_member_id,
        created_by_email=row.created_by_email,
        trust_policy_id=row.trust_policy_id,
        created_by_subject=row.created_by_subject,
    )


def active(now: datetime) -> ColumnElement[bool]:
    """Neither revoked nor expired at ``now``: the one rule (``queries.usable_key``)."""
    return usable_key(now)


# -- rules (pure) ---------------------------------------------------------------------


def key_settings(
    *,
    now: datetime,
    expires_at: datetime | None = None,
    permission: Permission = Permission.FULL,
    allowed_cidrs: Sequence[str] | None = None,
    zone_ids: Sequence[int] | None = None,
) -> KeySettings:
    """Check the optional settings of a new key; every problem is named by field."""
    problems: dict[str, list[str]] = {}
    if expires_at is not None:
        if expires_at.tzinfo is None:
            problems["expiresAt"] = ["Give a time zone (e.g. 2027-01-31T00:00:00Z)."]
        elif expires_at <= now:
            problems["expiresAt"] = ["Must be in the future."]
        elif expires_at > now + MAX_EXPIRY:
            problems["expiresAt"] = ["Must be at most 366 days ahead."]
    networks: list[str] | None = None
    if allowed_cidrs is not None:
        networks = []
        if not 1 <= len(allowed_cidrs) <= MAX_CIDRS:
            problems["allowedCidrs"] = [f"Give 1 to {MAX_CIDRS} networks, or leave it out."]
        else:
            for entry in allowed_cidrs:
                try:
                    network = ipaddress.ip_network(entry.strip(), strict=False)
                except ValueError:
                    problems.setdefault("allowedCidrs", []).append(
                        f"{entry[:60]!r} is not an IPv4 or IPv6 address or network."
                    )
                    continue
                networks.append(str(network))
            networks = list(dict.fromkeys(networks))
    ids: list[int] | None = None
    if zone_ids is not None:
        if not 1 <= len(zone_ids) <= MAX_ZONE_IDS:
            problems["zoneIds"] = [f"Give 1 to {MAX_ZONE_IDS} zone IDs, or leave it out."]
        else:
            ids = sorted(set(zone_ids))
    if problems:
        raise ValidationFailed(problems, "The key settings are invalid.")
    return KeySettings(
        expires_at=expires_at,
        permission=permission,
        allowed_cidrs=tuple(networks) if networks is not None else None,
        zone_ids=tuple(ids) if ids is not None else None,
    )


def creating_action(permission: Permission) -> Action:
    """What making a key with ``permission`` takes (``services/roles.py``)."""
    return Action.CREATE_PURGE_KEY if permission is Permission.PURGE else Action.MANAGE_KEYS


def current_role(conn: Connection, member_id: int | None) -> Role | None:
    """A member's role as committed now (the principal's was read at sign-in of
    this request; a demotion may have committed since)."""
    role = conn.execute(
        select(memberships.c.role).where(memberships.c.id == member_id)
    ).scalar_one_or_none()
    return None if role is None else Role(role)


def _own_key(conn: Connection, account_id: int, key_id: int) -> Any:
    """The key's public columns, if it is this account's; else 404."""
    row = conn.execute(
        select(*_PUBLIC_COLUMNS).where(api_keys.c.id == key_id, api_keys.c.account_id == account_id)
    ).first()
    if row is None:
        raise KeyNotFound
    return row


def require_own_zones(conn: Connection, account_id: int, zone_ids: tuple[int, ...]) -> None:
    """``zoneIds`` name zones of this account (pending ones too), or 400."""
    own = set(
        conn.execute(
            select(zones.c.id).where(zones.c.account_id == account_id, zones.c.id.in_(zone_ids))
        ).scalars()
    )
    unknown = [zone_id for zone_id in zone_ids if zone_id not in own]
    if unknown:
        listed = ", ".join(str(zone_id) for zone_id in unknown)
        raise ValidationFailed(
            {"zoneIds": [f"No zone {listed} in your account (GET /api/account/zones lists them)."]},
            "The key settings are invalid.",
        )


def insert_key(
    conn: Connection,
    *,
    account_id: int,
    name: str,
    raw: str,
    settings: KeySettings,
    now: datetime,
    created_by_kind: CreatorKind,
    **created_by: Any,
) -> int:
    """Store a new key (its hash and prefix, never the key) and return its id.
    ``created_by`` fills the other ``created_by_*``, ``replaces_id`` and
    ``trust_policy_id`` columns."""
    return int(
        conn.execute(
            insert(api_keys)
            .values(
                account_id=account_id,
                name=name,
                key_prefix=keys.display_prefix(raw),
                key_hash=keys.hash_key(raw),
                created_at=now,
                expires_at=settings.expires_at,
                permissions=str(settings.permission),
                allowed_cidrs=json.dumps(settings.allowed_cidrs)
                if settings.allowed_cidrs is not None
                else None,
                zone_ids=json.dumps(settings.zone_ids) if settings.zone_ids is not None else None,
                created_by_kind=str(created_by_kind),
                **created_by,
            )
            .returning(api_keys.c.id)
        ).scalar_one()
    )


def _revocation(
    *where: ColumnElement[bool], now: datetime, reason: RevokeReason, detail: str | None
) -> Any:
    """The one conditional UPDATE that revokes: only keys not revoked already, so that
    of simultaneous revokes, in any process, exactly one changes a row."""
    values: dict[str, Any] = {"revoked_at": now, "revoked_reason": str(reason)}
    if detail is not None:
        values["revoked_detail"] = detail[:2048]
    return update(api_keys).where(api_keys.c.revoked_at.is_(None), *where).values(values)


def revoke_one(
    conn: Connection,
    key_id: int,
    *,
    now: datetime,
    reason: RevokeReason,
    detail: str | None = None,
    account_id: int | None = None,
) -> bool:
    """Revoke the key (of ``account_id``, when given) unless it is revoked already.
    True when this call changed the row (it alone logs and tells). Saying so is the
    caller's: :func:`revoke_keys` does both for the usual ``api_key.revoked``."""
    where = [api_keys.c.id == key_id]
    if account_id is not None:
        where.append(api_keys.c.account_id == account_id)
    return bool(conn.execute(_revocation(*where, now=now, reason=reason, detail=detail)).rowcount)


def revoke_keys(
    conn: Connection,
    *where: ColumnElement[bool],
    account_id: int,
    now: datetime,
    reason: RevokeReason,
    client: ClientInfo,
    actor: Principal | None = None,
    detail: str | None = None,
    logged: audit.Event | None = audit.Event.KEY_REVOKED,
    log_detail: str | None = None,
) -> list[Any]:
    """Revoke the account's keys that match ``where`` and are not revoked already,
    and tell, in the caller's transaction, for each key this call revoked: its
    security-log entry (``logged``; None when the caller logs the whole action in one
    entry instead, with ``log_detail``) and the webhook event ``api_key.revoked``.

    ``actor`` is who revoked (a member's session or a key); None: Paradarum itself
    (the system). ``detail`` is kept on the key (``revokedDetail``) and sent with the
    event. Returns the keys revoked (id, name, key_prefix), by id."""
    revoked = sorted(
        conn.execute(
            _revocation(
                api_keys.c.account_id == account_id, *where, now=now, reason=reason, detail=detail
            ).returning(api_keys.c.id, api_keys.c.name, api_keys.c.key_prefix)
        ).all(),
        key=lambda key: int(key.id),
    )
    for key in revoked:
        if logged is not None:
            audit.record(
                conn,
                account_id=account_id,
                event=logged,
                at=now,
                client=client,
                actor=actor,
                actor_type=None if actor else audit.Actor.SYSTEM,
                key_id=key.id,
                key_prefix=key.key_prefix,
                detail=log_detail,
            )
        webhooks.emit_key_revoked(
            conn,
            account_id=account_id,
            key=key,
            reason=str(reason),
            now=now,
            detail=detail,
            actor=actor.actor_name if actor else "system",
        )
    return revoked


# -- service --------------------------------------------------------------------------


class ApiKeyService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        limiter: RateLimiter,
        key_limit: int,
        creations_per_window: int,
        creation_window_seconds: int,
        verifies_email: bool = False,
        on_notify: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._verifies_email = verifies_email
        self._on_notify = on_notify
        self._key_limit = key_limit
        self._creations = creations_per_window
        self._creation_window = creation_window_seconds

    @property
    def key_limit(self) -> int:
        return self._key_limit

    @staticmethod
    def _count_active(conn: Connection, account_id: int, now: datetime) -> int:
        """Active keys that count against the limit: a CI job's short-lived key,
        minted by a trust policy, does not."""
        return int(
            conn.execute(
                select(func.count())
                .select_from(api_keys)
                .where(
                    api_keys.c.account_id == account_id,
                    active(now),
                    api_keys.c.trust_policy_id.is_(None),
                )
            ).scalar_one()
        )

    def _lock_for_new_key(self, conn: Connection, principal: Principal, action: Action) -> None:
        """Hold the account (creates, rolls and role changes of one account queue
        behind each other) and check the caller may make this key now: with the
        member's role as committed, so that a key made while its member is being
        demoted cannot outlive the demotion."""
        if not self._db.lock_account(conn, principal.account_id):
            raise NotAuthenticated
        role = current_role(conn, principal.member_id)
        if role is None:
            raise NotAuthenticated
        require(role, action)
        if self._verifies_email:
            require_verified(conn, principal.person_id)

    async def _check_creation_rate(self, principal: Principal) -> None:
        retry = await self._limiter.consume(
            Limit(f"key-create:{principal.account_id}", self._creations, self._creation_window)
        )
        if retry:
            raise RateLimited(retry, "Too many keys created recently. Try again later.")

    async def create(
        self,
        *,
        principal: Principal,
        name: str,
        client: ClientInfo,
        settings: KeySettings | None = None,
    ) -> CreatedKey:
        """Create a key, unless the account already has ``key_limit`` active ones.

        Why the lock: counting active keys and inserting must be one atomic step,
        or 30 simultaneous creates would all count 9 and all insert. The account
        row lock (PostgreSQL) or ``BEGIN IMMEDIATE`` (SQLite) makes every create
        of one account wait for the previous one to commit.
        """
        settings = settings or KeySettings()
        action = creating_action(settings.permission)
        principal.require(action)
        if principal.restricted:
            raise RestrictedKey
        principal.require_step_up(self._clock())
        name = validation.key_name(name)
        await self._check_creation_rate(principal)
        raw = keys.generate()
        now = self._clock()

        def work(conn: Connection) -> KeyInfo:
            self._lock_for_new_key(conn, principal, action)
            if self._count_active(conn, principal.account_id, now) >= self._key_limit:
                raise KeyLimitReached(self._key_limit)
            if settings.zone_ids is not None:
                require_own_zones(conn, principal.account_id, settings.zone_ids)
            return self._insert(
                conn,
                principal=principal,
                client=client,
                name=name,
                raw=raw,
                settings=settings,
                now=now,
            )

        info = await self._db.write(work)
        self._notified()
        return CreatedKey(info=info, raw_key=raw)

    def _notified(self) -> None:
        if self._on_notify is not None:
            self._on_notify()

    def _insert(
        self,
        conn: Connection,
        *,
        principal: Principal,
        client: ClientInfo,
        name: str,
        raw: str,
        settings: KeySettings,
        now: datetime,
        replaces: KeyInfo | None = None,
    ) -> KeyInfo:
        prefix = keys.display_prefix(raw)
        by_key = principal.kind is CredentialKind.KEY
        key_id = insert_key(
            conn,
            account_id=principal.account_id,
            name=name,
            raw=raw,
            settings=settings,
            now=now,
            created_by_kind=CreatorKind.KEY if by_key else CreatorKind.MEMBER,
            created_by_key_id=principal.key_id if by_key else None,
            created_by_key_prefix=principal.key_prefix if by_key else None,
            created_by_member_id=principal.member_id,
            created_by_email=principal.email,
            member_id=principal.member_id,
            replaces_id=replaces.id if replaces else None,
        )
        audit.record(
            conn,
            account_id=principal.account_id,
            event=audit.Event.KEY_CREATED,
            at=now,
            client=client,
            actor=principal,
            key_id=key_id,
            key_prefix=prefix,
            detail=f"Replaces {replaces.key_prefix} ({replaces.name})." if replaces else None,
        )
        webhooks.emit(
            conn,
            account_id=principal.account_id,
            event=webhooks.Event.KEY_CREATED,
            data={
                "id": key_id,
                "name": name,
                "keyPrefix": prefix,
                "createdAt": now,
                "expiresAt": settings.expires_at,
                "permissions": str(settings.permission),
                "replaces": replaces.id if replaces else None,
                "actor": principal.actor_name,
            },
            now=now,
        )
        # "A new API key was added to your account", like the big platforms send.
        enqueue(
            conn,
            self._db,
            account_id=principal.account_id,
            kind=Kind.KEY_ADDED,
            dedupe_key=f"key_added:{key_id}",
            payload={
                "key": {"id": key_id, "name": name, "prefix": prefix},
                "added_at": now.isoformat(),
                "address": client.address,
                "user_agent": client.user_agent,
                "created_by_prefix": principal.key_prefix if by_key else None,
            },
            now=now,
        )
        return KeyInfo(
            id=key_id,
            name=name,
            key_prefix=prefix,
            created_at=now,
            last_used_at=None,
            last_used_address=None,
            last_used_user_agent=None,
            revoked_at=None,
            revoked_reason=None,
            revoked_detail=None,
            settings=settings,
            created_by_kind=CreatorKind.KEY if by_key else CreatorKind.MEMBER,
            created_by_key_prefix=principal.key_prefix if by_key else None,
            replaces_id=replaces.id if replaces else None,
            created_by_member_id=principal.member_id,
            created_by_email=principal.email,
        )

    async def list(
        self,
        *,
        principal: Principal,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        status: ListFilter = ListFilter.ALL,
    ) -> Page[KeyInfo]:
        """Newest first (``created_at``, then ``id``), revoked keys included by default;
        for a key limited to some zones, only the keys confined within them."""
        now = self._clock()
        query = select(*_PUBLIC_COLUMNS).where(api_keys.c.account_id == principal.account_id)
        if status is ListFilter.ACTIVE:
            query = query.where(active(now))
        elif status is ListFilter.REVOKED:
            query = query.where(api_keys.c.revoked_at.is_not(None))
        elif status is ListFilter.EXPIRED:
            query = query.where(api_keys.c.revoked_at.is_(None), api_keys.c.expires_at <= now)
        within = await self._db.read(lambda conn: confinement.key_filter(conn, principal))
        return await newest_first(
            self._db,
            query if within is None else query.where(within),
            moment=api_keys.c.created_at,
            row_id=api_keys.c.id,
            limit=limit,
            cursor=cursor,
            item=key_info,
        )

    async def revoke(self, *, principal: Principal, key_id: int, client: ClientInfo) -> KeyInfo:
        """Revoke for good. Of simultaneous revokes, exactly one changes the row."""
        principal.require(Action.MANAGE_KEYS)
        now = self._clock()

        def work(conn: Connection) -> KeyInfo:
            confinement.require_key(conn, principal, key_id)
            changed = revoke_keys(
                conn,
                api_keys.c.id == key_id,
                account_id=principal.account_id,
                now=now,
                reason=RevokeReason.USER,
                client=client,
                actor=principal,
            )
            row = _own_key(conn, principal.account_id, key_id)
            if not changed:
                raise AlreadyRevoked
            return key_info(row)

        return await self._db.write(work)

    async def roll(
        self, *, principal: Principal, key_id: int, grace: timedelta, client: ClientInfo
    ) -> CreatedKey:
        """Replace a key with a new one of the same name and settings.

        The old key keeps working for ``grace`` (0: revoked at once) so that the
        new one can be deployed first; while it works it still counts against the
        limit, so at the limit only a roll without grace is possible. A key that
        expires gets a replacement with the same lifetime, from now.
        """
        principal.require(Action.MANAGE_KEYS)
        if principal.restricted:
            raise RestrictedKey
        principal.require_step_up(self._clock())
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise ValidationFailed(
                {"gracePeriodMinutes": ["Use 0 to 10080 minutes (7 days)."]},
                "The grace period is invalid.",
            )
        await self._check_creation_rate(principal)
        raw = keys.generate()
        now = self._clock()

        def work(conn: Connection) -> KeyInfo:
            self._lock_for_new_key(conn, principal, Action.MANAGE_KEYS)
            old = key_info(_own_key(conn, principal.account_id, key_id))
            status = old.status(now)
            if status is not KeyStatus.ACTIVE:
                raise ValidationFailed(
                    {"id": [f"This key is {status}: only an active key can be rolled."]},
                    f"This API key is {status}; create a new key instead.",
                )
            replacement = conn.execute(
                select(api_keys.c.id, api_keys.c.key_prefix)
                .where(api_keys.c.replaces_id == old.id)
                .order_by(api_keys.c.id.desc())
                .limit(1)
            ).first()
            if replacement is not None:
                # Its grace period is running: a second roll would count its
                # lifetime from a grace period, and leave two replacements.
                raise ValidationFailed(
                    {"id": [f"Already rolled: key {replacement.id} replaces it."]},
                    f"This API key was rolled already: key {replacement.id} "
                    f"({replacement.key_prefix}…) replaces it. Roll that one instead.",
                )
            if grace and self._count_active(conn, principal.account_id, now) >= self._key_limit:
                raise ValidationFailed(
                    {"gracePeriodMinutes": ["At the key limit, only 0 is possible."]},
                    f"This account has {self._key_limit} active API keys, the most allowed, "
                    "and the old key would still count during the grace period. Roll with a "
                    "grace period of 0, or revoke another key first.",
                )
            expires_at = old.settings.expires_at
            if expires_at is not None:
                expires_at = now + min(expires_at - old.created_at, MAX_EXPIRY)
            settings = KeySettings(
                expires_at=expires_at,
                permission=old.settings.permission,
                allowed_cidrs=old.settings.allowed_cidrs,
                zone_ids=old.settings.zone_ids,
            )
            created = self._insert(
                conn,
                principal=principal,
                client=client,
                name=old.name,
                raw=raw,
                settings=settings,
                now=now,
                replaces=old,
            )
            if grace:
                until = now + grace
                if old.settings.expires_at is not None:
                    until = min(until, old.settings.expires_at)
                values: dict[str, Any] = {"expires_at": until}
                detail = f"Replaced by {created.key_prefix}; works until the grace period ends."
            else:
                values = {"revoked_at": now, "revoked_reason": str(RevokeReason.ROLLED)}
                detail = f"Replaced by {created.key_prefix}; revoked at once."
            conn.execute(update(api_keys).where(api_keys.c.id == old.id).values(**values))
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.KEY_ROLLED,
                at=now,
                client=client,
                actor=principal,
                key_id=old.id,
                key_prefix=old.key_prefix,
                detail=detail,
            )
            webhooks.emit(
                conn,
                account_id=principal.account_id,
                event=webhooks.Event.KEY_ROLLED,
                data={
                    "id": old.id,
                    "name": old.name,
                    "keyPrefix": old.key_prefix,
                    "replacedBy": {"id": created.id, "keyPrefix": created.key_prefix},
                    "worksUntil": values.get("expires_at"),
                    "revokedAt": values.get("revoked_at"),
                    "actor": principal.actor_name,
                },
                now=now,
            )
            return created

        info = await self._db.write(work)
        self._notified()
        return CreatedKey(info=info, raw_key=raw)
