"""The authenticator (services/auth.py) called directly on a real runtime, SQLite and
PostgreSQL: the boundaries of a key's and a session's life, keys whose member is gone,
address and permission refusals, and what counts as a failed authentication."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from paradarum import keys
from paradarum.db.tables import accounts
from paradarum.errors import NotAuthenticated, RateLimited, TwoFactorEnrolmentRequired
from paradarum.runtime import Runtime
from paradarum.services import audit as events
from paradarum.services.apikeys import KeySettings
from paradarum.services.auth import PURGE_ONLY, WRONG_ADDRESS, KeyRefused, address_allowed
from paradarum.services.context import ClientInfo, CredentialKind, Permission, Principal
from tests.services.principals import CLIENT, audit, join, owner
from tests.support import PASSWORD, run


def authenticate(runtime: Runtime, credential: str | None, client: ClientInfo = CLIENT, **how: Any):
    return run(runtime.authenticator.authenticate(credential, client, **how))


def new_key(runtime: Runtime, principal: Principal, **options: Any) -> str:
    created = run(
        runtime.apikeys.create(
            principal=principal, name="svc", client=CLIENT, settings=KeySettings(**options)
        )
    )
    return created.raw_key


def session_token(runtime: Runtime, email: str) -> str:
    """A fresh session token of the person with ``email``."""
    session = run(runtime.accounts.login(email=email, password=PASSWORD, client=CLIENT))
    return str(session.token)


def test_a_key_is_accepted_until_the_moment_it_expires_and_refused_from_it(frozen_runtime, clock):
    expires = clock() + timedelta(hours=1)
    raw = new_key(frozen_runtime, owner(frozen_runtime), expires_at=expires)
    clock.now = expires - timedelta(milliseconds=1)
    assert authenticate(frozen_runtime, raw).kind is CredentialKind.KEY
    clock.now = expires
    with pytest.raises(NotAuthenticated):
        authenticate(frozen_runtime, raw)


def test_a_session_ends_at_the_exact_second_its_token_expires(frozen_runtime, clock):
    token = session_token(frozen_runtime, str(owner(frozen_runtime).email))
    expires = frozen_runtime.tokens.decode(token, now=clock()).expires_at
    lifetime = timedelta(seconds=frozen_runtime.settings.jwt_lifetime_seconds)
    assert timedelta(0) <= clock() + lifetime - expires < timedelta(seconds=1)
    clock.now = expires - timedelta(seconds=1)
    authenticate(frozen_runtime, token)
    clock.now = expires
    with pytest.raises(NotAuthenticated):
        authenticate(frozen_runtime, token)


def test_a_key_whose_member_was_deleted_is_refused_while_the_owners_keys_work(runtime):
    principal = owner(runtime)
    admin = join(runtime, principal, "admin")
    admins_key = new_key(runtime, admin.principal)
    owners_key = new_key(runtime, principal)
    vouched = authenticate(runtime, admins_key)
    assert (vouched.account_id, vouched.member_id) == (
        principal.account_id,
        admin.principal.member_id,
    )
    run(runtime.accounts.delete(admin.email))
    with pytest.raises(NotAuthenticated):
        authenticate(runtime, admins_key)
    assert authenticate(runtime, owners_key).member_id == principal.member_id


def test_a_key_acts_with_its_member_s_current_role(runtime):
    principal = owner(runtime)
    admin = join(runtime, principal, "admin")
    raw = new_key(runtime, admin.principal)
    assert authenticate(runtime, raw).role == "admin"
    run(
        runtime.members.change_role(
            principal=principal,
            member_id=int(admin.principal.member_id or 0),
            role="developer",
            client=CLIENT,
        )
    )
    assert authenticate(runtime, raw).role == "developer"


def test_an_address_restricted_key_checks_the_client_address(runtime):
    raw = new_key(runtime, owner(runtime), allowed_cidrs=("203.0.113.0/24",))
    inside = authenticate(runtime, raw, ClientInfo(address="203.0.113.77"))
    assert inside.address_restricted and inside.restricted
    # The same client seen through an IPv6 socket (an IPv4-mapped address).
    authenticate(runtime, raw, ClientInfo(address="::ffff:203.0.113.77"))
    for outside in ("198.51.100.1", None, "not an address"):
        with pytest.raises(KeyRefused) as refused:
            authenticate(runtime, raw, ClientInfo(address=outside))
        assert refused.value.message == WRONG_ADDRESS


def test_address_allowed_reads_networks_of_both_families():
    cidrs = '["10.1.0.0/16", "2001:db8::/32"]'
    assert address_allowed(cidrs, "10.1.200.3")
    assert not address_allowed(cidrs, "10.2.0.1")
    assert address_allowed(cidrs, "2001:db8:ff::1")
    assert address_allowed(cidrs, "::ffff:10.1.0.9")
    assert not address_allowed(cidrs, "2001:db9::1")
    assert not address_allowed(cidrs, "")


def test_a_purge_only_key_is_refused_beyond_purging(runtime):
    raw = new_key(runtime, owner(runtime), permission=Permission.PURGE)
    assert authenticate(runtime, raw, required=Permission.PURGE).permission is Permission.PURGE
    with pytest.raises(KeyRefused) as refused:
        authenticate(runtime, raw)
    assert refused.value.message == PURGE_ONLY


def test_repeated_refusals_of_a_key_are_logged_once_and_all_counted(runtime):
    principal = owner(runtime)
    raw = new_key(runtime, principal, allowed_cidrs=("203.0.113.0/24",))
    outside = ClientInfo(address="198.51.100.1")

    async def refused_five_times() -> Principal:
        for _ in range(5):
            with pytest.raises(KeyRefused):
                await runtime.authenticator.authenticate(raw, outside)
        # The log entries are written after the answers: wait for them.
        await runtime.background.stop()
        return await runtime.authenticator.authenticate(raw, ClientInfo(address="203.0.113.5"))

    keyed = run(refused_five_times())
    run(runtime.usage.flush())
    (today,) = run(
        runtime.usage.history(principal=principal, key_id=int(keyed.key_id or 0), days=1)
    )
    assert (today.successes, today.refusals) == (1, 5)
    logged = audit(runtime, principal.account_id, str(events.Event.KEY_REFUSED))
    assert [(row.detail, row.key_id) for row in logged] == [
        ("Refused: used from 198.51.100.1.", keyed.key_id)
    ]


@pytest.mark.parametrize("settings_overrides", [{"auth_failures_per_address": 3}])
def test_only_unknown_credentials_count_towards_the_failure_limit(runtime):
    """A known key refused for its address or permission is not a guess: it never
    blocks the address; three unknown ones do, whatever comes next from there."""
    address = ClientInfo(address="198.51.100.20")
    purge_only = new_key(runtime, owner(runtime), permission=Permission.PURGE)
    for _ in range(5):
        with pytest.raises(KeyRefused):
            authenticate(runtime, purge_only, address)
    authenticate(runtime, purge_only, address, required=Permission.PURGE)
    unknown = keys.generate()
    for _ in range(3):
        with pytest.raises(NotAuthenticated):
            authenticate(runtime, unknown, address)
    with pytest.raises(RateLimited):
        authenticate(runtime, purge_only, address, required=Permission.PURGE)
    # Another address has its own count.
    authenticate(runtime, purge_only, required=Permission.PURGE)


def test_a_signed_out_session_and_malformed_credentials_are_refused(runtime):
    principal = owner(runtime)
    token = session_token(runtime, str(principal.email))
    run(runtime.accounts.logout(principal=authenticate(runtime, token), client=CLIENT))
    raw = new_key(runtime, principal)
    broken = raw[:-1] + ("A" if raw[-1] != "A" else "B")  # the checksum fails
    for credential in (token, None, "", broken, token + "x"):
        with pytest.raises(NotAuthenticated):
            authenticate(runtime, credential)
    # Refused credentials end nothing: the account's key still works.
    authenticate(runtime, raw)


def test_an_account_requiring_two_factor_holds_sessions_to_enrolment_but_not_keys(runtime):
    principal = owner(runtime)
    raw = new_key(runtime, principal)
    token = session_token(runtime, str(principal.email))
    run(
        runtime.db.write(
            lambda conn: conn.execute(
                update(accounts)
                .where(accounts.c.id == principal.account_id)
                .values(require_two_factor=True)
            )
        )
    )
    with pytest.raises(TwoFactorEnrolmentRequired):
        authenticate(runtime, token)
    assert authenticate(runtime, token, enrolling=True).kind is CredentialKind.SESSION
    keyed = authenticate(runtime, raw, with_account=True)
    assert keyed.account_row is not None and bool(keyed.account_row[-1]) is True
