"""Data for a run, made the way the service makes it: a runtime on the bench's own
data directory or database (``build_runtime``), and its services (sign-up, sign-in,
key creation, zones). One helper adds the scale case's million keys in bulk,
through SQLAlchemy Core on the tables, the same code for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update

from paradarum.config import Settings
from paradarum.db.engine import Database
from paradarum.db.migrate import upgrade
from paradarum.db.tables import accounts, api_keys, audit_events
from paradarum.runtime import Runtime, build_runtime, open_database
from paradarum.services.apikeys import key_settings
from paradarum.services.audit import Event
from paradarum.services.context import ClientInfo, Principal

PASSWORD = "bench " + secrets.token_hex(12)
CLIENT = ClientInfo(address="127.0.0.1", user_agent="paradarum-bench")


@dataclass(frozen=True)
class Target:
    """One Paradarum data set a server is started on."""

    data_dir: Path
    database_url: str | None
    jwt_secret: str

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": self.data_dir, "jwt_secret": self.jwt_secret}
        if self.database_url:
            values["database_url"] = self.database_url
        return Settings(**{**values, **overrides})

    def env(self) -> dict[str, str]:
        """The server's environment (access log on: the default)."""
        env = {
            "PARADARUM_DATA_DIR": str(self.data_dir),
            "PARADARUM_JWT_SECRET": self.jwt_secret,
            "PARADARUM_LOG_LEVEL": "INFO",
        }
        if self.database_url:
            env["PARADARUM_DATABASE_URL"] = self.database_url
        return env


@contextlib.contextmanager
def opened(target: Target) -> Iterator[Runtime]:
    """A migrated runtime on ``target`` (closed afterwards)."""
    target.data_dir.mkdir(parents=True, exist_ok=True)
    runtime = build_runtime(target.settings())
    try:
        upgrade(runtime.db)
        yield runtime
    finally:
        runtime.close()


@contextlib.asynccontextmanager
async def started(runtime: Runtime) -> AsyncIterator[Runtime]:
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@dataclass
class Account:
    email: str
    token: str
    principal: Principal


async def new_account(runtime: Runtime, label: str) -> Account:
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    await runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT, force=True)
    session = await runtime.accounts.login(email=email, password=PASSWORD, client=CLIENT)
    principal = await runtime.authenticator.authenticate(session.token, CLIENT)
    return Account(email, session.token, principal)


async def new_key(
    runtime: Runtime, account: Account, name: str, *, use: bool = True, **options: Any
) -> tuple[str, int]:
    """A key (raw, id). ``use``: its first use (and first ``lastUsedAt`` write)
    happens now, not under load."""
    created = await runtime.apikeys.create(
        principal=account.principal,
        name=name,
        client=CLIENT,
        settings=key_settings(now=runtime.clock(), **options),
    )
    if use:
        await runtime.authenticator.authenticate(created.raw_key, CLIENT)
    return created.raw_key, created.info.id


@dataclass
class MainData:
    email: str
    token: str
    key: str
    restricted_key: str
    hot_key: str
    hot_key_id: int


async def _main_data(runtime: Runtime) -> MainData:
    owner = await new_account(runtime, "bench")
    await runtime.zones.add_for(email=owner.email, hostname="bench.example.com", verified=True)
    key, _ = await new_key(runtime, owner, "plain")
    restricted, _ = await new_key(runtime, owner, "restricted", allowed_cidrs=["127.0.0.0/8"])
    hot, hot_id = await new_key(runtime, owner, "hot", use=False)
    return MainData(owner.email, owner.token, key, restricted, hot, hot_id)


async def main_data(runtime: Runtime) -> MainData:
    """The account every load scenario uses: a zone, a key, a key restricted to an
    address range that covers the load generator, and a never-used "hot" key."""
    async with started(runtime):
        return await _main_data(runtime)


async def with_revocable_keys(
    runtime: Runtime, accounts: int, keys: int
) -> tuple[MainData, list[tuple[str, int]]]:
    """The main data, and ``accounts`` more accounts of ``keys`` keys each, as
    (credential, key id) pairs to revoke: the credential is the account's first
    key, and the very first pair (a key and its own id) is never revoked."""
    async with started(runtime):
        data = await _main_data(runtime)
        pairs: list[tuple[str, int]] = []
        for n in range(accounts):
            owner = await new_account(runtime, f"burst{n}")
            made = [await new_key(runtime, owner, f"k{i}") for i in range(keys)]
            if not pairs:
                pairs.append(made[0])
            pairs += [(made[0][0], key_id) for _raw, key_id in made[1:]]
    return data, pairs


@contextlib.contextmanager
def database(target: Target) -> Iterator[Database]:
    """Just the database of ``target`` (to read or adjust rows around a load)."""
    db = open_database(target.settings())
    try:
        yield db
    finally:
        db.close()


def bulk_keys(db: Database, count: int, *, per_account: int = 10, batch: int = 20_000) -> float:
    """``count`` keys in accounts of ``per_account`` (accounts at the limit), with
    unique made-up hashes, straight into the tables (SQLAlchemy Core: the same
    code for both engines), then ``ANALYZE``. Returns the seconds it took."""
    started_at = time.perf_counter()
    now = datetime.now(UTC)
    salt = secrets.token_hex(8)
    n_accounts = -(-count // per_account)
    with db.writing() as conn:
        account_ids: list[int] = []
        for first in range(0, n_accounts, batch):
            rows = [
                {"name": f"seed-{salt}-{n}", "created_at": now}
                for n in range(first, min(first + batch, n_accounts))
            ]
            returned = conn.execute(
                insert(accounts).returning(accounts.c.id, sort_by_parameter_order=True), rows
            )
            account_ids += returned.scalars().all()
        for first in range(0, count, batch):
            rows = [
                {
                    "account_id": account_ids[i // per_account],
                    "name": "seeded",
                    "key_prefix": "pdm_" + digest[:4],
                    "key_hash": digest,
                    "created_at": now,
                }
                for i in range(first, min(first + batch, count))
                for digest in (hashlib.sha256(f"{salt}:{i}".encode()).hexdigest(),)
            ]
            conn.execute(insert(api_keys), rows)
    with db.writing() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started_at


def key_count(db: Database) -> int:
    with db.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(api_keys)).scalar_one())


# -- lastUsedAt, read from the database -----------------------------------------------


@dataclass(frozen=True)
class LastUse:
    at: datetime | None
    first_use_records: int


def last_use(db: Database, key_id: int) -> LastUse:
    """A key's ``lastUsedAt`` and its "key first used" records: each first-use
    write adds exactly one, in the same transaction."""
    with db.reading() as conn:
        at = conn.execute(select(api_keys.c.last_used_at).where(api_keys.c.id == key_id)).scalar()
        records = conn.execute(
            select(func.count())
            .select_from(audit_events)
            .where(
                audit_events.c.key_id == key_id,
                audit_events.c.event == str(Event.KEY_FIRST_USED),
            )
        ).scalar_one()
    return LastUse(at, int(records))


def backdate_last_use(db: Database, key_id: int, minutes: int) -> datetime:
    """As if the key had last been used ``minutes`` ago; returns that time."""
    when = datetime.now(UTC) - timedelta(minutes=minutes)
    with db.writing() as conn:
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=when))
    return when


def run(work: Any) -> Any:
    return asyncio.run(work)
