"""The panel in a real Chromium against a real ``paradarum serve``: what a person sees
and does, from sign-up to a revoked key."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.harness import (
    KEY_PATTERN,
    PHONE,
    fresh_email,
    generate_key,
    open_section,
    sign_in,
    sign_up,
    visible_text_and_values,
)
from tests.support import bearer, create_key, new_account

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UTC_TITLE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
XSS_NAME = "<img src=x onerror=alert(1)>"


def key_row(page, name):
    return page.locator("#keys-body tr", has_text=name)


def counter(page):
    return page.locator("#key-counter")


def signed_in_with_keys(page, api, names):
    """A fresh account given keys through the API, then signed in to the panel from
    /account (so through sign-in and back). Returns the account's session token."""
    email = fresh_email()
    token = new_account(api, email)
    for name in names:
        create_key(api, token, name)
    page.goto("/account")
    page.wait_for_url("**/signin?next=%2Faccount%2Fapi-keys")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    return token


def test_whole_journey_sign_up_sign_in_create_copy_use_revoke(page, api):
    email = fresh_email()
    sign_up(page, email)
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    expect(page.locator("#account-email")).to_have_text(email)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin?reason=signed-out")
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    expect(counter(page)).to_have_text("0 of 10 active keys")

    raw = generate_key(page, "WordPress purge plugin")
    assert KEY_PATTERN.match(raw), raw
    dialog = page.get_by_role("dialog", name="Your new API key")
    # No empty line between the key and the warning below it.
    gap = page.evaluate(
        """() => document.getElementById("new-key-warning").getBoundingClientRect().top
                 - document.querySelector(".key-field").getBoundingClientRect().bottom"""
    )
    assert gap <= 16, gap
    expect(dialog).to_contain_text("will not be shown again")
    expect(dialog).to_contain_text("WordPress purge plugin")
    expect(dialog.get_by_role("textbox", name="API key")).to_have_css(
        "font-family", re.compile("mono")
    )
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw

    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    assert raw not in visible_text_and_values(page)
    row = key_row(page, "WordPress purge plugin")
    expect(row.locator("td").first).to_have_text("WordPress purge plugin")
    expect(row).to_contain_text(raw[:8] + "…")
    expect(row).to_contain_text("Never")
    expect(row).to_contain_text("Active")
    expect(counter(page)).to_have_text("1 of 10 active keys")

    used = api.get("/api/account", headers=bearer(raw))
    assert used.status_code == 200
    assert used.json()["data"]["email"] == email

    page.reload()
    last_used = key_row(page, "WordPress purge plugin").locator("td[data-label='Last used']")
    expect(last_used.locator("time")).to_have_text("just now")
    assert UTC_TITLE.match(last_used.locator("time").get_attribute("title"))
    expect(last_used).to_contain_text("from 127.0.0.1")
    expect(last_used).to_contain_text("python-httpx")
    assert raw not in visible_text_and_values(page)

    key_row(page, "WordPress purge plugin").get_by_role(
        "button", name="Revoke WordPress purge plugin"
    ).click()
    confirm = page.get_by_role("dialog", name="Revoke “WordPress purge plugin”?")
    expect(confirm).to_contain_text("permanent")
    expect(confirm).to_contain_text("start failing immediately")
    expect(confirm).to_contain_text(raw[:8] + "…")
    confirm.get_by_role("button", name="Revoke key").click()
    expect(confirm).to_be_hidden()
    row = key_row(page, "WordPress purge plugin")
    expect(row).to_contain_text("Revoked")
    expect(row).to_have_class(re.compile("is-revoked"))
    expect(row.get_by_role("button")).to_have_count(0)
    expect(counter(page)).to_have_text("0 of 10 active keys")
    expect(page.locator("#keys-title")).to_be_focused()

    assert api.get("/api/account", headers=bearer(raw)).status_code == 401


