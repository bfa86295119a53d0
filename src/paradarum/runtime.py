"""Everything one running service needs, built from :class:`Settings` on demand.

The web app factory and the CLI both build a :class:`Runtime`; nothing is created
at import time, and each test builds its own. Its life has three steps:

* :func:`build_runtime` — objects only, no I/O besides opening the database lazily;
* :meth:`Runtime.start` / :meth:`Runtime.stop` — on the event loop that serves
  (the app's lifespan): the PostgreSQL hot-read pool and the background jobs;
* :meth:`Runtime.close` — threads and connections, after the loop is done.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from paradarum import egress
from paradarum.background import Background
from paradarum.clock import Clock, utcnow
from paradarum.config import Settings, load_or_create_secret
from paradarum.db.engine import Database
from paradarum.mail import Mailer, parse_smtp_url
from paradarum.oidc import IssuerKeys
from paradarum.passwords import Passwords
from paradarum.ratelimit import (
    DatabaseRateLimiter,
    FailureMirror,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from paradarum.secret_scanning import SigningKeys
from paradarum.secretbox import SecretBox
from paradarum.services.accounts import AccountService
from paradarum.services.apikeys import ApiKeyService
from paradarum.services.audit import AuditLog
from paradarum.services.auth import Authenticator
from paradarum.services.emails import EmailJob, Emails
from paradarum.services.jobs import Chance, JobQueue, Worker
from paradarum.services.leaks import LeakService
from paradarum.services.members import MemberService
from paradarum.services.purge_jobs import PurgeJob, purge_kind
from paradarum.services.purges import PurgeService
from paradarum.services.trust import TrustPolicyService
from paradarum.services.twofactor import TwoFactorService
from paradarum.services.usage import FLUSH_SECONDS, KeyUsage
from paradarum.services.webhook_jobs import WebhookJob, WebhookSender
from paradarum.services.webhooks import Egress, WebhookService
from paradarum.services.zones import AdditionLimits, ZoneService
from paradarum.tokens import TokenCodec

SESSION_CLEANUP_SECONDS = 600.0
EXPIRY_REMINDER_SECONDS = 600.0
KEY_ANNOUNCEMENT_SECONDS = 600.0


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    background: Background
    passwords: Passwords
    tokens: TokenCodec
    # Authoritative counts (sign-in, key creation, purges): shared across
    # instances when the backend is.
    limiter: RateLimiter
    # The hot path's view of failed authentications: never a round trip on success.
    auth_failures: FailureMirror
    usage: KeyUsage
    accounts: AccountService
    members: MemberService
    apikeys: ApiKeyService
    audit: AuditLog
    authenticator: Authenticator
    zones: ZoneService
    purges: PurgeService
    # The job queue (counts by kind and state) and its kinds' workers.
    jobs: JobQueue
    purge_delivery: Worker[PurgeJob]
    # What emails say and when reminders are due; their worker sends them.
    emails: Emails
    email_delivery: Worker[EmailJob]
    leaks: LeakService
    signing_keys: SigningKeys
    trust: TrustPolicyService
    two_factor: TwoFactorService
    webhooks: WebhookService
    webhook_delivery: Worker[WebhookJob]

    async def start(self) -> None:
        await self.db.start()
        await self.background.start()

    async def stop(self) -> None:
        """Finish background work (what requests promised, the last usage flush),
        then close what lives on the loop."""
        await self.background.stop()
        await self.limiter.close()
        await self.db.stop()

    def close(self) -> None:
        self.passwords.close()
        self.emails.close()
        self.db.close()


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


def build_mailer(settings: Settings) -> Mailer | None:
    """The mailer the settings describe, or ``None`` when mail is not configured.
    (Here rather than in ``mail.py``: the settings use the mail module to check the
    SMTP URL, so the mail module does not know the settings.)"""
    if settings.smtp_url is None:
        return None
    return Mailer(
        parse_smtp_url(settings.smtp_url.get_secret_value()),
        timeout=settings.smtp_timeout_seconds,
        ca_file=settings.smtp_ca_file,
        helo_name=settings.smtp_helo_name,
    )


def build_runtime(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    passwords: Passwords | None = None,
    limiter: RateLimiter | None = None,
    chance: Chance = random.random,
) -> Runtime:
    db = open_database(settings)
    background = Background()
    passwords = passwords or Passwords(
        concurrency=settings.password_hash_concurrency, queue=settings.password_hash_queue
    )
    server_secret = load_or_create_secret(settings)
    tokens = TokenCodec(secret=server_secret, lifetime_seconds=settings.jwt_lifetime_seconds)
    box_key = settings.secrets_key.get_secret_value() if settings.secrets_key else server_secret
    box = SecretBox(box_key)
    # Webhook signing secrets under a key of their own (the same server secret, another
    # derivation): a sealed TOTP secret never opens as a webhook secret, nor back.
    webhook_box = SecretBox(box_key, purpose="webhook")
    webhook_egress = Egress(
        policy=egress.AddressPolicy(settings.webhook_allowed_networks),
        nameserver=settings.dns_nameserver,
        dns_timeout=settings.dns_timeout_seconds,
    )
    limiter = limiter or build_limiter(settings, db, clock)
    auth_failures = FailureMirror(
        limiter, clock, spawn=lambda work: background.spawn(work, name="failure-count")
    )
    usage = KeyUsage(db=db, clock=clock)
    jobs = JobQueue(db=db, clock=clock, chance=chance)
    emails = Emails(
        db=db,
        clock=clock,
        tokens=tokens,
        mailer=build_mailer(settings),
        mail_from=settings.mail_from,
        panel_url=settings.public_url,
    )
    email_delivery = jobs.add(
        # Longer than one send can take (connect, TLS, login, data: each up to the
        # timeout): only a process that died mid-send lets its lease run out.
        emails.kind(lease_seconds=max(120.0, 6 * settings.smtp_timeout_seconds))
    )
    purge_delivery = jobs.add(
        purge_kind(
            db=db,
            max_attempts=settings.purge_max_attempts,
            retry_seconds=settings.purge_retry_seconds,
            timeout_seconds=settings.purge_timeout_seconds,
        )
    )
    accounts = AccountService(
        db=db,
        passwords=passwords,
        tokens=tokens,
        limiter=limiter,
        clock=clock,
        settings=settings,
        background=background,
        on_notify=email_delivery.wake,
    )
    runtime = Runtime(
        settings=settings,
        clock=clock,
        db=db,
        background=background,
        passwords=passwords,
        tokens=tokens,
        limiter=limiter,
        auth_failures=auth_failures,
        usage=usage,
        accounts=accounts,
        members=MemberService(
            db=db,
            clock=clock,
            tokens=tokens,
            limiter=limiter,
            accounts=accounts,
            on_notify=email_delivery.wake,
        ),
        apikeys=ApiKeyService(
            db=db,
            clock=clock,
            limiter=limiter,
            key_limit=settings.key_limit,
            creations_per_window=settings.key_creations_per_account,
            creation_window_seconds=settings.key_creation_window_seconds,
            verifies_email=settings.verifies_email,
            on_notify=email_delivery.wake,
        ),
        audit=AuditLog(db=db),
        authenticator=Authenticator(
            db=db,
            tokens=tokens,
            clock=clock,
            settings=settings,
            failures=auth_failures,
            usage=usage,
            background=background,
        ),
        zones=ZoneService(
            db=db,
            clock=clock,
            zone_limit=settings.zone_limit,
            nameserver=settings.dns_nameserver,
            dns_timeout=settings.dns_timeout_seconds,
            limiter=limiter,
            additions=AdditionLimits(
                per_account=settings.zone_additions_per_account,
                per_address=settings.zone_additions_per_address,
                window_seconds=settings.zone_addition_window_seconds,
            ),
            verifies_email=settings.verifies_email,
        ),
        purges=PurgeService(
            db=db,
            clock=clock,
            limiter=limiter,
            nodes=settings.cache_nodes,
            purges_per_window=settings.purges_per_account,
            window_seconds=settings.purge_window_seconds,
            on_queued=purge_delivery.wake,
        ),
        jobs=jobs,
        purge_delivery=purge_delivery,
        emails=emails,
        email_delivery=email_delivery,
        leaks=LeakService(
            db=db,
            clock=clock,
            limiter=limiter,
            public_per_address=settings.public_revocations_per_address,
            public_window_seconds=settings.public_revocation_window_seconds,
            on_notify=email_delivery.wake,
        ),
        signing_keys=SigningKeys.from_settings(settings, clock=clock),
        trust=TrustPolicyService(
            db=db,
            clock=clock,
            limiter=limiter,
            issuer_keys=IssuerKeys(
                timeout=settings.oidc_fetch_timeout_seconds,
                insecure_issuers=frozenset(settings.oidc_insecure_issuers),
                clock=clock,
                rules=webhook_egress,
            ),
            default_audience=settings.public_url,
            insecure_issuers=frozenset(settings.oidc_insecure_issuers),
            exchanges_per_address=settings.oidc_exchanges_per_address,
            exchange_window_seconds=settings.oidc_exchange_window_seconds,
            verifies_email=settings.verifies_email,
        ),
        two_factor=TwoFactorService(
            db=db,
            clock=clock,
            box=box,
            passwords=passwords,
            accounts=accounts,
            public_url=settings.public_url,
            on_notify=email_delivery.wake,
        ),
        webhooks=WebhookService(db=db, clock=clock, box=webhook_box, egress=webhook_egress),
        webhook_delivery=jobs.add(
            WebhookSender(
                db=db,
                clock=clock,
                box=webhook_box,
                egress=webhook_egress,
                timeout=settings.webhook_timeout_seconds,
                on_disabled=email_delivery.wake,
            ).kind()
        ),
    )
    if settings.purge_delivery_enabled:
        background.add_loop("purge-delivery", purge_delivery.run)
    if settings.notifications_enabled:
        background.add_loop("notifications", email_delivery.run)

        async def remind_expiring() -> None:
            if await emails.remind_expiring():
                email_delivery.wake()

        background.every("expiry-reminders", EXPIRY_REMINDER_SECONDS, remind_expiring)
    if settings.webhooks_enabled:
        background.add_loop("webhooks", runtime.webhook_delivery.run)
    # Zones follow their domain: held zones are looked for in DNS again every day.
    background.add_loop("zone-recheck", runtime.zones.run_rechecks)
    background.every(
        "key-announcements", KEY_ANNOUNCEMENT_SECONDS, runtime.webhooks.announce_key_times
    )
    background.every("usage-flush", FLUSH_SECONDS, usage.flush)
    background.every("session-cleanup", SESSION_CLEANUP_SECONDS, accounts.clean_up_sessions)
    background.every("oidc-token-cleanup", SESSION_CLEANUP_SECONDS, runtime.trust.clean_up)
    return runtime
