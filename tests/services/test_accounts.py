"""The account service (services/accounts.py) called directly on a real runtime,
SQLite and PostgreSQL: the refusal paths of sign-up and sign-in, sign-out twice,
step-up at its exact limit, wrong current passwords as sign-in failures, emailed
links that no longer match their person, and what an operator's deletion leaves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, func, insert, select

from paradarum.db.tables import accounts, memberships, persons, revoked_sessions
from paradarum.errors import (
    AccountNotFound,
    EmailTaken,
    Forbidden,
    NotASession,
    NotAuthenticated,
    RateLimited,
    SignupDisabled,
    StepUpRequired,
    ValidationFailed,
)
from paradarum.runtime import Runtime
from paradarum.services import audit as events
from paradarum.services.accounts import (
    INVALID_LINK,
    INVALID_RESET_LINK,
    NO_ACCOUNT,
    TOO_MANY_FAILURES,
    TOO_MANY_SIGNUPS,
    WRONG_CREDENTIALS,
    Session,
)
from paradarum.services.apikeys import KeySettings
from paradarum.services.context import ClientInfo
from paradarum.tokens import RESET_PASSWORD, VERIFY_EMAIL
from tests.services.principals import CLIENT, audit, key_principal, new_email, owner, session_of
from tests.support import PASSWORD, run

T = TypeVar("T")
NEW_PASSWORD = "a different horse, battery and staple"
# Verification on: links are queued (never sent, the background is not started).
VERIFYING = {
    "email_verification": "on",
    "smtp_url": "smtp://127.0.0.1:9",
    "notifications_enabled": False,
}


def scenario(runtime: Runtime, body: Callable[[], Awaitable[T]]) -> T:
    """Run ``body`` on a loop of its own, then let the work it spawned after its
    answers (a failed sign-in's log entry) finish."""

    async def main() -> T:
        try:
            return await body()
        finally:
            await runtime.background.stop()

    return run(main())


def login(runtime: Runtime, email: str, password: str = PASSWORD, client: ClientInfo = CLIENT):
    return run(runtime.accounts.login(email=email, password=password, client=client))


def person(runtime: Runtime, email: str) -> Any:
    with runtime.db.reading() as conn:
        return conn.execute(select(persons).where(persons.c.email == email)).one()


def person_account(runtime: Runtime, email: str) -> int:
    return int(run(runtime.accounts.find(email)).id)


def count(runtime: Runtime, table: Any, *where: Any) -> int:
    with runtime.db.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


# -- sign-up -----------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"signup_enabled": False}])
def test_sign_up_turned_off_refuses_everyone_but_operators(runtime):
    email = new_email()
    with pytest.raises(SignupDisabled):
        run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT))
    assert count(runtime, persons) == 0
    made = run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT, force=True))
    assert made is not None and made.email == email
    assert person(runtime, email).email_verified_at is not None


@pytest.mark.parametrize("settings_overrides", [{"signups_per_address": 2}])
def test_sign_ups_are_limited_per_address_and_invalid_ones_cost_nothing(runtime):
    here = ClientInfo(address="198.51.100.30")
    for _ in range(3):
        with pytest.raises(ValidationFailed):
            run(runtime.accounts.signup(email="not an email", password=PASSWORD, client=here))
    for _ in range(2):
        run(runtime.accounts.signup(email=new_email(), password=PASSWORD, client=here))
    with pytest.raises(RateLimited) as limited:
        run(runtime.accounts.signup(email=new_email(), password=PASSWORD, client=here))
    assert limited.value.message == TOO_MANY_SIGNUPS
    assert limited.value.retry_after >= 1
    # Another address has its own allowance; operators have none.
    run(runtime.accounts.signup(email=new_email(), password=PASSWORD, client=CLIENT))
    run(runtime.accounts.signup(email=new_email(), password=PASSWORD, client=here, force=True))
    assert count(runtime, persons) == 4


def test_sign_up_reports_the_email_and_the_password_problems_together(runtime):
    with pytest.raises(ValidationFailed) as refused:
        run(runtime.accounts.signup(email="no-at-sign", password="short", client=CLIENT))
    assert set(refused.value.errors) == {"email", "password"}
    # A password made of the email is refused on its own.
    with pytest.raises(ValidationFailed) as refused:
        run(
            runtime.accounts.signup(
                email="someone.long@example.com", password="someone.long@example.com", client=CLIENT
            )
        )
    assert set(refused.value.errors) == {"password"}
    assert count(runtime, persons) == 0


