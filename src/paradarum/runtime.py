"""Everything one running service needs, built from :class:`Settings` on demand.

The web app factory and the CLI both build a :class:`Runtime`; nothing is created
at import time, and each test builds its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from paradarum.clock import Clock, utcnow
from paradarum.config import Settings, load_or_create_secret
from paradarum.db.engine import Database
from paradarum.passwords import Passwords
from paradarum.ratelimit import (
    DatabaseRateLimiter,
    FailureMirror,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SharedRateLimiter,
)
from paradarum.services.accounts import AccountService
from paradarum.services.apikeys import ApiKeyService
from paradarum.services.audit import AuditLog
from paradarum.services.auth import Authenticator, UsageRecorder
from paradarum.services.delivery import PurgeDelivery
from paradarum.services.purges import PurgeService
from paradarum.tokens import TokenCodec


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    passwords: Passwords
    tokens: TokenCodec
    # Authoritative counts (sign-in, key creation, purges): shared across
    # instances when the backend is.
    limiter: RateLimiter
    # The hot path's view for failed authentications: never a round trip on
    # success (see ratelimit.FailureMirror). The same object as ``limiter`` when
    # that is per-process memory.
    auth_failures: RateLimiter
    accounts: AccountService
    apikeys: ApiKeyService
    audit: AuditLog
    authenticator: Authenticator
    usage: UsageRecorder
    purges: PurgeService
    purge_delivery: PurgeDelivery
    # Work done after a request is answered (e.g. recording a failed sign-in).
    deferred: ThreadPoolExecutor

    def close(self) -> None:
        self.purge_delivery.stop()
        self.deferred.shutdown(wait=True)  # finish what was promised before closing the pool
        for limiter in (self.auth_failures, self.limiter):
            close = getattr(limiter, "close", None)
            if close is not None:
                close()
        self.db.dispose()


def open_database(settings: Settings) -> Database:
    return Database(
        settings.resolved_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        statement_timeout=settings.db_statement_timeout,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def build_limiter(settings: Settings, db: Database, clock: Clock) -> RateLimiter:
    backend = settings.resolved_rate_limit_backend
    if backend == "redis":
        assert settings.redis_url is not None
        return RedisRateLimiter.from_url(
            settings.redis_url.get_secret_value(), clock, namespace=settings.redis_key_prefix
        )
    if backend == "database":
        return DatabaseRateLimiter(db, clock)
    return MemoryRateLimiter(clock)


def build_runtime(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    passwords: Passwords | None = None,
    limiter: RateLimiter | None = None,
) -> Runtime:
    db = open_database(settings)
    deferred = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paradarum-deferred")
    passwords = passwords or Passwords(concurrency=settings.password_hash_concurrency)
    tokens = TokenCodec(
        secret=load_or_create_secret(settings), lifetime_seconds=settings.jwt_lifetime_seconds
    )
    limiter = limiter or build_limiter(settings, db, clock)
    auth_failures: RateLimiter = (
        FailureMirror(limiter, clock) if isinstance(limiter, SharedRateLimiter) else limiter
    )
    purge_delivery = PurgeDelivery(
        db=db,
        clock=clock,
        max_attempts=settings.purge_max_attempts,
        retry_seconds=settings.purge_retry_seconds,
        timeout_seconds=settings.purge_timeout_seconds,
    )
    return Runtime(
        deferred=deferred,
        settings=settings,
        clock=clock,
        db=db,
        passwords=passwords,
        tokens=tokens,
        limiter=limiter,
        auth_failures=auth_failures,
        accounts=AccountService(
            db=db,
            passwords=passwords,
            tokens=tokens,
            limiter=limiter,
            clock=clock,
            settings=settings,
            deferred=deferred,
        ),
        apikeys=ApiKeyService(
            db=db,
            clock=clock,
            limiter=limiter,
            key_limit=settings.key_limit,
            creations_per_window=settings.key_creations_per_account,
            creation_window_seconds=settings.key_creation_window_seconds,
        ),
        audit=AuditLog(db=db),
        authenticator=Authenticator(db=db, tokens=tokens, clock=clock),
        usage=UsageRecorder(db=db, clock=clock),
        purges=PurgeService(
            db=db,
            clock=clock,
            limiter=limiter,
            nodes=settings.cache_nodes,
            purges_per_window=settings.purges_per_account,
            window_seconds=settings.purge_window_seconds,
            on_queued=purge_delivery.wake,
        ),
        purge_delivery=purge_delivery,
    )
