"""Leaked keys stop working by themselves.

A key reported as found in public — by GitHub's secret scanning (the partner
protocol, ``secret_scanning.py``) or by anyone through the public revocation
endpoint — is revoked at once as ``leaked``, with where it was found. Keys that the
leaked key had created are revoked with it (transitively): whoever found the key
may have made them, as a foothold that would survive the revocation. The owner is
told by email (the notification outbox) which key, where, what went with it and
what to do, and the security log has every step.

Only the SHA-256 of each reported string is looked up (the same index as
authentication), and only strings that are well-formed Paradarum keys: random text
costs nothing and matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from paradarum import keys
from paradarum.clock import Clock
from paradarum.db.engine import Database
from paradarum.db.tables import api_keys
from paradarum.errors import RateLimited
from paradarum.ratelimit import Limit, RateLimiter, address_bucket
from paradarum.services import audit, webhooks
from paradarum.services.apikeys import RevokeReason, revoke_keys, revoke_one
from paradarum.services.context import ClientInfo
from paradarum.services.emails import Kind, enqueue, key_ref

# How deep the "created by" chain is followed: far beyond any real chain.
MAX_CASCADE_DEPTH = 50
PUBLIC_FOUND_AT = "reported through Paradarum's public revocation endpoint"


@dataclass(frozen=True, slots=True)
class Leak:
    """A reported string and where it was found (a URL, or a short description)."""

    token: str
    found_at: str


@dataclass(frozen=True, slots=True)
class LeakReport:
    # SHA-256 of every reported string that is or was one of our keys.
    known_hashes: set[str]
    # Keys revoked by this report (leaked ones and their cascade).
    revoked: int


class LeakService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        limiter: RateLimiter,
        public_per_address: int,
        public_window_seconds: int,
        on_notify: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._public_per_address = public_per_address
        self._public_window = public_window_seconds
        self._on_notify = on_notify

    async def report_found(self, tokens: Sequence[str], *, client: ClientInfo) -> None:
        """Strings anyone found in public (no credential needed): every active key
        among them is revoked. Limited per client address, so that the endpoint
        cannot be used to hammer the database; nothing says what matched."""
        retry = await self._limiter.consume(
            Limit(
                f"public-revoke:{address_bucket(client.address)}",
                self._public_per_address,
                self._public_window,
            )
        )
        if retry:
            raise RateLimited(
                retry, "Too many revocation requests from your address. Try again later."
            )
        await self.report([Leak(token.strip(), PUBLIC_FOUND_AT) for token in tokens], client=client)

    async def report(
        self, leaks: Sequence[Leak], *, client: ClientInfo, reporter: str = "system"
    ) -> LeakReport:
        """Revoke every active key among ``leaks`` (and what each created).
        ``reporter`` is who the security log names (``github``, or ``system``)."""
        by_hash: dict[str, Leak] = {}
        for leak in leaks:
            if keys.is_well_formed(leak.token):
                by_hash.setdefault(keys.hash_key(leak.token), leak)
        if not by_hash:
            return LeakReport(known_hashes=set(), revoked=0)
        now = self._clock()
        report = await self._db.write(self._revoke, by_hash, now, client, reporter)
        if report.revoked and self._on_notify is not None:
            self._on_notify()
        return report

    def _revoke(
        self,
        conn: Connection,
        by_hash: dict[str, Leak],
        now: datetime,
        client: ClientInfo,
        reporter: str,
    ) -> LeakReport:
        rows = conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.account_id,
                api_keys.c.name,
                api_keys.c.key_prefix,
                api_keys.c.key_hash,
                api_keys.c.revoked_at,
            ).where(api_keys.c.key_hash.in_(list(by_hash)))
        ).all()
        revoked = 0
        for row in rows:
            if row.revoked_at is not None:
                continue  # known (a true positive), already harmless
            leak = by_hash[row.key_hash]
            # revokedDetail is where the key was found (a URL when there is one).
            if not revoke_one(
                conn, row.id, now=now, reason=RevokeReason.LEAKED, detail=leak.found_at
            ):
                continue  # revoked by someone else meanwhile
            cascade = self._cascade(conn, row, now)
            revoked += 1 + len(cascade)
            with_it = ", ".join(other.key_prefix for other in cascade)
            audit.record(
                conn,
                account_id=row.account_id,
                event=audit.Event.KEY_LEAKED,
                at=now,
                client=client,
                actor_type=audit.Actor.SYSTEM,
                actor_name=reporter,
                key_id=row.id,
                key_prefix=row.key_prefix,
                detail=f"Found in public at {leak.found_at}; revoked automatically"
                + (f", with the keys it had created: {with_it}." if cascade else "."),
            )
            webhooks.emit(
                conn,
                account_id=row.account_id,
                event=webhooks.Event.KEY_LEAKED,
                data={
                    **webhooks.key_data(row),
                    "foundAt": leak.found_at,
                    "revokedAt": now,
                    "alsoRevoked": [webhooks.key_data(other) for other in cascade],
                },
                now=now,
            )
            enqueue(
                conn,
                self._db,
                account_id=row.account_id,
                kind=Kind.KEY_LEAKED,
                dedupe_key=f"key_leaked:{row.id}",
                payload={
                    "key": key_ref(row),
                    "found_at": leak.found_at,
                    "revoked_at": now.isoformat(),
                    "also_revoked": [key_ref(other) for other in cascade],
                },
                now=now,
            )
        return LeakReport(known_hashes={row.key_hash for row in rows}, revoked=revoked)

    def _cascade(self, conn: Connection, leaked: Any, now: datetime) -> list[Any]:
        """Revoke, transitively, the active keys created by ``leaked``. A key revoked
        before is passed through, not stopped at: what it created was made, in the
        end, with the leaked key."""
        revoked: list[Any] = []
        parents = [leaked]
        for _ in range(MAX_CASCADE_DEPTH):
            if not parents:
                break
            children = conn.execute(
                select(
                    api_keys.c.id,
                    api_keys.c.account_id,
                    api_keys.c.name,
                    api_keys.c.key_prefix,
                    api_keys.c.created_by_key_prefix,
                    api_keys.c.revoked_at,
                ).where(api_keys.c.created_by_key_id.in_([p.id for p in parents]))
            ).all()
            for child in children:
                if child.revoked_at is not None:
                    continue
                detail = (
                    f"Created by the leaked key {child.created_by_key_prefix}; revoked with it."
                )
                if revoke_keys(
                    conn,
                    api_keys.c.id == child.id,
                    account_id=child.account_id,
                    now=now,
                    reason=RevokeReason.LEAKED,
                    client=ClientInfo(),
                    detail=detail,
                    logged=audit.Event.KEY_LEAKED,
                    log_detail=detail,
                ):
                    revoked.append(child)
            parents = list(children)
        return revoked
