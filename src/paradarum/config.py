"""Settings, read from ``PARADARUM_*`` environment variables when asked for.

Nothing here runs at import time: callers build a :class:`Settings` (the CLI from
its flags and the environment, tests from keyword arguments) and hand it down.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from paradarum.mail import parse_smtp_url
from paradarum.messages import single_address

SECRET_FILE_NAME = "jwt-secret"
DATABASE_FILE_NAME = "paradarum.db"


class Settings(BaseSettings):
    """Every knob of the service. Environment names are ``PARADARUM_<FIELD>``."""

    # hide_input_in_errors: a refused value is never repeated in the error, since
    # URLs (PARADARUM_SMTP_URL, _DATABASE_URL, _REDIS_URL) carry passwords.
    model_config = SettingsConfigDict(
        env_prefix="PARADARUM_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path("./data")
    database_url: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_lifetime_seconds: int = Field(default=3600, ge=60, le=30 * 24 * 3600)
    # Seals second-factor secrets (TOTP) at rest; by default derived from the JWT
    # secret. Set it apart to be able to change the JWT secret without every
    # person re-enrolling their authenticator app.
    secrets_key: SecretStr | None = None
    signup_enabled: bool = True
    key_limit: int = Field(default=10, ge=1, le=1000)
    # Zones (hostnames) one account may hold, pending ones included.
    zone_limit: int = Field(default=100, ge=1, le=10_000)
    # Where people reach this service (the panel), for links in emails.
    public_url: str = Field(default="http://127.0.0.1:8000", max_length=500)
    # Sign-up sends a link to verify the email address; until it is followed the
    # account cannot create keys or zones. "auto": on when mail is configured.
    email_verification: Literal["auto", "on", "off"] = "auto"

    # Connection pool sizes (both engines; SQLite's writers queue on its file lock).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    # PostgreSQL: longest a statement (or its wait for a row lock) may run; 0 = no limit.
    db_statement_timeout: float = Field(default=15.0, ge=0)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=100)

    # Argon2id hashes allowed at once per process (each takes ~19 MiB; never more
    # than the cores the process may run on), and how many more may wait for one;
    # beyond that a sign-in is refused at once (503).
    password_hash_concurrency: int = Field(default=4, ge=1, le=64)
    password_hash_queue: int = Field(default=32, ge=0, le=10_000)

    # Abuse limits: N events per window (seconds). Sign-in failures count per email
    # and address (with backoff: twice as many per 4 windows, four times as many
    # per 96), per address, and per email from anywhere, which only slows
    # addresses that never signed in to the account (one try per throttle seconds).
    login_failures_per_email_and_address: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=50, ge=1)
    login_failures_per_email: int = Field(default=10, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    login_throttle_seconds: int = Field(default=10, ge=1, le=3600)
    signups_per_address: int = Field(default=10, ge=1)
    signup_window_seconds: int = Field(default=3600, ge=1)
    # Password reset links asked for (POST /api/auth/password/forgot) per address and
    # per email, in one window; a sign-up that meets a squatted address counts too.
    password_resets_per_address: int = Field(default=10, ge=1)
    password_resets_per_email: int = Field(default=3, ge=1)
    password_reset_window_seconds: int = Field(default=3600, ge=1)
    auth_failures_per_address: int = Field(default=100, ge=1)
    auth_failure_window_seconds: int = Field(default=60, ge=1)
    key_creations_per_account: int = Field(default=50, ge=1)
    key_creation_window_seconds: int = Field(default=3600, ge=1)
    # Zone additions: each answers whether a hostname is active elsewhere (409), so
    # they are limited per account and per address against enumerating hostnames.
    zone_additions_per_account: int = Field(default=20, ge=1)
    zone_additions_per_address: int = Field(default=60, ge=1)
    zone_addition_window_seconds: int = Field(default=600, ge=1)
    purges_per_account: int = Field(default=60, ge=1)
    purge_window_seconds: int = Field(default=60, ge=1)
    public_revocations_per_address: int = Field(default=10, ge=1)
    public_revocation_window_seconds: int = Field(default=60, ge=1)
    # Where the counts live: "auto" is Redis when redis_url is set, else the
    # database on PostgreSQL (shared by every instance), else process memory.
    rate_limit_backend: Literal["auto", "memory", "database", "redis"] = "auto"
    redis_url: SecretStr | None = None
    # Prefix of every Redis key, so that several deployments can share one Redis.
    redis_key_prefix: str = Field(default="paradarum:rl:", min_length=1, max_length=100)
    # Proxies whose X-Forwarded-For is believed (addresses or CIDR networks);
    # comma-separated in the environment (a JSON list works too).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Cache nodes that receive purges (base URLs such as http://127.0.0.1:6081).
    cache_nodes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    purge_delivery_enabled: bool = True
    # The loop that sends (or records) notifications; off, they wait in the outbox.
    notifications_enabled: bool = True
    # Per node and purge: tries before "failed", first retry delay (doubling), timeout.
    purge_max_attempts: int = Field(default=5, ge=1, le=100)
    purge_retry_seconds: float = Field(default=2.0, gt=0, le=3600)
    purge_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    access_log: bool = True

    # The embedded server (paradarum serve; see paradarum/server.py).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # From accepting a connection (or the end of the last answer on it) to the end of
    # the next request's headers, however slowly they arrive; also the idle keep-alive.
    header_timeout_seconds: float = Field(default=15.0, ge=1, le=60)
    max_connections: int = Field(default=1024, ge=1, le=100_000)
    max_requests_in_flight: int = Field(default=512, ge=1, le=100_000)
    # Each client address's share of them (the client as the trusted-proxy rules see
    # it), so that one client cannot take every slot.
    max_requests_per_client: int = Field(default=64, ge=1, le=100_000)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: give a directory for the SQLite data, such as ./data")
        return value

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url_shape(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None  # empty: the SQLite file, as when unset
            if not value.startswith(
                ("postgresql://", "postgres://", "postgresql+psycopg://", "sqlite:///")
            ):
                raise ValueError(
                    "must be a PostgreSQL URL, postgresql://user:password@host:5432/database "
                    "(or leave it unset for the SQLite file in the data directory)"
                )
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url_shape(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            if not value.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(
                    "must be a Redis URL, redis://host:6379/0 (rediss:// for TLS, unix:// for "
                    "a socket), or unset to count limits in the database or in memory"
                )
        return value

    @field_validator("trusted_proxies", "cache_nodes", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # NoDecode: the environment's text arrives here as it is (pydantic-settings
        # would otherwise insist on JSON), as a JSON list or comma-separated.
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                return json.loads(stripped)
            return [part.strip() for part in stripped.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _redis_needs_a_url(self) -> Settings:
        if self.rate_limit_backend == "redis" and self.redis_url is None:
            raise ValueError("PARADARUM_RATE_LIMIT_BACKEND=redis needs PARADARUM_REDIS_URL")
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the http:// or https:// address people open the panel at")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _verification_needs_mail(self) -> Settings:
        if self.email_verification == "on" and self.smtp_url is None:
            raise ValueError(
                "PARADARUM_EMAIL_VERIFICATION=on needs PARADARUM_SMTP_URL (the links go by email)"
            )
        return self

    @property
    def verifies_email(self) -> bool:
        if self.email_verification == "auto":
            return self.smtp_url is not None
        return self.email_verification == "on"

    @property
    def resolved_rate_limit_backend(self) -> str:
        if self.rate_limit_backend != "auto":
            return self.rate_limit_backend
        if self.redis_url is not None:
            return "redis"
        return "memory" if self.is_sqlite else "database"

    @field_validator("cache_nodes")
    @classmethod
    def _check_cache_nodes(cls, value: list[str]) -> list[str]:
        for node in value:
            if not node.startswith(("http://", "https://")) or len(node) > 255:
                raise ValueError(f"cache node {node!r} is not an http(s) base URL")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / DATABASE_FILE_NAME).resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    # --- Secret scanning (POST /api/secret-scanning/github) -------------------------
    # Where GitHub publishes the public keys that sign its leak reports. A test or a
    # private GitHub-compatible scanner can point it elsewhere.
    secret_scanning_keys_url: str = Field(
        default="https://api.github.com/meta/public_keys/secret_scanning", max_length=2048
    )
    # The whole fetch of those keys, in seconds. A report whose key we must fetch
    # waits this long at most, and GitHub waits for our answer only so long
    # (30 s for partners that answer with feedback).
    secret_scanning_keys_timeout_seconds: float = Field(default=5.0, gt=0, le=20)

    @field_validator("secret_scanning_keys_url")
    @classmethod
    def _keys_url_is_http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("PARADARUM_SECRET_SCANNING_KEYS_URL must be an http(s) URL")
        return value

    # --- Mail: notices to account owners (docs/mail.md) ---------------------------
    # Unset: no mail is sent. smtp://[user:password@]host:port, smtps:// for TLS from
    # the first byte, ?starttls=true to upgrade; user and password percent-encoded.
    smtp_url: SecretStr | None = None
    mail_from: str = "Paradarum <no-reply@localhost>"
    # The longest one message may take, from connecting to the relay's last answer.
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # PEM certificates trusted for the relay instead of the system's (a private CA).
    smtp_ca_file: FilePath | None = None
    # The name this host gives in EHLO; unset: its fully qualified domain name.
    smtp_helo_name: str | None = Field(default=None, min_length=1, max_length=253)

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _empty_smtp_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("smtp_url")
    @classmethod
    def _valid_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_smtp_url(value.get_secret_value())  # a one-line ValueError
        return value

    @field_validator("mail_from")
    @classmethod
    def _valid_mail_from(cls, value: str) -> str:
        try:
            single_address(value)
        except ValueError as exc:
            raise ValueError(
                f"PARADARUM_MAIL_FROM must be one address, such as "
                f"'Paradarum <no-reply@example.com>': {exc}"
            ) from None
        return value

    @field_validator("smtp_ca_file")
    @classmethod
    def _usable_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                ssl.create_default_context(cafile=str(value))
            except (ssl.SSLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc.strerror or exc
                raise ValueError(
                    f"PARADARUM_SMTP_CA_FILE must be a PEM file of CA certificates: {reason}"
                ) from None
        return value

    @field_validator("smtp_helo_name")
    @classmethod
    def _valid_helo_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", value):
            raise ValueError("PARADARUM_SMTP_HELO_NAME must be a host name or [address literal]")
        return value

    # -- zones: DNS verification ---------------------------------------------------
    # The resolver that zone verification asks for TXT records: an IP address with an
    # optional port (10.0.0.53, 10.0.0.53:5353, [2001:db8::53]:53). Unset: the system's.
    # A setting so that tests and private deployments can use a DNS server of their own.
    dns_resolver: str | None = None
    # How long one verification may wait for DNS before saying it did not answer.
    dns_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("dns_resolver")
    @classmethod
    def _check_dns_resolver(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_nameserver(value)  # ValueError says what is wrong
        return value.strip()

    @property
    def dns_nameserver(self) -> tuple[str, int] | None:
        """``(address, port)`` of the configured resolver; None for the system's."""
        return parse_nameserver(self.dns_resolver) if self.dns_resolver else None

    # -- CI without stored keys: trust policies (OpenID Connect) --------------------
    # Issuers are https:// only; these exact issuer URLs may be http:// as well (tests,
    # an issuer on a private network). Comma-separated in the environment.
    oidc_insecure_issuers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The whole fetch of an issuer's discovery document and keys (JWKS), in seconds.
    # A token exchange that needs a fetch waits this long at most, then fails closed.
    oidc_fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # POST /api/oidc/token per client address and window.
    oidc_exchanges_per_address: int = Field(default=30, ge=1)
    oidc_exchange_window_seconds: int = Field(default=60, ge=1)

    @field_validator("oidc_insecure_issuers", mode="before")
    @classmethod
    def _split_issuers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("oidc_insecure_issuers")
    @classmethod
    def _issuers_are_http(cls, value: list[str]) -> list[str]:
        for issuer in value:
            if not issuer.startswith(("http://", "https://")):
                raise ValueError(f"issuer {issuer[:100]!r} is not an http(s) URL")
        return value

    # -- webhooks (docs/webhooks.md) --------------------------------------------------
    # Networks webhooks may be sent to although they are not public (loopback, private,
    # link-local...), comma-separated CIDRs: for private deployments and tests. Every
    # other non-public address is refused, when a URL is saved and at every send. OIDC
    # issuers' documents are fetched under the same rule (oidc.py).
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The whole of one delivery attempt: connecting, sending, the receiver's answer.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # The loop that sends webhook deliveries, in this process; off, they wait queued.
    webhooks_enabled: bool = True

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_webhook_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"PARADARUM_WEBHOOK_ALLOWED_NETWORKS: {entry[:60]!r} is not a network "
                    "such as 10.0.0.0/8 or 127.0.0.1/32"
                ) from None
        return value


