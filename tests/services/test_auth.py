"""The authenticator (services/auth.py) called directly on a real runtime, SQLite and
PostgreSQL: the boundaries of a key's and a session's life, keys whose member is gone,
address and permission refusals, and what counts as a failed authentication."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert, select, update

from paradarum import keys
from paradarum.db.tables import accounts, audit_events, memberships
from paradarum.errors import NotAuthenticated, RateLimited, TwoFactorEnrolmentRequired
from paradarum.runtime import Runtime
from paradarum.services import audit
from paradarum.services.accounts import Session
from paradarum.services.apikeys import KeySettings
from paradarum.services.auth import PURGE_ONLY, WRONG_ADDRESS, KeyRefused, address_allowed
from paradarum.services.context import ClientInfo, CredentialKind, Permission, Principal
from tests.support import run

T = TypeVar("T")
PASSWORD = secrets.token_urlsafe(18)
CLIENT = ClientInfo(address="192.0.2.10", user_agent="service tests")


def scenario(runtime: Runtime, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` on a loop of its own with the runtime's database open, then let
    the work it spawned (a refusal's log entry, a usage write) finish."""

    async def main() -> T:
        await runtime.db.start()
        try:
            return await body()
        finally:
            await runtime.background.stop()
            await runtime.db.stop()

    return run(main())


async def sign_up(runtime: Runtime, email: str | None = None) -> Principal:
    """A new person with their own account: the session principal of its owner."""
    email = email or f"owner-{uuid.uuid4().hex[:10]}@example.com"
    await runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT)
    session = await runtime.accounts.login(email=email, password=PASSWORD, client=CLIENT)
    assert isinstance(session, Session)
    return await runtime.authenticator.authenticate(session.token, CLIENT)


async def new_key(runtime: Runtime, principal: Principal, **options: Any) -> str:
    created = await runtime.apikeys.create(
        principal=principal, name="svc", client=CLIENT, settings=KeySettings(**options)
    )
    return created.raw_key


async def join(runtime: Runtime, owner: Principal, role: str) -> tuple[Principal, str]:
    """Another person, member of ``owner``'s account as ``role``: their session
    principal there, and their email."""
    own = await sign_up(runtime)
    assert own.email is not None

    def work(conn: Any) -> Session:
        conn.execute(
            insert(memberships).values(
                account_id=owner.account_id,
                person_id=own.person_id,
                role=role,
                created_at=runtime.clock(),
            )
        )
        return runtime.accounts.issue_session(
            conn, person_id=int(own.person_id or 0), account_id=owner.account_id, client=CLIENT
        )

    session = await runtime.db.write(work)
    return await runtime.authenticator.authenticate(session.token, CLIENT), own.email


def test_a_key_is_accepted_until_the_moment_it_expires_and_refused_from_it(frozen_runtime, clock):
    expires = clock() + timedelta(hours=1)

    async def body() -> None:
        owner = await sign_up(frozen_runtime)
        raw = await new_key(frozen_runtime, owner, expires_at=expires)
        clock.now = expires - timedelta(milliseconds=1)
        principal = await frozen_runtime.authenticator.authenticate(raw, CLIENT)
        assert principal.kind is CredentialKind.KEY
        clock.now = expires
        with pytest.raises(NotAuthenticated):
            await frozen_runtime.authenticator.authenticate(raw, CLIENT)

    scenario(frozen_runtime, body)


def test_a_session_ends_at_the_exact_second_its_token_expires(frozen_runtime, clock):
    lifetime = frozen_runtime.settings.jwt_lifetime_seconds

    async def body() -> None:
        owner = await sign_up(frozen_runtime)
        session = await frozen_runtime.accounts.login(
            email=str(owner.email), password=PASSWORD, client=CLIENT
        )
        assert isinstance(session, Session)
        expires = session.claims.expires_at
        assert expires == session.claims.issued_at + timedelta(seconds=lifetime)
        clock.now = expires - timedelta(seconds=1)
        await frozen_runtime.authenticator.authenticate(session.token, CLIENT)
        clock.now = expires
        with pytest.raises(NotAuthenticated):
            await frozen_runtime.authenticator.authenticate(session.token, CLIENT)

    scenario(frozen_runtime, body)


