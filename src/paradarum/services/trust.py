"""Trust policies: CI jobs trade an OpenID Connect ID token for a short-lived key.

A policy says which tokens an account trusts: those of one issuer, for one
audience, whose claims equal the policy's conditions. A token that passes every
check (``paradarum.oidc``) and names no ``jti`` seen before is exchanged for a
``pdm_`` key with the policy's permissions and zones that expires after the
policy's TTL. Nothing is stored in the CI system, so nothing there can leak.

Why the conditions must pin an immutable identity (``repository_id``,
``repository_owner_id``, ``project_id``) or ``sub``: without one, any repository
on the issuer (every GitHub user) could mint keys; and names can be re-registered
by someone else after a rename or deletion, ids cannot.

Every refusal is the same 401 for the caller. Which check failed is in the
server log, and in the security log of the account whose policy the token
addressed (by issuer and pinned identity), at most once a minute per policy and
check so that nobody can fill an account's log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select

from paradarum import keys, oidc
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys, memberships, oidc_token_uses, trust_policies
from paradarum.errors import (
    NotAuthenticated,
    RateLimited,
    TrustPolicyLimitReached,
    TrustPolicyNotFound,
    Unavailable,
    ValidationFailed,
)
from paradarum.oidc import Check, IssuerKeys, TokenRejected
from paradarum.ratelimit import Limit, RateLimiter, address_bucket
from paradarum.services import audit, validation, webhooks
from paradarum.services.accounts import require_verified
from paradarum.services.apikeys import (
    CreatorKind,
    KeySettings,
    RevokeReason,
    active,
    insert_key,
    key_settings,
    require_own_zones,
    revoke_keys,
)
from paradarum.services.context import ClientInfo, Permission, Principal
from paradarum.services.roles import Action, Role, may

logger = logging.getLogger("paradarum.oidc")

MAX_POLICIES = 20
MAX_CONDITIONS = 20
TTL_MIN, TTL_MAX, TTL_DEFAULT = 60, 3600, 900
MAX_URL = 512
MAX_VALUE = 512
# Claims that name a workload for good; a policy must pin one of them. The order
# says which one is indexed (pin_claim/pin_value) when a policy pins several.
PIN_CLAIMS = ("repository_id", "project_id", "repository_owner_id", "sub")
# Checked by the verification itself, so they make no sense as conditions.
RESERVED_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})
_CLAIM_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# What the security log says about the job behind a token (GitHub's claims, then
# GitLab's), each clipped.
DESCRIBED_CLAIMS = (
    ("repository", "repository"),
    ("workflow", "workflow"),
    ("ref", "ref"),
    ("run_id", "run"),
    ("run_attempt", "attempt"),
    ("project_path", "project"),
    ("pipeline_id", "pipeline"),
    ("job_id", "job"),
    ("sub", "subject"),
)
REFUSAL_LOG_INTERVAL = 60.0
NOT_ACCEPTED = "The token was not accepted."


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    id: int
    account_id: int
    name: str
    issuer: str
    audience: str
    conditions: dict[str, str]
    permission: Permission
    zone_ids: tuple[int, ...] | None
    ttl_seconds: int
    created_at: datetime
    # The member who made it, who vouches for the keys it mints.
    member_id: int | None = None
    # Keys it minted that work now (filled in by the list).
    active_keys: int = 0

    def accepts_audience(self, claims: Mapping[str, Any]) -> bool:
        audience = claims.get("aud")
        if isinstance(audience, str):
            return audience == self.audience
        return isinstance(audience, list) and self.audience in audience

    def mismatches(self, claims: Mapping[str, Any]) -> list[str]:
        """The conditions ``claims`` do not meet: exact string equality only."""
        return [name for name, value in self.conditions.items() if claims.get(name) != value]


@dataclass(frozen=True, slots=True)
class MintedKey:
    """A key minted for a CI job: the raw key, once."""

    raw_key: str
    key_prefix: str
    expires_at: datetime
    policy_id: int


_COLUMNS = (
    trust_policies.c.id,
    trust_policies.c.account_id,
    trust_policies.c.name,
    trust_policies.c.issuer,
    trust_policies.c.audience,
    trust_policies.c.conditions,
    trust_policies.c.permissions,
    trust_policies.c.zone_ids,
    trust_policies.c.ttl_seconds,
    trust_policies.c.created_at,
    trust_policies.c.member_id,
)


def _policy(row: Any, active_keys: int = 0) -> TrustPolicy:
    return TrustPolicy(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        issuer=row.issuer,
        audience=row.audience,
        conditions=json.loads(row.conditions),
        permission=Permission(row.permissions),
        zone_ids=tuple(json.loads(row.zone_ids)) if row.zone_ids else None,
        ttl_seconds=row.ttl_seconds,
        created_at=row.created_at,
        member_id=row.member_id,
        active_keys=active_keys,
    )


# -- rules (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicySettings:
    name: str
    issuer: str
    audience: str
    conditions: dict[str, str]
    pin: tuple[str, str]
    key: KeySettings
    ttl_seconds: int


def _url_problem(value: str, *, what: str) -> str | None:
    if not value:
        return f"Give the {what}."
    if len(value) > MAX_URL:
        return f"The {what} must be at most {MAX_URL} characters."
    if validation.hidden_characters(value) or any(ch.isspace() for ch in value):
        return f"The {what} must not contain spaces or control characters."
    return None


def policy_settings(
    *,
    now: datetime,
    name: str,
    issuer: str,
    audience: str | None,
    conditions: Mapping[str, str],
    permission: Permission,
    zone_ids: Sequence[int] | None,
    ttl_seconds: int,
    default_audience: str,
    insecure_issuers: frozenset[str],
) -> PolicySettings:
    """Check a new policy; every problem is named by field."""
    problems: dict[str, list[str]] = {}
    try:
        name = validation.key_name(name)
    except ValidationFailed as exc:
        problems.update(exc.errors)
    issuer = issuer.strip()
    problem = _url_problem(issuer, what="issuer")
    secure = issuer.startswith("https://") or (
        issuer.startswith("http://") and issuer in insecure_issuers
    )
    if problem is None and not secure:
        problem = (
            "The issuer must be an https:// URL "
            "(http:// only for issuers listed in PARADARUM_OIDC_INSECURE_ISSUERS)."
        )
    if problem is None and ("?" in issuer or "#" in issuer or len(issuer) <= len("https://")):
        problem = "The issuer is a URL without a query or fragment, exactly as in its tokens."
    if problem:
        problems["issuer"] = [problem]
    audience = default_audience if audience is None else audience.strip()
    problem = _url_problem(audience, what="audience")
    if problem:
        problems["audience"] = [problem]
    condition_problems: list[str] = []
    if not 1 <= len(conditions) <= MAX_CONDITIONS:
        condition_problems.append(f"Give 1 to {MAX_CONDITIONS} claims with their exact values.")
    for claim, value in conditions.items():
        if not _CLAIM_NAME.fullmatch(claim):
            condition_problems.append(
                f"{claim[:64]!r} is not a claim name (letters, digits, _ . : -; 1 to 64)."
            )
        elif claim in RESERVED_CLAIMS:
            condition_problems.append(f"{claim} is checked anyway; leave it out.")
        elif not value or len(value) > MAX_VALUE or validation.hidden_characters(value):
            condition_problems.append(
                f"The value of {claim} must be 1 to {MAX_VALUE} visible characters."
            )
    pinned = [claim for claim in PIN_CLAIMS if claim in conditions]
    if conditions and not pinned:
        condition_problems.append(
            "Pin the workload: include one of " + ", ".join(PIN_CLAIMS) + ". "
            "Without one, any repository or project on this issuer could get keys."
        )
    if condition_problems:
        problems["conditions"] = condition_problems
    if not TTL_MIN <= ttl_seconds <= TTL_MAX:
        problems["ttlSeconds"] = [f"Use {TTL_MIN} to {TTL_MAX} seconds."]
    try:
        key = key_settings(now=now, permission=permission, zone_ids=zone_ids)
    except ValidationFailed as exc:
        problems.update(exc.errors)
        key = KeySettings()
    if problems:
        raise ValidationFailed(problems, "The trust policy is invalid.")
    return PolicySettings(
        name=name,
        issuer=issuer,
        audience=audience,
        conditions=dict(conditions),
        pin=(pinned[0], conditions[pinned[0]]),
        key=key,
        ttl_seconds=ttl_seconds,
    )


def describe(claims: Mapping[str, Any]) -> str:
    """The job behind a token, for the security log (each value clipped, visible)."""
    parts = []
    for claim, label in DESCRIBED_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = "".join(ch if ch.isprintable() else "?" for ch in str(value)[:200])
            parts.append(f"{label} {text}")
    return ", ".join(parts) or "no repository claims"


def token_use_id(issuer: str, jti: str) -> str:
    """Where a token's use is remembered: the ``jti`` is unique per issuer only."""
    return hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()