def parse_nameserver(value: str) -> tuple[str, int]:
    """``(address, port)`` from ``host``, ``host:port`` or ``[v6]:port`` (port 53 by default).

    Only IP addresses: finding the resolver by name would need a resolver first.
    """
    text = value.strip()
    example = "such as 10.0.0.53, 10.0.0.53:5353, 2001:db8::53 or [2001:db8::53]:5353"
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"PARADARUM_DNS_RESOLVER {value!r} is not an address, {example}")
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            raise ValueError(f"PARADARUM_DNS_RESOLVER {value!r} has an empty port, {example}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"PARADARUM_DNS_RESOLVER must be an IP address with an optional port, {example}; "
            f"got {value!r}"
        ) from None
    if text.startswith("[") and address.version != 6:
        raise ValueError(f"PARADARUM_DNS_RESOLVER {value!r}: brackets are for IPv6, {example}")
    port = 53
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(
                f"PARADARUM_DNS_RESOLVER {value!r} has an invalid port: use 1 to 65535, {example}"
            )
        port = int(port_text)
    return str(address), port


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators type (``postgresql://``) and pick our driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_or_create_secret(settings: Settings) -> str:
    """Return the JWT signing secret.

    ``PARADARUM_JWT_SECRET`` wins. Otherwise the secret lives in the data directory
    (mode 0600). It is written whole to a temporary file, synced, then hard-linked
    into place: the link either appears with the complete secret or fails because
    another process got there first, so processes starting together always agree
    on one secret and nobody ever reads a half-written (or empty) one.
    """
    if settings.jwt_secret is None and not settings.is_sqlite:
        # A per-host secret file would make every other instance refuse its sessions.
        raise ValueError(
            "PostgreSQL mode needs the JWT signing secret that every instance shares: "
            "set PARADARUM_JWT_SECRET (at least 32 characters) on each instance"
        )
    if settings.jwt_secret is not None:
        value = settings.jwt_secret.get_secret_value()
        if len(value) < 32:
            raise ValueError("PARADARUM_JWT_SECRET must be at least 32 characters long")
        return value
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = settings.data_dir / SECRET_FILE_NAME
    if not path.exists():
        candidate = secrets.token_urlsafe(48)
        temporary = path.with_name(f".{SECRET_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(candidate)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    value = path.read_text().strip()
    if len(value) < 32:
        raise ValueError(f"{path} holds no usable secret: remove the file to have a new one made")
    return value