def test_an_email_is_one_person_whatever_its_case_and_spaces(runtime):
    made = run(
        runtime.accounts.signup(email="  Mixed.Case@Example.COM ", password=PASSWORD, client=CLIENT)
    )
    assert made is not None and made.email == "mixed.case@example.com"
    with pytest.raises(EmailTaken):
        run(
            runtime.accounts.signup(
                email="mixed.case@example.com", password=PASSWORD, client=CLIENT
            )
        )
    assert isinstance(login(runtime, " MIXED.case@example.com"), Session)
    assert run(runtime.accounts.find("MIXED.CASE@example.com ")).id == made.id


# -- sign-in ---------------------------------------------------------------------------


def test_an_email_with_control_characters_is_wrong_credentials_on_every_engine(runtime):
    email = new_email()
    owner(runtime, email)
    for odd in (email + "\x00", "\x00" + email, email.replace("@", "\x07@")):
        with pytest.raises(NotAuthenticated) as refused:
            login(runtime, odd)
        assert refused.value.message == WRONG_CREDENTIALS


def test_a_person_who_belongs_to_no_account_learns_it_only_with_the_right_password(runtime):
    email = new_email()
    principal = owner(runtime, email)
    run(
        runtime.db.write(
            lambda conn: conn.execute(
                delete(memberships).where(memberships.c.person_id == principal.person_id)
            )
        )
    )
    with pytest.raises(NotAuthenticated):
        scenario(
            runtime, lambda: runtime.accounts.login(email=email, password="x" * 12, client=CLIENT)
        )
    with pytest.raises(Forbidden) as refused:
        login(runtime, email)
    assert refused.value.message == NO_ACCOUNT


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_email_and_address": 2}])
def test_wrong_passwords_stop_that_email_from_that_address_only(runtime):
    email = new_email()
    owner(runtime, email)
    here = ClientInfo(address="198.51.100.40")

    async def body() -> None:
        for _ in range(2):
            with pytest.raises(NotAuthenticated):
                await runtime.accounts.login(email=email, password="wrong" * 3, client=here)
        with pytest.raises(RateLimited) as limited:
            await runtime.accounts.login(email=email, password=PASSWORD, client=here)
        assert limited.value.message == TOO_MANY_FAILURES
        assert isinstance(
            await runtime.accounts.login(email=email, password=PASSWORD, client=CLIENT), Session
        )

    scenario(runtime, body)
    failed = audit(runtime, person_account(runtime, email), str(events.Event.LOGIN_FAILED))
    assert [row.client_address for row in failed] == [here.address] * 2


# -- sign-out --------------------------------------------------------------------------


def test_signing_out_twice_is_one_sign_out_and_a_key_cannot_sign_out(runtime):
    principal = owner(runtime)
    run(runtime.accounts.logout(principal=principal, client=CLIENT))
    run(runtime.accounts.logout(principal=principal, client=CLIENT))
    assert len(audit(runtime, principal.account_id, str(events.Event.LOGOUT))) == 1
    assert count(runtime, revoked_sessions) == 1
    created = run(runtime.apikeys.create(principal=principal, name="k", client=CLIENT))
    with pytest.raises(NotASession):
        run(
            runtime.accounts.logout(
                principal=key_principal(runtime, created.raw_key), client=CLIENT
            )
        )
    assert count(runtime, revoked_sessions) == 1


