"""Teams in a real Chromium against a real ``paradarum serve`` whose invitations go
through a real SMTP server of the test's own: an owner invites a colleague from
Account settings → Members, the colleague follows the emailed link, creates a sign-in,
accepts and works on the account (the switcher names it), and is removed: their very
next request sends them to sign in. At desktop and phone (360 px) widths."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.harness import DESKTOP, PHONE, fresh_email, sign_up
from tests.mail import SmtpServer
from tests.support import PASSWORD, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_overrides(smtp: SmtpServer, server_port: int) -> dict[str, str]:
    return {
        "PARADARUM_SMTP_URL": smtp.url(),
        "PARADARUM_EMAIL_VERIFICATION": "off",
        # The emailed links lead to this very server's panel.
        "PARADARUM_PUBLIC_URL": f"http://127.0.0.1:{server_port}",
    }


def invitation_links(smtp: SmtpServer, email: str) -> list[str]:
    return smtp.links(email, subject="invited", page="/invitations")


def fits(page) -> bool:
    """Nothing wider than the viewport (no sideways scrolling)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_invite_accept_switch_and_remove_a_colleague(browser, server, smtp, page, problems):
    owner_email = fresh_email()
    sign_up(page, owner_email)
    page.get_by_role("link", name="Members").click()
    page.wait_for_url("**/account/members")
    expect(page.locator("#my-role")).to_have_text("You are owner")
    expect(page.locator("#members-body")).to_contain_text(owner_email)

    colleague = fresh_email()
    page.get_by_label("Email", exact=True).fill(colleague)
    page.get_by_label("Role", exact=True).select_option("purger")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#invitations-body")).to_contain_text(colleague)
    expect(page.locator("#invitations-body")).to_contain_text("purger")

    wait_until(lambda: invitation_links(smtp, colleague), timeout=30)
    link = invitation_links(smtp, colleague)[0]
    assert link.startswith(f"{server.base_url}/invitations#token=")

    # The colleague, in a browser of their own, at a phone's width.
    other = browser.new_context(base_url=server.base_url, viewport=PHONE)
    other.set_default_timeout(10_000)
    them = other.new_page()
    problems.watch(them)
    try:
        them.goto(link)
        assert them.url == f"{server.base_url}/invitations"  # the token left the address bar
        expect(them.locator("#invitation-signed-out")).to_be_visible()
        assert fits(them)
        them.get_by_role("link", name="Create your sign-in").click()
        them.wait_for_url(re.compile(r".*/signup\?next=.*invitations"))
        them.get_by_label("Email").fill(colleague)
        them.get_by_label("Password").fill(PASSWORD)
        them.get_by_role("button", name="Create account").click()
        them.wait_for_url("**/invitations")
        expect(them.locator("#invitation-email")).to_have_text(colleague)
        them.get_by_role("button", name="Accept the invitation").click()
        expect(them.locator("#invitation-done-message")).to_have_text(
            f"You joined {owner_email} as purger."
        )
        them.get_by_role("link", name="Go to the account").click()
        them.wait_for_url("**/account/api-keys")
        switcher = them.get_by_label("Account", exact=True)
        expect(switcher).to_be_visible()
        expect(switcher.locator("option:checked")).to_have_text(f"{owner_email} (purger)")
        assert fits(them)

        # Switching to their own account and back.
        # Each choice asks for a session of that account and reloads the page: wait for
        # the reload, or the next step races it.
        with them.expect_navigation():
            switcher.select_option(label=f"{colleague} (owner)")
        expect(them.get_by_label("Account", exact=True).locator("option:checked")).to_have_text(
            f"{colleague} (owner)"
        )
        with them.expect_navigation():
            them.get_by_label("Account", exact=True).select_option(label=f"{owner_email} (purger)")
        expect(them.get_by_label("Account", exact=True).locator("option:checked")).to_have_text(
            f"{owner_email} (purger)"
        )
        them.goto("/account/members")
        expect(them.locator("#my-role")).to_have_text("You are purger")
        expect(them.locator("#invite-form")).to_be_hidden()
        expect(them.get_by_role("button", name="Leave")).to_be_visible()
        assert fits(them)

        # A purge-only key of theirs, made with their session as a script would.
        token = them.evaluate("JSON.parse(sessionStorage.getItem('paradarum.session')).token")
        made = httpx.post(
            f"{server.base_url}/api/account/apikeys",
            json={"name": "CI purge", "permissions": "purge"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201, made.text

        # The owner sees them, and removes them (revoking their keys).
        page.reload()
        row = page.locator("#members-body tr", has_text=colleague)
        expect(row).to_contain_text("purger")
        row.get_by_role("button", name="Remove").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"Remove {colleague}?")
        dialog.get_by_label("Revoke them now").check()
        dialog.get_by_role("button", name="Remove").click()
        expect(page.locator("#members-body")).not_to_contain_text(colleague)

        # Their very next request: signed out of that account.
        them.reload()
        them.wait_for_url(re.compile(r".*/signin\?reason=expired.*"))
        # The owner's key list names who made the key, and why it ended.
        page.get_by_role("link", name="API keys").click()
        key_row = page.locator("#keys-body tr", has_text="CI purge")
        expect(key_row).to_contain_text(f"by {colleague}")
        expect(key_row).to_contain_text("Its member was demoted or removed")
    finally:
        other.close()
    page.set_viewport_size(DESKTOP)
