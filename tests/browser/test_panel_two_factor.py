"""Two-factor sign-in in a real Chromium against a real ``paradarum serve``: an
authenticator app (TOTP) set up and used, passkeys registered, used and removed with
Chromium's virtual authenticator (DevTools ``WebAuthn`` domain), recovery codes, and the
step-up dialog for a session signed in more than 10 minutes ago."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from paradarum.db.tables import memberships, persons
from paradarum.services.twofactor import totp_code, totp_step
from paradarum.tokens import INVITATION
from tests.browser.harness import DESKTOP, fresh_email, open_section, sign_in, sign_up
from tests.support import PASSWORD, ServerProcess, run, runtime_for, signup

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_overrides(server_port: int) -> dict[str, str]:
    # Passkeys need a domain (WebAuthn refuses an IP address as relying party): the
    # panel is used at localhost, which is also what the public URL says.
    return {"PARADARUM_PUBLIC_URL": f"http://localhost:{server_port}"}


@pytest.fixture
def context(browser: Any, server: ServerProcess, server_port: int) -> Iterator[Any]:
    ctx = browser.new_context(base_url=f"http://localhost:{server_port}", viewport=DESKTOP)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def virtual_authenticator(page: Any, cdp: Any = None) -> Any:
    """A platform authenticator that says yes at once, as a person touching it would
    (another one on ``cdp``'s page when given: a second device)."""
    if cdp is None:
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
    cdp.authenticator_id = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]
    return cdp


def _step(offset: int = 0) -> int:
    return totp_step(datetime.now(UTC)) + offset


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin?reason=signed-out")