def test_a_signed_out_token_is_remembered_up_to_the_moment_it_expires(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    run(frozen_runtime.accounts.logout(principal=principal, client=CLIENT))
    expires = principal.token_expires_at_epoch
    assert expires is not None
    clock.now = datetime.fromtimestamp(expires, tz=UTC)
    assert run(frozen_runtime.accounts.clean_up_sessions()) == 0
    clock.advance(0.001)
    assert run(frozen_runtime.accounts.clean_up_sessions()) == 1
    assert count(frozen_runtime, revoked_sessions) == 0


# -- password ----------------------------------------------------------------------------


def test_a_password_change_needs_a_session_signed_in_at_most_ten_minutes_ago(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    created = run(frozen_runtime.apikeys.create(principal=principal, name="k", client=CLIENT))
    with pytest.raises(Forbidden):
        run(
            frozen_runtime.accounts.change_password(
                principal=key_principal(frozen_runtime, created.raw_key),
                current=PASSWORD,
                new=NEW_PASSWORD,
                client=CLIENT,
            )
        )
    # The sign-in's moment is kept in whole seconds.
    assert principal.auth_time_epoch is not None
    signed_in_at = datetime.fromtimestamp(principal.auth_time_epoch, tz=UTC)
    clock.now = signed_in_at + timedelta(seconds=600, milliseconds=1)
    with pytest.raises(StepUpRequired):
        run(
            frozen_runtime.accounts.change_password(
                principal=principal, current=PASSWORD, new=NEW_PASSWORD, client=CLIENT
            )
        )
    clock.now = signed_in_at + timedelta(seconds=600)
    run(
        frozen_runtime.accounts.change_password(
            principal=principal, current=PASSWORD, new=NEW_PASSWORD, client=CLIENT
        )
    )
    assert isinstance(login(frozen_runtime, str(principal.email), NEW_PASSWORD), Session)


@pytest.mark.parametrize("settings_overrides", [{"login_failures_per_email_and_address": 2}])
def test_wrong_current_passwords_count_as_failed_sign_ins(runtime):
    principal = owner(runtime)
    email = str(principal.email)

    def change(current: str, new: str = NEW_PASSWORD) -> None:
        run(
            runtime.accounts.change_password(
                principal=principal, current=current, new=new, client=CLIENT
            )
        )

    # A new password that is refused is not a guess at the current one.
    for _ in range(3):
        with pytest.raises(ValidationFailed) as refused:
            change(PASSWORD, new="short")
        assert set(refused.value.errors) == {"newPassword"}
    for _ in range(2):
        with pytest.raises(ValidationFailed) as refused:
            change("not the password at all")
        assert set(refused.value.errors) == {"currentPassword"}
    with pytest.raises(RateLimited):
        change(PASSWORD)
    with pytest.raises(RateLimited):
        login(runtime, email)
    assert isinstance(login(runtime, email, client=ClientInfo(address="198.51.100.50")), Session)


# -- emailed links -----------------------------------------------------------------------


def link(runtime: Runtime, email: str, purpose: str, *, session_key: str | None = None) -> str:
    return runtime.tokens.issue_email_token(
        subject=person(runtime, email).id,
        email=email,
        now=runtime.clock(),
        lifetime=timedelta(hours=1),
        purpose=purpose,
        session_key=session_key,
    )


@pytest.mark.parametrize("settings_overrides", [VERIFYING])
def test_a_verification_link_followed_twice_verifies_once(runtime):
    email = new_email()
    assert run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT)) is None
    assert person(runtime, email).email_verified_at is None
    token = link(runtime, email, VERIFY_EMAIL)
    for _ in range(2):
        run(runtime.accounts.verify_email(token=token, client=CLIENT))
    assert person(runtime, email).email_verified_at is not None
    verified = audit(runtime, person_account(runtime, email), str(events.Event.EMAIL_VERIFIED))
    assert len(verified) == 1
    # A reset link is not a verification link.
    with pytest.raises(ValidationFailed) as refused:
        run(
            runtime.accounts.verify_email(
                token=link(runtime, email, RESET_PASSWORD, session_key="k" * 32), client=CLIENT
            )
        )
    assert refused.value.message == INVALID_LINK


@pytest.mark.parametrize("settings_overrides", [VERIFYING])
def test_a_verification_link_is_void_once_the_address_changed(runtime):
    email = new_email()
    run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT))
    token = link(runtime, email, VERIFY_EMAIL)
    run(
        runtime.db.write(
            lambda conn: conn.execute(
                persons.update().where(persons.c.email == email).values(email="moved-" + email)
            )
        )
    )
    with pytest.raises(ValidationFailed):
        run(runtime.accounts.verify_email(token=token, client=CLIENT))
    assert person(runtime, "moved-" + email).email_verified_at is None


