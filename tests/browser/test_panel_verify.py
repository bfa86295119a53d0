"""Email verification in a real Chromium against a real ``paradarum serve`` that sends
its links through a real SMTP server of the test's own: sign-up says to check the
inbox, Account settings holds keys and zones back until the emailed link is followed,
the link's page says what came of it, and "Send a new link" sends one."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.harness import KEY_PATTERN, fresh_email, generate_key, open_section, sign_in
from tests.mail import SmtpServer
from tests.support import PASSWORD, signup, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SENT = "A new verification link is on its way to your inbox."
INVALID = "This verification link is invalid or has expired. Ask for a new one."


@pytest.fixture(scope="module")
def server_overrides(smtp: SmtpServer, server_port: int) -> dict[str, str]:
    return {
        "PARADARUM_SMTP_URL": smtp.url(),
        "PARADARUM_EMAIL_VERIFICATION": "on",
        # The emailed links lead to this very server's panel.
        "PARADARUM_PUBLIC_URL": f"http://127.0.0.1:{server_port}",
    }


def links_to(smtp: SmtpServer, email: str) -> list[str]:
    """The verification links emailed to ``email``, oldest first."""
    return smtp.links(email, subject="Confirm", page="/verify-email")


def newest_link(smtp: SmtpServer, email: str, count: int = 1) -> str:
    wait_until(lambda: len(links_to(smtp, email)) >= count)
    return links_to(smtp, email)[-1]


def session(page) -> str | None:
    return page.evaluate("sessionStorage.getItem('paradarum.session')")


def test_sign_up_then_the_emailed_link_verifies_the_address_and_keys_can_be_made(
    page, smtp, server
):
    email = fresh_email()
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    # Not signed in: the page says where the link went.
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_focused()
    expect(page.locator("#signup-sent-message")).to_have_text(
        re.compile(r"^Check your inbox: a link to verify your email address is on its way\.")
    )
    expect(page.locator("#signup-sent")).to_contain_text(email)
    expect(page.get_by_label("Email")).to_be_hidden()
    assert page.url == f"{server.base_url}/signup"
    assert session(page) is None

    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url("**/signin")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    expect(page.get_by_text("0 of 10 active keys")).to_be_visible()

    # Until the link is followed: the banner, and forms that say why they are held.
    banner = page.locator("#verify-banner")
    expect(banner).to_be_visible()
    expect(banner.locator(".banner-text")).to_have_text(
        f"Verify your email address: we sent a link to {email}. "
        "Until then you cannot create keys or zones, or invite anyone."
    )
    expect(banner.get_by_role("button", name="Send a new link")).to_be_enabled()
    expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Generate")).to_be_disabled()
    expect(page.locator("#limit-note")).to_contain_text("Verify your email address to create keys")
    open_section(page, "Zones")
    expect(banner).to_be_visible()
    expect(page.get_by_label("Hostname")).to_be_disabled()
    expect(page.get_by_role("button", name="Add zone")).to_be_disabled()
    expect(page.locator("#zone-note")).to_contain_text("Verify your email address to add zones")

    link = newest_link(smtp, email)
    assert link.startswith(f"{server.base_url}/verify-email#token=")
    page.goto(link)
    expect(page.locator("#verify-done-message")).to_have_text("Your email address is verified.")
    # The token has left the address bar (and so this tab's history).
    assert page.url == f"{server.base_url}/verify-email"

    page.get_by_role("link", name="Go to Account settings").click()
    page.wait_for_url("**/account/api-keys")
    expect(page.get_by_text("0 of 10 active keys")).to_be_visible()
    expect(banner).to_be_hidden()
    expect(page.locator("#limit-note")).to_be_hidden()
    open_section(page, "Zones")
    expect(page.locator("#zone-note")).to_be_hidden()
    expect(page.get_by_label("Hostname")).to_be_enabled()
    open_section(page, "API keys")
    assert KEY_PATTERN.match(generate_key(page, "After verification"))


def test_an_invalid_link_says_so_and_how_to_get_a_new_one(page, server):
    page.goto(f"/verify-email#token=not-a-valid-link-{uuid.uuid4().hex}")
    expect(page.get_by_role("alert")).to_have_text(INVALID)
    expect(page.locator("#verify-failed")).to_contain_text(
        "To get a new link, sign in, then press “Send a new link”"
    )
    expect(page.get_by_role("link", name="sign in")).to_have_attribute(
        "href", "/signin?next=/account"
    )
    expect(page.get_by_role("button", name="Try again")).to_be_hidden()
    expect(page.locator("#verify-done")).to_be_hidden()
    assert page.url == f"{server.base_url}/verify-email"


def test_without_a_token_the_page_says_so(page):
    page.goto("/verify-email")
    expect(page.get_by_role("alert")).to_contain_text(
        "This page was opened without its verification token."
    )
    expect(page.get_by_text("Verifying your email address…")).to_be_hidden()


def test_send_a_new_link_sends_one_until_the_api_says_to_wait(page, api, smtp):
    email = fresh_email()
    signup(api, email)
    signed_up = time.time()
    first = newest_link(smtp, email)
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")

    button = page.get_by_role("button", name="Send a new link")
    status = page.locator("#verify-status")
    error = page.locator("#verify-error")
    # Links asked for within one second count as one (the outbox's event key holds
    # the second): ask in a later second than the sign-up's.
    wait_until(lambda: int(time.time()) > int(signed_up), timeout=2)
    with page.expect_response("**/api/account/email/verification"):
        button.click()
    expect(status).to_have_text(SENT)
    expect(error).to_be_hidden()
    newest = newest_link(smtp, email, count=2)
    assert newest != first

    # A few an hour; then the API's own "try again later", with how long.
    for _ in range(2):
        with page.expect_response("**/api/account/email/verification"):
            button.click()
        expect(status).to_have_text(SENT)
    with page.expect_response("**/api/account/email/verification") as refused:
        button.click()
    assert refused.value.status == 429
    expect(error).to_contain_text("A verification link was sent a moment ago. Try again later.")
    expect(error).to_contain_text(re.compile(r"You can try again in \d+ (seconds?|minutes?)\."))
    expect(status).to_be_empty()
    expect(button).to_be_enabled()

    # The newest link works, even opened on the link page itself, where only the
    # fragment changes (no new page loads).
    page.goto(f"/verify-email#token=not-a-valid-link-{uuid.uuid4().hex}")
    expect(page.get_by_role("alert")).to_have_text(INVALID)
    page.goto(newest)
    expect(page.locator("#verify-done-message")).to_have_text("Your email address is verified.")
    expect(page.locator("#verify-failed")).to_be_hidden()
    assert "#" not in page.url