def test_a_key_whose_member_was_deleted_is_refused_while_the_owners_keys_work(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        admin, admin_email = await join(runtime, owner, "admin")
        admins_key = await new_key(runtime, admin)
        owners_key = await new_key(runtime, owner)
        vouched = await runtime.authenticator.authenticate(admins_key, CLIENT)
        assert (vouched.account_id, vouched.member_id) == (owner.account_id, admin.member_id)

        await runtime.accounts.delete(admin_email)

        with pytest.raises(NotAuthenticated):
            await runtime.authenticator.authenticate(admins_key, CLIENT)
        still = await runtime.authenticator.authenticate(owners_key, CLIENT)
        assert still.member_id == owner.member_id

    scenario(runtime, body)


def test_a_key_acts_with_its_member_s_current_role(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        admin, _ = await join(runtime, owner, "admin")
        raw = await new_key(runtime, admin)
        assert (await runtime.authenticator.authenticate(raw, CLIENT)).role == "admin"
        await runtime.db.write(
            lambda conn: conn.execute(
                update(memberships).where(memberships.c.id == admin.member_id).values(role="viewer")
            )
        )
        assert (await runtime.authenticator.authenticate(raw, CLIENT)).role == "viewer"

    scenario(runtime, body)


def test_an_address_restricted_key_checks_the_client_address(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        raw = await new_key(runtime, owner, allowed_cidrs=("203.0.113.0/24",))
        inside = await runtime.authenticator.authenticate(raw, ClientInfo(address="203.0.113.77"))
        assert inside.address_restricted and inside.restricted
        # The same client seen through an IPv6 socket (an IPv4-mapped address).
        await runtime.authenticator.authenticate(raw, ClientInfo(address="::ffff:203.0.113.77"))
        for outside in ("198.51.100.1", None, "not an address"):
            with pytest.raises(KeyRefused) as refused:
                await runtime.authenticator.authenticate(raw, ClientInfo(address=outside))
            assert refused.value.message == WRONG_ADDRESS

    scenario(runtime, body)


def test_address_allowed_reads_networks_of_both_families():
    cidrs = '["10.1.0.0/16", "2001:db8::/32"]'
    assert address_allowed(cidrs, "10.1.200.3")
    assert not address_allowed(cidrs, "10.2.0.1")
    assert address_allowed(cidrs, "2001:db8:ff::1")
    assert address_allowed(cidrs, "::ffff:10.1.0.9")
    assert not address_allowed(cidrs, "2001:db9::1")
    assert not address_allowed(cidrs, "")


def test_a_purge_only_key_is_refused_beyond_purging(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        raw = await new_key(runtime, owner, permission=Permission.PURGE)
        allowed = await runtime.authenticator.authenticate(raw, CLIENT, required=Permission.PURGE)
        assert allowed.permission is Permission.PURGE
        with pytest.raises(KeyRefused) as refused:
            await runtime.authenticator.authenticate(raw, CLIENT)
        assert refused.value.message == PURGE_ONLY

    scenario(runtime, body)


def test_repeated_refusals_of_a_key_are_logged_once_and_all_counted(runtime):
    async def body() -> tuple[int, list[Any]]:
        owner = await sign_up(runtime)
        raw = await new_key(runtime, owner, allowed_cidrs=("203.0.113.0/24",))
        outside = ClientInfo(address="198.51.100.1")
        for _ in range(5):
            with pytest.raises(KeyRefused):
                await runtime.authenticator.authenticate(raw, outside)
        # Another reason for the same key is logged on its own.
        principal = await runtime.authenticator.authenticate(raw, ClientInfo(address="203.0.113.5"))
        await runtime.background.stop()  # the log entries are written after the answer
        await runtime.usage.flush()
        usage = await runtime.usage.history(
            principal=owner, key_id=int(principal.key_id or 0), days=1
        )
        rows = await runtime.db.read(
            lambda conn: conn.execute(
                select(audit_events.c.detail).where(
                    audit_events.c.event == str(audit.Event.KEY_REFUSED)
                )
            ).all()
        )
        return usage[0].refusals, rows

    refusals, rows = scenario(runtime, body)
    assert refusals == 5
    assert [row.detail for row in rows] == ["Refused: used from 198.51.100.1."]


@pytest.mark.parametrize(
    "settings_overrides", [{"auth_failures_per_address": 3, "notifications_enabled": False}]
)
def test_only_unknown_credentials_count_towards_the_failure_limit(runtime):
    """A known key refused for its address or permission is not a guess: it never
    blocks the address; three unknown ones do, whatever comes next from there."""
    address = ClientInfo(address="198.51.100.20")

    async def body() -> None:
        owner = await sign_up(runtime)
        purge_only = await new_key(runtime, owner, permission=Permission.PURGE)
        for _ in range(5):
            with pytest.raises(KeyRefused):
                await runtime.authenticator.authenticate(purge_only, address)
        await runtime.authenticator.authenticate(purge_only, address, required=Permission.PURGE)
        unknown = keys.generate()
        for _ in range(3):
            with pytest.raises(NotAuthenticated):
                await runtime.authenticator.authenticate(unknown, address)
        with pytest.raises(RateLimited):
            await runtime.authenticator.authenticate(purge_only, address, required=Permission.PURGE)
        # Another address has its own count.
        await runtime.authenticator.authenticate(purge_only, CLIENT, required=Permission.PURGE)

    scenario(runtime, body)


def test_a_signed_out_session_and_a_malformed_credential_are_refused(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        session = await runtime.accounts.login(
            email=str(owner.email), password=PASSWORD, client=CLIENT
        )
        assert isinstance(session, Session)
        principal = await runtime.authenticator.authenticate(session.token, CLIENT)
        await runtime.accounts.logout(principal=principal, client=CLIENT)
        raw = await new_key(runtime, owner)
        broken = raw[:-1] + ("A" if raw[-1] != "A" else "B")  # the checksum fails
        for credential in (session.token, None, "", broken, session.token + "x"):
            with pytest.raises(NotAuthenticated):
                await runtime.authenticator.authenticate(credential, CLIENT)
        # Refused credentials end nothing: the account's key still works.
        await runtime.authenticator.authenticate(raw, CLIENT)

    scenario(runtime, body)


def test_an_account_requiring_two_factor_holds_sessions_to_enrolment_but_not_keys(runtime):
    async def body() -> None:
        owner = await sign_up(runtime)
        raw = await new_key(runtime, owner)
        session = await runtime.accounts.login(
            email=str(owner.email), password=PASSWORD, client=CLIENT
        )
        assert isinstance(session, Session)
        await runtime.db.write(
            lambda conn: conn.execute(
                update(accounts)
                .where(accounts.c.id == owner.account_id)
                .values(require_two_factor=True)
            )
        )
        with pytest.raises(TwoFactorEnrolmentRequired):
            await runtime.authenticator.authenticate(session.token, CLIENT)
        enrolling = await runtime.authenticator.authenticate(session.token, CLIENT, enrolling=True)
        assert enrolling.kind is CredentialKind.SESSION
        keyed = await runtime.authenticator.authenticate(raw, CLIENT, with_account=True)
        assert keyed.account_row is not None and bool(keyed.account_row[-1]) is True

    scenario(runtime, body)
