"""Getting back in, in a real Chromium against a real ``paradarum serve`` that mails its
links through a real SMTP server of the test's own: "Forgot your password?" on the
sign-in page, the page that asks for a link, and the page the link opens, which sets
the new password and sends the person to sign in with it; and the one-time link that
finishes a sign-in from a new address while the account is under attack."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.harness import PHONE, fresh_email, sign_in
from tests.mail import SmtpServer
from tests.support import PASSWORD, bearer, login, signup, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_PASSWORD = "a new passphrase from the panel"
USED = "This password reset link is invalid, has expired or was used already. Ask for a new one."


@pytest.fixture(scope="module")
def server_overrides(smtp: SmtpServer, server_port: int) -> dict[str, str]:
    return {
        "PARADARUM_SMTP_URL": smtp.url(),
        # The emailed links lead to this very server's panel.
        "PARADARUM_PUBLIC_URL": f"http://127.0.0.1:{server_port}",
        # A few failures from anywhere and an email counts as under attack.
        "PARADARUM_LOGIN_FAILURES_PER_EMAIL": "3",
    }


def reset_links(smtp: SmtpServer, email: str) -> list[str]:
    return smtp.links(email, subject="Reset", page="/reset-password")


def reset_link(smtp: SmtpServer, email: str) -> str:
    wait_until(lambda: bool(reset_links(smtp, email)))
    return reset_links(smtp, email)[-1]


def ask_for_a_link(page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_focused()


def test_forgot_your_password_leads_to_a_link_that_sets_a_new_one(page, api, smtp, server):
    email = fresh_email()
    signup(api, email)
    before = login(api, email)

    page.goto("/signin")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url("**/forgot-password")
    ask_for_a_link(page, email)
    expect(page.locator("#forgot-sent-message")).to_have_text(
        "If an account uses this email address, a link to reset its password is on its "
        "way there. It works once, for 1 hour."
    )

    link = reset_link(smtp, email)
    assert link.startswith(f"{server.base_url}/reset-password#token=")
    page.goto(link)
    # The token has left the address bar (and so this tab's history).
    assert page.url == f"{server.base_url}/reset-password"
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator("#password-error")).to_contain_text("10")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()

    page.wait_for_url("**/signin?reason=password-changed")
    expect(page.locator("#notice")).to_contain_text("Sign in with your new password.")
    assert api.get("/api/account", headers=bearer(before)).status_code == 401
    sign_in(page, email, PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(page, email, NEW_PASSWORD)
    page.wait_for_url("**/account/api-keys")
    expect(page.get_by_text("0 of 10 active keys")).to_be_visible()


def test_a_used_link_says_so_and_offers_a_new_one(page, api, smtp):
    email = fresh_email()
    signup(api, email)
    api.post("/api/auth/password/forgot", json={"email": email})
    link = reset_link(smtp, email)
    token = link.split("#token=", 1)[1]
    assert api.post(
        "/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    ).is_success

    page.goto(link)
    page.get_by_label("New password").fill("another new passphrase")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("alert")).to_have_text(USED)
    expect(page.get_by_label("New password")).to_be_hidden()
    page.get_by_role("link", name="Ask for a new link").click()
    page.wait_for_url("**/forgot-password")
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()


def test_without_a_token_the_reset_page_says_so(page):
    page.goto("/reset-password")
    expect(page.get_by_role("alert")).to_contain_text(
        "This page was opened without its reset token."
    )
    expect(page.get_by_label("New password")).to_be_hidden()


def test_the_new_pages_fit_a_phone(page):
    page.set_viewport_size(PHONE)
    token = f"t{uuid.uuid4().hex}"
    for path in (
        "/forgot-password",
        f"/reset-password#token={token}",
        f"/confirm-sign-in#token={token}",
    ):
        page.goto(path)
        page.get_by_role("button").first.wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)


def test_under_attack_a_new_address_finishes_signing_in_with_the_emailed_link(page, api, smtp):
    email = fresh_email()
    signup(api, email)
    for _ in range(3):  # failures from anywhere: the account is under attack
        wrong = api.post("/api/auth/login", json={"email": email, "password": "a wrong guess"})
        assert wrong.status_code == 401

    page.goto("/signin")
    sign_in(page, email, PASSWORD)  # this browser's address never signed in to it
    expect(page.get_by_role("alert")).to_contain_text("a link to finish signing in")
    wait_until(lambda: bool(sign_in_links(smtp, email)))
    link = sign_in_links(smtp, email)[-1]
    page.goto(link)
    assert "#" not in page.url
    page.get_by_role("button", name="Finish signing in").click()
    page.wait_for_url("**/account/api-keys")
    expect(page.get_by_text("0 of 10 active keys")).to_be_visible()

    # Spent: the same link a second time says so.
    page.goto(link)
    page.get_by_role("button", name="Finish signing in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "This sign-in link is invalid, has expired or was used already. Sign in again."
    )


def sign_in_links(smtp: SmtpServer, email: str) -> list[str]:
    return smtp.links(email, subject="Finish signing in", page="/confirm-sign-in")
