"""Account settings as a person finds their way around it, in a real Chromium against a
real ``paradarum serve``: one URL per section, the navigation, links, back and forward,
sign-in that returns to the section asked for, and a 360 px phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from paradarum.web.panel.routes import SECTIONS
from tests.browser.harness import PHONE, fresh_email, open_section, sign_in, sign_up
from tests.support import new_account

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def nav(page):
    return page.get_by_role("navigation", name="Account settings")


def test_each_section_has_its_own_url_and_back_and_forward_follow_them(page, server):
    sign_up(page, fresh_email())
    expect(page).to_have_title("API keys · Account settings · Paradarum")
    expect(nav(page).get_by_role("link")).to_have_text([section.label for section in SECTIONS])
    expect(nav(page).get_by_role("link", name="API keys")).to_have_attribute("aria-current", "page")

    open_section(page, "Zones")
    expect(page).to_have_title("Zones · Account settings · Paradarum")
    expect(page.get_by_role("heading", name="Zones", exact=True)).to_be_visible()
    expect(page.locator("#keys-table")).to_have_count(0)  # one section a page
    expect(nav(page).get_by_role("link", name="API keys")).not_to_have_attribute(
        "aria-current", "page"
    )

    open_section(page, "Security log")
    expect(page.locator("#log-body tr", has_text="Account created")).to_be_visible()

    page.go_back()
    page.wait_for_url("**/account/zones")
    expect(page.locator("#zones-empty")).to_be_visible()
    page.go_back()
    page.wait_for_url("**/account/api-keys")
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    page.go_forward()
    page.wait_for_url("**/account/zones")
    page.reload()
    expect(nav(page).get_by_role("link", name="Zones")).to_have_attribute("aria-current", "page")

    # A link to a section works from anywhere: the address bar, another page.
    page.goto(f"{server.base_url}/account/security")
    expect(page.locator("#password-form")).to_be_visible()
    page.get_by_role("link", name="Paradarum").click()
    page.wait_for_url("**/account/api-keys")


def test_a_signed_out_visit_to_a_section_signs_in_and_returns_to_it(page, api):
    email = fresh_email()
    new_account(api, email)
    page.goto("/account/security-log")
    page.wait_for_url("**/signin?next=%2Faccount%2Fsecurity-log")
    sign_in(page, email)
    page.wait_for_url("**/account/security-log")
    expect(page.locator("#log-body tr", has_text="Signed in").first).to_be_visible()


def test_sign_in_goes_nowhere_but_a_panel_page(page, api):
    email = fresh_email()
    new_account(api, email)
    page.goto("/signin?next=%2F%2Fevil.example%2Faccount")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")


def test_on_a_phone_every_section_is_in_reach_and_nothing_scrolls_sideways(browser, server):
    context = browser.new_context(base_url=server.base_url, viewport=PHONE)
    try:
        page = context.new_page()
        sign_up(page, fresh_email())
        for section in SECTIONS:
            link = nav(page).get_by_role("link", name=section.label, exact=True)
            link.scroll_into_view_if_needed()
            expect(link).to_be_in_viewport()
            open_section(page, section.label)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{section.path} scrolls sideways: {width}px"
            # The tabs take one row at the top, not the phone's whole first screen.
            height = nav(page).evaluate("(e) => e.getBoundingClientRect().height")
            assert height < PHONE["height"] / 3, height
    finally:
        context.close()


def test_a_mistyped_address_is_a_page_not_found_with_a_way_home(page, server):
    response = page.goto("/account/api-kyes")
    assert response is not None and response.status == 404
    expect(page).to_have_title("Page not found · Paradarum")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Go to Account settings").click()
    page.wait_for_url("**/signin?next=%2Faccount%2Fapi-keys")
    # The API's own 404 stays JSON, even in a browser.
    api = page.goto(f"{server.base_url}/api/acount")
    assert api is not None and api.status == 404
    assert api.headers["content-type"].startswith("application/json")