def test_the_key_is_gone_after_done_after_reload_and_after_leaving_with_the_dialog_open(
    page, server
):
    sign_up(page, fresh_email())
    first = generate_key(page, "first")
    page.get_by_role("button", name="Done").click()
    assert first not in visible_text_and_values(page)
    page.reload()
    expect(key_row(page, "first")).to_be_visible()
    assert first not in visible_text_and_values(page)

    # Leaving while the dialog still shows a key, then coming back, shows no key.
    second = generate_key(page, "second")
    page.goto(server.base_url + "/api/health")
    page.go_back()
    page.wait_for_url("**/account/api-keys")
    expect(key_row(page, "second")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    text = visible_text_and_values(page)
    assert first not in text and second not in text


def test_at_ten_active_keys_the_new_key_control_is_disabled_and_says_why(page, api):
    signed_in_with_keys(page, api, [f"site {number}" for number in range(10)])
    expect(counter(page)).to_have_text("10 of 10 active keys")
    expect(page.get_by_role("button", name="Generate")).to_be_disabled()
    expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    note = page.locator("#limit-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("10 active keys, the most an account can have")
    expect(note).to_contain_text("Revoke a key")

    key_row(page, "site 3").get_by_role("button", name="Revoke site 3").click()
    page.get_by_role("button", name="Revoke key").click()
    expect(counter(page)).to_have_text("9 of 10 active keys")
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    expect(note).to_be_hidden()


def test_a_key_named_like_html_renders_literally_and_runs_nothing(page, problems):
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_up(page, fresh_email())
    generate_key(page, XSS_NAME)
    dialog = page.get_by_role("dialog", name="Your new API key")
    expect(dialog.locator("#new-key-name")).to_have_text(XSS_NAME)
    dialog.get_by_role("button", name="Done").click()

    row = key_row(page, XSS_NAME)
    expect(row.locator("td").first).to_have_text(XSS_NAME)
    row.get_by_role("button", name=f"Revoke {XSS_NAME}").click()
    expect(page.locator("#revoke-name")).to_have_text(XSS_NAME)
    page.keyboard.press("Escape")
    page.reload()
    expect(key_row(page, XSS_NAME).locator("td").first).to_have_text(XSS_NAME)

    assert page.locator("main img, dialog img").count() == 0
    assert not [url for url in requests if url.endswith("/x")]
    assert problems.dialogs == []


def test_signed_out_visit_to_account_goes_to_sign_in_and_back(page, api):
    email = fresh_email()
    new_account(api, email)
    page.goto("/account")
    page.wait_for_url("**/signin?next=%2Faccount%2Fapi-keys")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    expect(page.locator("#account-email")).to_have_text(email)
    page.goto("/signin")  # signed in already: straight on
    page.wait_for_url("**/account/api-keys")


def test_an_expired_session_goes_back_to_sign_in_then_back(page, api):
    email = fresh_email()
    sign_up(page, email)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('paradarum.session')).token")
    assert api.post("/api/auth/logout", headers=bearer(token)).status_code == 200

    page.get_by_label("Name", exact=True).fill("after expiry")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url("**/signin?reason=expired&next=%2Faccount%2Fapi-keys")
    expect(page.get_by_text("Your session has expired.")).to_be_visible()
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    expect(page.get_by_text("No API keys yet")).to_be_visible()


def test_api_failures_show_as_inline_human_messages(page, api):
    email = fresh_email()
    new_account(api, email)

    page.goto("/signin")
    sign_in(page, email, "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")

    page.goto("/signup")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#email-error")).to_have_text("Enter a valid email address.")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_have_text("An account with this email already exists.")

    page.goto("/signin")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    page.get_by_label("Name", exact=True).fill("   ")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#key-name-error")).to_have_text("Name must not be empty.")
    expect(page.get_by_label("Name", exact=True)).to_be_focused()
    page.get_by_label("Name", exact=True).fill("x" * 101)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#key-name-error")).to_have_text("Name must be at most 100 characters.")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_dialogs_take_focus_close_with_escape_and_give_it_back(page):
    sign_up(page, fresh_email())
    generate_key(page, "keyboard")
    expect(page.get_by_role("button", name="Copy")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate")).to_be_focused()
    assert "pdm_" not in page.evaluate("document.getElementById('new-key-value').value")

    revoke = key_row(page, "keyboard").get_by_role("button", name="Revoke keyboard")
    revoke.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(revoke).to_be_focused()
    expect(key_row(page, "keyboard")).to_contain_text("Active")


def test_copy_falls_back_to_selecting_the_key(page, context):
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    sign_up(page, fresh_email())
    raw = generate_key(page, "no clipboard API")
    page.get_by_role("button", name="Copy").click()
    field = page.get_by_role("textbox", name="API key")
    expect(field).to_be_focused()
    selected = page.evaluate(
        "(() => { const e = document.getElementById('new-key-value');"
        " return e.value.slice(e.selectionStart, e.selectionEnd); })()"
    )
    assert selected == raw
    expect(page.locator("#copy-status")).not_to_be_empty()


def test_security_log_lists_the_accounts_events(page):
    sign_up(page, fresh_email())
    open_section(page, "Security log")
    section = page.locator("#security-log")
    expect(section.locator("#log-loading")).to_be_hidden()
    expect(section.locator("#log-error")).to_be_hidden()
    expect(section.locator("#log-unavailable")).to_be_hidden()
    expect(section.locator("#log-body tr", has_text="Signed in").first).to_be_visible()


def test_security_log_renders_the_audit_endpoint_and_follows_its_next_link(page):
    older = "/api/account/audit?limit=25&cursor=abc"
    first_page = [
        {
            "id": 3,
            "event": "key.revoked",
            "occurredAt": "2026-11-27T09:14:03.512Z",
            "actorType": "session",
            "actorId": "t-1",
            "keyId": 7,
            "keyPrefix": "pdm_AbCd",
            "clientAddress": "203.0.113.7",
            "userAgent": XSS_NAME,
        },
        {
            "id": 2,
            "event": "session.login_failed",
            "occurredAt": "2026-11-27T09:10:00.000Z",
            "actorType": "anonymous",
            "actorId": None,
            "keyId": None,
            "keyPrefix": None,
            "clientAddress": "198.51.100.4",
            "userAgent": None,
        },
    ]
    second_page = [
        {
            "id": 1,
            "event": "purge.requested",
            "occurredAt": "2026-11-26T08:00:00.000Z",
            "actorType": "key",
            "actorId": "pdm_WxYz",
            "keyId": None,
            "keyPrefix": None,
            "clientAddress": "192.0.2.1",
            "userAgent": "WordPress/6.6",
        }
    ]

    def audit(route):
        if "cursor=" in route.request.url:
            route.fulfill(json={"succeeded": True, "message": "Audit", "data": second_page})
        else:
            route.fulfill(
                json={"succeeded": True, "message": "Audit", "data": first_page},
                headers={"Content-Type": "application/json", "Link": f'<{older}>; rel="next"'},
            )

    page.route("**/api/account/audit?*", audit)
    sign_up(page, fresh_email())
    open_section(page, "Security log")
    rows = page.locator("#log-body tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("API key revoked")
    expect(rows.nth(0)).to_contain_text("pdm_AbCd…")
    expect(rows.nth(0)).to_contain_text("203.0.113.7")
    expect(rows.nth(0).locator(".sub")).to_have_text(XSS_NAME)
    assert UTC_TITLE.match(rows.nth(0).locator("time").get_attribute("title"))
    expect(rows.nth(1)).to_contain_text("Failed sign-in attempt")
    page.get_by_role("button", name="Show older events").click()
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text("Cache purge requested")
    expect(rows.nth(2)).to_contain_text("with API key pdm_WxYz…")
    expect(page.get_by_role("button", name="Show older events")).to_be_hidden()


def test_security_log_404_is_shown_as_unavailable(page):
    page.route(
        "**/api/account/audit?*",
        lambda route: route.fulfill(
            status=404, json={"succeeded": False, "message": "No such endpoint.", "data": None}
        ),
    )
    sign_up(page, fresh_email())
    open_section(page, "Security log")
    expect(page.get_by_text("Security log unavailable")).to_be_visible()
    expect(page.locator("#log-error")).to_be_hidden()
    expect(page.locator("#log-table")).to_be_hidden()


@pytest.mark.parametrize("path", ["/signin", "/signup", "/account"])
def test_pages_fit_a_360px_phone(browser, server, api, path):
    context = browser.new_context(base_url=server.base_url, viewport=PHONE)
    try:
        page = context.new_page()
        if path == "/account":
            signed_in_with_keys(
                page, api, ["A rather long key name for the staging WordPress site"]
            )
            expect(page.locator("#keys-body tr")).to_have_count(1)
        else:
            page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways: {width}px"
    finally:
        context.close()


def test_a_key_refused_at_the_limit_explains_itself_inline(page, api):
    token = signed_in_with_keys(page, api, [f"site {number}" for number in range(9)])
    expect(counter(page)).to_have_text("9 of 10 active keys")
    create_key(api, token, "made elsewhere meanwhile")  # the page does not know yet

    page.get_by_label("Name", exact=True).fill("one too many")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#new-key-form [role=alert]")).to_contain_text(
        "already has 10 active API keys"
    )
    expect(counter(page)).to_have_text("10 of 10 active keys")
    expect(page.get_by_role("button", name="Generate")).to_be_disabled()
    expect(page.get_by_role("dialog")).to_have_count(0)
