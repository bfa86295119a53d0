"""A server that takes no sign-ups (``PARADARUM_SIGNUP_ENABLED=false``): the panel
offers no account creation instead of refusing a filled-in form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server_overrides() -> dict[str, str]:
    return {"PARADARUM_SIGNUP_ENABLED": "false"}


def test_with_sign_up_off_sign_in_offers_no_account_creation(page, api):
    assert (
        api.post(
            "/api/auth/signup", json={"email": "a@example.com", "password": "x" * 12}
        ).status_code
        == 403
    )
    page.goto("/signin")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("link", name="Create an account")).to_have_count(0)
    expect(page.get_by_text("New to Paradarum?")).to_be_hidden()


def test_with_sign_up_off_the_sign_up_page_says_so_instead_of_a_form(page):
    page.goto("/signup")
    expect(page.get_by_text("Sign-up is turned off on this server.")).to_be_visible()
    expect(page.get_by_role("button", name="Create account")).to_have_count(0)
    expect(page.get_by_label("Email")).to_be_hidden()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