def test_an_authenticator_app_is_set_up_then_asked_for_and_a_recovery_code_works_once(page):
    email = fresh_email()
    sign_up(page, email)
    open_section(page, "Security")
    expect(page.locator("#totp-state")).to_have_text("Off.")
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    expect(page.locator("#totp-secret")).to_have_text(re.compile(r"^[A-Z2-7]{32}$"))
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.get_by_label("Code from the app").fill(
        "000000" if totp_code(secret, _step()) != "000000" else "111111"
    )
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#totp-code-error")).to_contain_text("Wrong code")
    page.get_by_label("Code from the app").fill(totp_code(secret, _step()))
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    recovery = codes.all_inner_texts()
    expect(page.locator("#totp-state")).to_contain_text("On")
    expect(page.locator("#recovery-state")).to_have_text("10 of 10 recovery codes left.")

    sign_out(page)
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    # The confirming code's step is spent: the app's next code, a step ahead.
    page.get_by_label("Code").fill(totp_code(secret, _step() + 1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/account/api-keys")

    # A lost phone: a recovery code instead, once.
    sign_out(page)
    sign_in(page, email)
    page.get_by_role("button", name="Lost your phone? Use a recovery code").click()
    page.get_by_label("Recovery code").fill(recovery[0])
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/account/api-keys")
    open_section(page, "Security")
    expect(page.locator("#recovery-state")).to_have_text("9 of 10 recovery codes left.")
    sign_out(page)
    sign_in(page, email)
    page.get_by_role("button", name="Lost your phone? Use a recovery code").click()
    page.get_by_label("Recovery code").fill(recovery[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#two-factor-form [data-form-error]")).to_contain_text("Wrong code")


def test_a_passkey_is_registered_used_to_sign_in_and_removed(page):
    virtual_authenticator(page)
    email = fresh_email()
    sign_up(page, email)
    open_section(page, "Security")
    page.get_by_label("Name").fill("Work laptop")
    page.get_by_role("button", name="Add a passkey").click()
    item = page.locator("#passkey-list li").filter(has_text="Work laptop")
    expect(item).to_contain_text("never used")
    # The first second factor comes with the recovery codes.
    expect(page.locator("#recovery-codes li")).to_have_count(10)

    sign_out(page)
    sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    # No authenticator app: the passkey is the way in (or a recovery code).
    expect(page.locator("#code")).to_be_hidden()
    expect(
        page.get_by_role("button", name="Lost your passkey? Use a recovery code")
    ).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/account/api-keys")

    open_section(page, "Security")
    item = page.locator("#passkey-list li").filter(has_text="Work laptop")
    expect(item).to_contain_text("last used")
    item.get_by_role("button", name="Remove").click()
    expect(page.locator("#passkey-list li")).to_have_count(0)
    expect(page.locator("#recovery-state")).to_contain_text("when you turn on a second factor")

    # With no second factor left, the password alone signs in again.
    sign_out(page)
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")


def test_several_passkeys_are_named_renamed_and_each_removed_on_its_own(page):
    cdp = virtual_authenticator(page)
    email = fresh_email()
    sign_up(page, email)
    open_section(page, "Security")
    page.get_by_label("Name").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("#passkey-list li")).to_have_count(1)
    # The laptop is away; a security key is registered as a second passkey.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": cdp.authenticator_id})
    virtual_authenticator(page, cdp)
    page.get_by_label("Name").fill("Security key")
    page.get_by_role("button", name="Add a passkey").click()
    items = page.locator("#passkey-list li")
    expect(items).to_have_count(2)
    expect(items.filter(has_text="Laptop")).to_have_count(1)
    expect(items.filter(has_text="Security key")).to_have_count(1)

    # Renamed through the API (the panel's own session), the new name is listed.
    key_id = items.filter(has_text="Security key").get_attribute("data-passkey-id")
    renamed = page.evaluate(
        """async (id) => {
            const { token } = JSON.parse(sessionStorage.getItem("paradarum.session"));
            const response = await fetch(`/api/account/two-factor/passkeys/${id}`, {
                method: "PATCH",
                headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
                body: JSON.stringify({ name: "Blue key" }),
            });
            return response.status;
        }""",
        key_id,
    )
    assert renamed == 200
    page.reload()
    expect(items.filter(has_text="Blue key")).to_have_count(1)
    expect(items.filter(has_text="Security key")).to_have_count(0)

    # The security key signs in; removing the laptop's leaves it working.
    sign_out(page)
    sign_in(page, email)
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/account/api-keys")
    open_section(page, "Security")
    items.filter(has_text="Laptop").get_by_role("button", name="Remove").click()
    expect(items).to_have_count(1)
    expect(items.filter(has_text="Blue key")).to_contain_text("last used")
    sign_out(page)
    sign_in(page, email)
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url("**/account/api-keys")


def _old_session(server_env: dict[str, str], email: str, minutes: int) -> str:
    """A session of ``email`` signed in ``minutes`` ago (its sign-in time is what
    step-up reads), issued with the server's own secret."""
    with runtime_for(server_env) as runtime:

        def read(conn: Any) -> Any:
            return conn.execute(
                select(persons.c.id, persons.c.session_key, memberships.c.account_id)
                .join(memberships, memberships.c.person_id == persons.c.id)
                .where(persons.c.email == email)
            ).first()

        row = run(runtime.db.read(read))
        token, _ = runtime.tokens.issue(
            account_id=row.account_id,
            person_id=row.id,
            session_key=row.session_key,
            now=datetime.now(UTC) - timedelta(minutes=minutes),
        )
        return token


def test_an_old_session_confirms_with_its_password_in_a_dialog_and_the_key_is_made(
    page, api, server_env
):
    email = fresh_email()
    signup(api, email)
    token = _old_session(server_env, email, minutes=11)
    refused = api.post(
        "/api/account/apikeys", json={"name": "api"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 403 and refused.json()["data"] == {"stepUpRequired": True}

    page.goto("/signin")
    page.evaluate(
        "token => sessionStorage.setItem('paradarum.session', JSON.stringify({token}))", token
    )
    page.goto("/account/api-keys")
    page.get_by_text("0 of 10 active keys").wait_for()
    page.get_by_label("Name", exact=True).fill("Deploy")
    page.get_by_role("button", name="Generate").click()
    dialog = page.get_by_role("dialog", name="Confirm it’s you")
    expect(dialog).to_contain_text("last 10 minutes")
    dialog.get_by_label("Password").fill("not the password")
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog.locator("#step-up-password-error")).to_contain_text("wrong")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Confirm").click()
    # The action the person asked for goes on: the new key is shown.
    new_key = page.get_by_role("dialog", name="Your new API key")
    expect(new_key).to_be_visible()
    expect(new_key.get_by_role("textbox", name="API key")).to_have_value(re.compile(r"^pdm_"))


def test_a_member_of_an_account_that_requires_two_factor_is_made_to_enrol(page, api, server_env):
    owner_email, member_email = fresh_email(), fresh_email()
    signup(api, owner_email)
    signup(api, member_email)
    owner = {"Authorization": f"Bearer {login_token(api, owner_email)}"}
    secret = api.post("/api/account/two-factor/totp", headers=owner).json()["data"]["secret"]
    confirmed = api.post(
        "/api/account/two-factor/totp/confirm",
        json={"code": totp_code(secret, _step())},
        headers=owner,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert api.patch("/api/account", json={"requireTwoFactor": True}, headers=owner).is_success
    invitation = api.post(
        "/api/account/invitations", json={"email": member_email, "role": "developer"}, headers=owner
    ).json()["data"]
    with runtime_for(server_env) as runtime:
        link = runtime.tokens.issue_email_token(
            subject=invitation["id"],
            email=member_email,
            now=datetime.now(UTC),
            lifetime=timedelta(days=1),
            purpose=INVITATION,
        )
    member = {"Authorization": f"Bearer {login_token(api, member_email)}"}
    joined = api.post("/api/invitations/accept", json={"token": link}, headers=member)
    assert joined.status_code == 200, joined.text
    account_id = joined.json()["data"]["id"]

    # The member signs in and switches to the account: everything sends them to enrol.
    page.goto("/signin")
    sign_in(page, member_email)
    page.wait_for_url("**/account/api-keys")
    page.get_by_label("Account", exact=True).select_option(str(account_id))
    page.wait_for_url("**/account/security?enrol=required")
    expect(page.locator("#enrol-required")).to_be_visible()
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.locator("#totp-secret")).to_have_text(re.compile(r"^[A-Z2-7]{32}$"))
    member_secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(totp_code(member_secret, _step()))
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    expect(page.locator("#enrol-required")).to_be_hidden()
    open_section(page, "API keys")
    page.get_by_text("0 of 10 active keys").wait_for()


def login_token(api: Any, email: str) -> str:
    response = api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["token"])