@pytest.mark.parametrize("settings_overrides", [VERIFYING])
def test_new_verification_links_are_limited_and_end_with_verification(runtime):
    email = new_email()
    run(runtime.accounts.signup(email=email, password=PASSWORD, client=CLIENT))
    principal = session_of(runtime, login(runtime, email))
    for _ in range(3):
        run(runtime.accounts.resend_verification(principal=principal))
    with pytest.raises(RateLimited):
        run(runtime.accounts.resend_verification(principal=principal))
    run(runtime.accounts.verify_email(token=link(runtime, email, VERIFY_EMAIL), client=CLIENT))
    other = new_email()
    run(runtime.accounts.signup(email=other, password=PASSWORD, client=CLIENT))
    run(runtime.accounts.verify_email(token=link(runtime, other, VERIFY_EMAIL), client=CLIENT))
    with pytest.raises(ValidationFailed) as refused:
        run(
            runtime.accounts.resend_verification(
                principal=session_of(runtime, login(runtime, other))
            )
        )
    assert refused.value.errors == {"email": ["This address is already verified."]}


def test_resending_a_verification_link_where_none_are_sent_is_a_400(runtime):
    with pytest.raises(ValidationFailed):
        run(runtime.accounts.resend_verification(principal=owner(runtime)))


def test_a_reset_link_dies_with_the_session_key_it_was_made_with(runtime):
    email = new_email()
    principal = owner(runtime, email)
    token = link(runtime, email, RESET_PASSWORD, session_key=person(runtime, email).session_key)
    run(
        runtime.accounts.change_password(
            principal=principal, current=PASSWORD, new=NEW_PASSWORD, client=CLIENT
        )
    )
    with pytest.raises(ValidationFailed) as refused:
        run(runtime.accounts.reset_password(token=token, password=PASSWORD, client=CLIENT))
    assert refused.value.message == INVALID_RESET_LINK
    # A verification link is no reset link either.
    with pytest.raises(ValidationFailed):
        run(
            runtime.accounts.reset_password(
                token=link(runtime, email, VERIFY_EMAIL), password=PASSWORD, client=CLIENT
            )
        )
    assert isinstance(login(runtime, email, NEW_PASSWORD), Session)


# -- operators -----------------------------------------------------------------------------


def test_deleting_a_person_keeps_the_accounts_someone_else_owns_too(runtime):
    leaving = new_email("leaving")
    gone = owner(runtime, leaving)
    staying = owner(runtime)
    # The leaving person also co-owns the staying owner's account, with a key there.
    run(
        runtime.db.write(
            lambda conn: conn.execute(
                insert(memberships).values(
                    account_id=staying.account_id,
                    person_id=gone.person_id,
                    role="owner",
                    created_at=runtime.clock(),
                )
            )
        )
    )
    shared_key = run(runtime.apikeys.create(principal=staying, name="shared", client=CLIENT))
    removed = run(runtime.accounts.delete(leaving.upper()))
    assert (removed.id, removed.email) == (gone.account_id, leaving)
    assert count(runtime, accounts, accounts.c.id == gone.account_id) == 0
    assert count(runtime, accounts, accounts.c.id == staying.account_id) == 1
    assert count(runtime, memberships, memberships.c.account_id == staying.account_id) == 1
    key_principal(runtime, shared_key.raw_key)
    with pytest.raises(NotAuthenticated):
        run(runtime.accounts.summary(gone))
    with pytest.raises(AccountNotFound):
        run(runtime.accounts.find(leaving))
    with pytest.raises(AccountNotFound):
        run(runtime.accounts.delete(leaving))


def test_the_summary_counts_active_keys_only(frozen_runtime, clock):
    principal = owner(frozen_runtime)
    lasting = run(frozen_runtime.apikeys.create(principal=principal, name="l", client=CLIENT))
    run(
        frozen_runtime.apikeys.create(
            principal=principal,
            name="brief",
            client=CLIENT,
            settings=KeySettings(expires_at=clock() + timedelta(hours=1)),
        )
    )
    summary = run(frozen_runtime.accounts.summary(principal))
    assert (summary.active_keys, summary.role, summary.email_verified) == (2, "owner", True)
    clock.advance(3600)
    assert run(frozen_runtime.accounts.summary(principal)).active_keys == 1
    # Read with the key in one statement, it says the same.
    keyed = run(
        frozen_runtime.authenticator.authenticate(lasting.raw_key, CLIENT, with_account=True)
    )
    assert run(frozen_runtime.accounts.summary(keyed)).active_keys == 1