def _may_manage(principal: Principal, now: datetime | None = None) -> None:
    """Who may see, add or delete trust policies: a member of developer or above,
    with a panel session, never a key (a key that could add a policy could mint
    keys that outlive its own revocation). ``services/roles.py`` holds the rule.
    Adding or deleting one (``now`` given) needs a sign-in at most 10 minutes old
    (step-up)."""
    principal.require(Action.MANAGE_TRUST_POLICIES)
    if now is not None:
        principal.require_step_up(now)


# -- service --------------------------------------------------------------------------


class TrustPolicyService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        limiter: RateLimiter,
        issuer_keys: IssuerKeys,
        default_audience: str,
        insecure_issuers: frozenset[str],
        exchanges_per_address: int,
        exchange_window_seconds: int,
        verifies_email: bool = False,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._issuer_keys = issuer_keys
        self._default_audience = default_audience
        self._insecure = insecure_issuers
        self._exchanges = exchanges_per_address
        self._exchange_window = exchange_window_seconds
        self._refusals_logged: dict[tuple[int, Check], float] = {}
        self._verifies_email = verifies_email

    # -- managing policies ------------------------------------------------------------

    async def create(
        self,
        *,
        principal: Principal,
        client: ClientInfo,
        name: str,
        issuer: str,
        audience: str | None,
        conditions: Mapping[str, str],
        permission: Permission = Permission.PURGE,
        zone_ids: Sequence[int] | None = None,
        ttl_seconds: int = TTL_DEFAULT,
    ) -> TrustPolicy:
        now = self._clock()
        _may_manage(principal, now)
        settings = policy_settings(
            now=now,
            name=name,
            issuer=issuer,
            audience=audience,
            conditions=conditions,
            permission=permission,
            zone_ids=zone_ids,
            ttl_seconds=ttl_seconds,
            default_audience=self._default_audience,
            insecure_issuers=self._insecure,
        )
        key = settings.key

        def work(conn: Connection) -> TrustPolicy:
            if not self._db.lock_account(conn, principal.account_id):
                raise NotAuthenticated
            # A policy makes keys: the same rule as for making one by hand.
            if self._verifies_email:
                require_verified(conn, principal.person_id)
            count = conn.execute(
                select(func.count())
                .select_from(trust_policies)
                .where(trust_policies.c.account_id == principal.account_id)
            ).scalar_one()
            if count >= MAX_POLICIES:
                raise TrustPolicyLimitReached(MAX_POLICIES)
            if key.zone_ids is not None:
                require_own_zones(conn, principal.account_id, key.zone_ids)
            policy_id = conn.execute(
                insert(trust_policies)
                .values(
                    account_id=principal.account_id,
                    name=settings.name,
                    issuer=settings.issuer,
                    audience=settings.audience,
                    conditions=json.dumps(settings.conditions, sort_keys=True),
                    pin_claim=settings.pin[0],
                    pin_value=settings.pin[1],
                    permissions=str(key.permission),
                    zone_ids=json.dumps(key.zone_ids) if key.zone_ids is not None else None,
                    ttl_seconds=settings.ttl_seconds,
                    created_at=now,
                    member_id=principal.member_id,
                )
                .returning(trust_policies.c.id)
            ).scalar_one()
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.TRUST_POLICY_CREATED,
                at=now,
                client=client,
                actor=principal,
                detail=f"Trust policy {policy_id} ({settings.name}): tokens of "
                f"{settings.issuer} with {settings.pin[0]} {settings.pin[1]} get "
                f"{key.permission} keys for {settings.ttl_seconds} s.",
            )
            return TrustPolicy(
                id=policy_id,
                account_id=principal.account_id,
                name=settings.name,
                issuer=settings.issuer,
                audience=settings.audience,
                conditions=settings.conditions,
                permission=key.permission,
                zone_ids=key.zone_ids,
                ttl_seconds=settings.ttl_seconds,
                created_at=now,
                member_id=principal.member_id,
            )

        return await self._db.write(work)

    async def list(self, *, principal: Principal) -> list[TrustPolicy]:
        """The account's policies, newest first, with how many keys each has working."""
        _may_manage(principal)
        now = self._clock()
        working = (
            select(func.count())
            .select_from(api_keys)
            .where(api_keys.c.trust_policy_id == trust_policies.c.id, active(now))
            .scalar_subquery()
        )
        query = (
            select(*_COLUMNS, working.label("active_keys"))
            .where(trust_policies.c.account_id == principal.account_id)
            .order_by(trust_policies.c.created_at.desc(), trust_policies.c.id.desc())
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_policy(row, int(row.active_keys)) for row in rows]

    async def delete(
        self, *, principal: Principal, policy_id: int, client: ClientInfo
    ) -> TrustPolicy:
        """Remove a policy and revoke every key it minted that still works."""
        now = self._clock()
        _may_manage(principal, now)

        def work(conn: Connection) -> TrustPolicy:
            # Minting holds the same lock: no key can be minted by a policy whose
            # deletion has begun, nor escape the revocation below.
            if not self._db.lock_account(conn, principal.account_id):
                raise NotAuthenticated
            row = conn.execute(
                select(*_COLUMNS).where(
                    trust_policies.c.id == policy_id,
                    trust_policies.c.account_id == principal.account_id,
                )
            ).first()
            if row is None:
                raise TrustPolicyNotFound
            conn.execute(delete(trust_policies).where(trust_policies.c.id == policy_id))
            detail = f"Trust policy {policy_id} ({row.name}) was deleted."
            # One entry for the deletion below, not one per key.
            revoked = len(
                revoke_keys(
                    conn,
                    api_keys.c.trust_policy_id == policy_id,
                    active(now),
                    account_id=principal.account_id,
                    now=now,
                    reason=RevokeReason.POLICY,
                    client=client,
                    actor=principal,
                    detail=detail,
                    logged=None,
                )
            )
            audit.record(
                conn,
                account_id=principal.account_id,
                event=audit.Event.TRUST_POLICY_DELETED,
                at=now,
                client=client,
                actor=principal,
                detail=f"Trust policy {policy_id} ({row.name}) deleted; "
                f"{revoked} key(s) it minted revoked.",
            )
            return _policy(row)

        return await self._db.write(work)

    # -- the exchange -----------------------------------------------------------------

    async def exchange(
        self, *, token: str, client: ClientInfo, policy_id: int | None = None
    ) -> MintedKey:
        """A short-lived key for the CI job whose ID token this is, by the policy
        ``policy_id`` when given (needed when policies of several accounts trust
        the same workload).

        Raises :class:`NotAuthenticated` (the same 401 whatever failed; the logs
        say which check) or :class:`RateLimited` (per client address).
        """
        retry = await self._limiter.consume(
            Limit(
                f"oidc-token:{address_bucket(client.address)}",
                self._exchanges,
                self._exchange_window,
            )
        )
        if retry:
            raise RateLimited(retry, "Too many token exchanges. Try again later.")
        now = self._clock()
        policy: TrustPolicy | None = None
        claims: Mapping[str, Any] = {}
        try:
            unverified = oidc.peek(token)
            claims = unverified.claims
            policy, ambiguous = await self._addressed_policy(unverified, policy_id)
            if ambiguous:
                raise TokenRejected(Check.AMBIGUOUS)
            if unverified.algorithm not in oidc.ALGORITHMS:
                raise TokenRejected(Check.ALGORITHM, unverified.algorithm[:20])
            key = await self._issuer_keys.key(policy.issuer, unverified.kid)
            if key.algorithm_name != unverified.algorithm:
                raise TokenRejected(Check.ALGORITHM, "it does not match the key's")
            claims = oidc.verify(
                token, key=key, issuer=policy.issuer, audience=policy.audience, now=now
            )
            differing = policy.mismatches(claims)
            if differing:
                raise TokenRejected(Check.CONDITIONS, ", ".join(differing))
            jti = claims.get("jti")
            if not isinstance(jti, str) or not 1 <= len(jti) <= 255:
                raise TokenRejected(Check.MISSING_CLAIM, "jti")
            return await self._mint(policy, claims, jti=jti, client=client, now=now)
        except TokenRejected as exc:
            await self._refused(exc, policy, claims, client, now)
            raise NotAuthenticated from None

    async def _addressed_policy(
        self, unverified: oidc.Unverified, policy_id: int | None
    ) -> tuple[TrustPolicy, bool]:
        """The policy the token is for, and whether that is ambiguous.

        Its issuer's policies that pin a value the token carries (only
        ``policy_id``, when given); of those, the oldest whose audience and
        conditions the token meets, else the oldest (so that a refusal is logged
        where it concerns someone). When policies of several accounts meet them
        and the request names none, it is ambiguous: an account must not receive
        another's CI jobs because it trusted their repository first. Claims are
        not trusted yet: this only chooses."""
        issuer = unverified.issuer
        claims = unverified.claims
        pins = [
            and_(trust_policies.c.pin_claim == claim, trust_policies.c.pin_value == value)
            for claim in PIN_CLAIMS
            if isinstance(value := claims.get(claim), str) and len(value) <= MAX_VALUE
        ]
        if issuer is None or len(issuer) > MAX_URL or not pins:
            raise TokenRejected(Check.NO_POLICY)
        query = (
            select(*_COLUMNS)
            .where(trust_policies.c.issuer == issuer, or_(*pins))
            .order_by(trust_policies.c.id)
            .limit(100)
        )
        if policy_id is not None:
            query = query.where(trust_policies.c.id == policy_id)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        policies = [_policy(row) for row in rows]
        if not policies:
            raise TokenRejected(Check.NO_POLICY)
        met = [p for p in policies if p.accepts_audience(claims) and not p.mismatches(claims)]
        if not met:
            return policies[0], False
        return met[0], len({policy.account_id for policy in met}) > 1

    async def _mint(
        self,
        policy: TrustPolicy,
        claims: Mapping[str, Any],
        *,
        jti: str,
        client: ClientInfo,
        now: datetime,
    ) -> MintedKey:
        raw = keys.generate()
        expires_at = now + timedelta(seconds=policy.ttl_seconds)
        token_expires = datetime.fromtimestamp(float(claims["exp"]), tz=UTC) + oidc.LEEWAY
        subject = str(claims.get("sub") or "")[:255] or None
        job = describe(claims)

        def work(conn: Connection) -> MintedKey:
            if not self._db.lock_account(conn, policy.account_id):
                raise TokenRejected(Check.NO_POLICY, "the account is gone")
            still_there = conn.execute(
                select(trust_policies.c.id).where(trust_policies.c.id == policy.id)
            ).first()
            if still_there is None:
                raise TokenRejected(Check.NO_POLICY, "the policy was deleted")
            # A key never holds more than a current member vouches for: the member
            # who made the policy must still be able to create such a key.
            role = conn.execute(
                select(memberships.c.role).where(
                    memberships.c.id == policy.member_id,
                    memberships.c.account_id == policy.account_id,
                )
            ).scalar()
            needed = (
                Action.CREATE_PURGE_KEY
                if policy.permission is Permission.PURGE
                else (Action.MANAGE_KEYS)
            )
            if role is None or not may(Role(role), needed):
                raise TokenRejected(Check.MEMBER)
            # Remembered until the token expires (plus the leeway): after that the
            # token is refused as expired anyway.
            first_use = conn.execute(
                self._db.insert(oidc_token_uses)
                .values(token_id=token_use_id(policy.issuer, jti), expires_at=token_expires)
                .on_conflict_do_nothing(index_elements=[oidc_token_uses.c.token_id])
                # RETURNING, not rowcount: psycopg reports -1 for this statement.
                .returning(oidc_token_uses.c.token_id)
            ).first()
            if first_use is None:
                raise TokenRejected(Check.REPLAYED)
            key_id = insert_key(
                conn,
                account_id=policy.account_id,
                name=f"CI: {policy.name}"[:100],
                raw=raw,
                settings=KeySettings(
                    expires_at=expires_at,
                    permission=policy.permission,
                    zone_ids=policy.zone_ids,
                ),
                now=now,
                created_by_kind=CreatorKind.OIDC,
                # The policy acts for the member who made it: the key may do no more
                # than that member's current role allows (services/roles.py).
                member_id=policy.member_id,
                trust_policy_id=policy.id,
                created_by_subject=subject,
            )
            prefix = keys.display_prefix(raw)
            audit.record(
                conn,
                account_id=policy.account_id,
                event=audit.Event.OIDC_KEY_MINTED,
                at=now,
                client=client,
                actor_type=audit.Actor.OIDC,
                actor_id=(subject or "")[:64] or None,
                actor_name=f"CI job {subject or '(no subject)'}",
                key_id=key_id,
                key_prefix=prefix,
                detail=f"Trust policy {policy.id} ({policy.name}) minted a {policy.permission} "
                f"key for {policy.ttl_seconds} s: {job}.",
            )
            webhooks.emit(
                conn,
                account_id=policy.account_id,
                event=webhooks.Event.KEY_CREATED,
                data={
                    "id": key_id,
                    "name": f"CI: {policy.name}"[:100],
                    "keyPrefix": prefix,
                    "createdAt": now,
                    "expiresAt": expires_at,
                    "permissions": str(policy.permission),
                    "replaces": None,
                    "actor": f"CI job {subject or '(no subject)'}"[:320],
                },
                now=now,
            )
            return MintedKey(
                raw_key=raw, key_prefix=prefix, expires_at=expires_at, policy_id=policy.id
            )

        return await self._db.write(work)

    async def _refused(
        self,
        exc: TokenRejected,
        policy: TrustPolicy | None,
        claims: Mapping[str, Any],
        client: ClientInfo,
        now: datetime,
    ) -> None:
        """Say which check failed: always in the server log; in the security log
        of the policy's account when the token addressed one (at most once a
        minute per policy and check)."""
        logger.info(
            "OIDC token refused",
            extra={
                "check": exc.check.name,
                "reason": str(exc)[:300],
                "policy_id": policy.id if policy else None,
                "issuer": str(claims.get("iss"))[:200] if claims else None,
                "client": client.address,
            },
        )
        if policy is None:
            return
        moment = time.monotonic()
        last = self._refusals_logged.get((policy.id, exc.check), -REFUSAL_LOG_INTERVAL)
        if moment - last < REFUSAL_LOG_INTERVAL:
            return
        if len(self._refusals_logged) > 10_000:
            self._refusals_logged.clear()
        self._refusals_logged[policy.id, exc.check] = moment
        try:
            await self._db.write(
                audit.record,
                account_id=policy.account_id,
                event=audit.Event.OIDC_TOKEN_REFUSED,
                at=now,
                client=client,
                actor_type=audit.Actor.ANONYMOUS,
                detail=f"A token for trust policy {policy.id} ({policy.name}) was refused: "
                f"{exc}. It claimed {describe(claims)}.",
            )
        except Unavailable:
            logger.warning("OIDC refusal not recorded", extra={"policy_id": policy.id})

    async def clean_up(self) -> None:
        """Forget token uses whose tokens have expired (they are refused anyway)."""
        now = self._clock()
        await self._db.write(
            lambda conn: conn.execute(
                delete(oidc_token_uses).where(oidc_token_uses.c.expires_at < now)
            )
        )
