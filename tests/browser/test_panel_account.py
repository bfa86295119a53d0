"""Account settings beyond the basics, in a real Chromium against a real
``paradarum serve``: key expiry and restrictions, rolling, use charts, keys found in
public, the security log's names and groups, the password, and the phone top bar."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from playwright.sync_api import expect

from paradarum_client.durations import end_of_day
from tests.browser.harness import (
    KEY_PATTERN,
    PHONE,
    add_usage,
    fresh_email,
    open_section,
    revoke_as_leaked,
    sign_in,
    sign_up,
    visible_text_and_values,
)
from tests.support import PASSWORD, activate_zone, bearer, create_key, new_account

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LEAK_URL = "https://github.com/example/site/blob/main/deploy.sh"
DATE = re.compile(r"\w{3} \d{1,2}, \d{4}")


def session_token(page) -> str:
    return page.evaluate("JSON.parse(sessionStorage.getItem('paradarum.session')).token")


def row_of(page, key):
    return page.locator(f'#keys-body tr[data-key-id="{key["id"]}"]')


def rows_named(page, name):
    return page.locator("#keys-body tr[data-key-id]").filter(
        has=page.locator(".key-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def notice_of(page, key):
    return page.locator(f'#keys-body tr[data-notice-for="{key["id"]}"]')


def sign_in_fresh(page, api, key_names=()):
    """A fresh account with keys made through the API, signed in to the panel."""
    email = fresh_email()
    token = new_account(api, email)
    keys = [create_key(api, token, name) for name in key_names]
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    return email, token, keys


def list_keys(api, token):
    return api.get("/api/account/apikeys", headers=bearer(token)).json()["data"]


# -- expiry and restrictions ------------------------------------------------------------


def test_a_key_created_with_expiry_and_restrictions_shows_them_in_its_row(page, api, server_env):
    email = fresh_email()
    token = new_account(api, email)
    host = f"www.site-{uuid.uuid4().hex[:8]}.example.com"
    activate_zone(server_env, email, host)
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")

    page.get_by_label("Name", exact=True).fill("WordPress purge plugin")
    page.get_by_label("Expiration").select_option(label="In 30 days")
    page.locator("#restrictions summary").click()
    page.get_by_label("Purge only").check()
    page.get_by_label("Allowed addresses").fill("203.0.113.0/24\n2001:db8::/32")
    page.get_by_role("checkbox", name=host).check()
    page.get_by_role("button", name="Generate").click()
    dialog = page.get_by_role("dialog", name="Your new API key")
    assert KEY_PATTERN.match(dialog.get_by_role("textbox", name="API key").input_value())
    dialog.get_by_role("button", name="Done").click()

    [key] = list_keys(api, token)
    assert key["permissions"] == "purge"
    assert key["allowedCidrs"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert len(key["zoneIds"]) == 1
    expires = datetime.fromisoformat(key["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)

    row = row_of(page, key)
    expect(row.locator("td[data-label='Expires']")).to_contain_text("Expires in 30 days")
    expect(row.locator("td[data-label='Expires'] .sub")).to_have_text(DATE)
    restrictions = row.get_by_role("list", name="Restrictions")
    expect(restrictions.get_by_role("listitem")).to_have_text(
        ["Purge only", "From 203.0.113.0/24, 2001:db8::/32", f"Zone {host}"]
    )
    expect(row.locator("td[data-label='Status']")).to_have_text("Active")
    # The form is back to its defaults for the next key.
    expect(page.get_by_label("Expiration")).to_have_value("never")
    expect(page.get_by_label("Purge only")).not_to_be_checked()


@pytest.fixture
def far_west_page(browser, server, problems):
    """A browser whose clock is in a time zone far from UTC (UTC-10)."""
    context = browser.new_context(base_url=server.base_url, timezone_id="Pacific/Honolulu")
    tab = context.new_page()
    problems.watch(tab)
    yield tab
    context.close()
    assert problems.errors == [] and problems.csp == [] and problems.dialogs == []


def test_a_key_can_expire_on_a_chosen_date_which_is_a_utc_day(far_west_page, api):
    page = far_west_page
    _, token, _ = sign_in_fresh(page, api)
    page.get_by_label("Name", exact=True).fill("Campaign site")
    page.get_by_label("Expiration").select_option(label="On a date…")
    date_field = page.get_by_label("Last day it works")
    expect(date_field).to_be_focused()
    last_day = (datetime.now(UTC) + timedelta(days=10)).date()
    date_field.fill(last_day.isoformat())
    page.get_by_role("button", name="Generate").click()
    page.get_by_role("dialog", name="Your new API key").get_by_role("button", name="Done").click()

    [key] = list_keys(api, token)
    expires = datetime.fromisoformat(key["expiresAt"].replace("Z", "+00:00"))
    # Through the whole chosen day, UTC, whatever the browser's time zone: as in the CLI.
    assert expires == datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
    assert expires == end_of_day(last_day)
    expect(row_of(page, key)).to_contain_text(re.compile(r"Expires in 1[01] days"))
    expect(page.get_by_label("Last day it works")).to_be_hidden()


def test_a_restriction_the_api_refuses_shows_its_sentence_under_the_field(page, api):
    sign_in_fresh(page, api)
    page.get_by_label("Name", exact=True).fill("Office")
    page.locator("#restrictions summary").click()
    page.get_by_label("Allowed addresses").fill("203.0.113.0/24\nnot-a-network")
    page.locator("#restrictions summary").click()  # closed again: the error opens it
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#key-cidrs-error")).to_have_text(
        "'not-a-network' is not an IPv4 or IPv6 address or network."
    )
    field = page.get_by_label("Allowed addresses")
    expect(field).to_be_visible()
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_expired_and_expiring_keys_say_so_at_a_glance(page, api, server_env):
    email = fresh_email()
    token = new_account(api, email)
    soon = api.post(
        "/api/account/apikeys",
        json={
            "name": "Soon",
            "expiresAt": (datetime.now(UTC) + timedelta(days=6, hours=1)).isoformat(),
        },
        headers=bearer(token),
    ).json()["data"]
    never = create_key(api, token, "Forever")
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    expect(row_of(page, soon).locator("td[data-label='Expires']")).to_contain_text(
        "Expires in 6 days"
    )
    expect(row_of(page, soon).locator(".expiry-soon")).to_be_visible()
    expect(row_of(page, never).locator("td[data-label='Expires']")).to_have_text("Never")

    # A key whose moment has passed: "Expired", not active, no actions.
    past = api.post(
        "/api/account/apikeys",
        json={"name": "Past", "expiresAt": (datetime.now(UTC) + timedelta(seconds=2)).isoformat()},
        headers=bearer(token),
    ).json()["data"]
    page.wait_for_timeout(2500)
    page.reload()
    row = row_of(page, past)
    expect(row.locator("td[data-label='Expires']")).to_contain_text("Expired")
    expect(row.locator("td[data-label='Status']")).to_have_text("Expired")
    expect(row.get_by_role("button", name="Roll Past")).to_have_count(0)


# -- roll -------------------------------------------------------------------------------


def test_roll_asks_for_a_grace_period_then_shows_the_new_key_once(page, api):
    _, token, [old] = sign_in_fresh(page, api, ["Deploy script"])
    roll = row_of(page, old).get_by_role("button", name="Roll Deploy script")
    roll.click()
    ask = page.get_by_role("dialog", name="Roll “Deploy script”?")
    expect(ask).to_contain_text(old["keyPrefix"] + "…")
    expect(ask.get_by_role("button", name="Cancel")).to_be_focused()
    expect(ask.get_by_role("radio", name="In 1 hour")).to_be_checked()
    for choice in ("Now", "In 1 day", "In 7 days"):
        expect(ask.get_by_role("radio", name=choice)).to_be_enabled()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(roll).to_be_focused()

    roll.click()
    ask.get_by_role("radio", name="In 1 day").check()
    ask.get_by_role("button", name="Roll key").click()
    shown = page.get_by_role("dialog", name="Your new API key")
    raw = shown.get_by_role("textbox", name="API key").input_value()
    assert KEY_PATTERN.match(raw)
    expect(shown).to_contain_text("will not be shown again")
    expect(shown).to_contain_text(f"It replaces {old['keyPrefix']}…, which stops working in 1 day.")
    expect(shown.get_by_role("button", name="Copy")).to_be_focused()
    shown.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == raw
    shown.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert raw not in visible_text_and_values(page)

    # Two keys of that name now: the new one, and the old one until the grace ends.
    expect(rows_named(page, "Deploy script")).to_have_count(2)
    old_row = row_of(page, old)
    expect(old_row.locator("td[data-label='Expires']")).to_contain_text("Expires in 24 hours")
    expect(old_row.locator("td[data-label='Status'] .badge")).to_have_text("Active")
    new = next(key for key in list_keys(api, token) if key["replaces"] == old["id"])
    expect(row_of(page, new).locator("td[data-label='Expires']")).to_have_text("Never")
    # The old row, still working, names what replaced it.
    expect(old_row.locator("td[data-label='Status']")).to_contain_text(
        f"Replaced by {new['keyPrefix']}…"
    )
    assert api.get("/api/account", headers=bearer(raw)).status_code == 200
    open_section(page, "Security log")
    expect(page.locator("#log-body tr", has_text="API key rolled")).to_be_visible()
    page.go_back()  # the back button returns to the keys
    page.wait_for_url("**/account/api-keys")

    # Rolled with no grace: the old key is revoked at once, and says by what.
    row_of(page, new).get_by_role("button", name="Roll Deploy script").click()
    page.get_by_role("radio", name="Now").check()
    page.get_by_role("button", name="Roll key").click()
    expect(page.get_by_role("dialog", name="Your new API key")).to_contain_text(
        f"It replaces {new['keyPrefix']}…, which has been revoked."
    )
    page.get_by_role("button", name="Done").click()
    status = row_of(page, new).locator("td[data-label='Status']")
    expect(status).to_contain_text("Revoked")
    expect(status).to_contain_text("Rolled: replaced by pdm_")


def test_at_the_key_limit_a_roll_can_only_stop_the_old_key_now(page, api):
    sign_in_fresh(page, api, [f"site {number}" for number in range(10)])
    expect(page.locator("#key-counter")).to_have_text("10 of 10 active keys")
    rows_named(page, "site 4").get_by_role("button", name="Roll site 4").click()
    ask = page.get_by_role("dialog", name="Roll “site 4”?")
    expect(ask.get_by_role("radio", name="Now")).to_be_checked()
    for choice in ("In 1 hour", "In 1 day", "In 7 days"):
        expect(ask.get_by_role("radio", name=choice)).to_be_disabled()
    expect(ask).to_contain_text("it can only stop now")
    ask.get_by_role("button", name="Roll key").click()
    page.get_by_role("dialog", name="Your new API key").get_by_role("button", name="Done").click()
    expect(page.locator("#key-counter")).to_have_text("10 of 10 active keys")


# -- use charts -------------------------------------------------------------------------


def test_each_key_has_a_30_day_use_chart_whose_text_states_the_totals(page, api, server_env):
    email = fresh_email()
    token = new_account(api, email)
    busy = create_key(api, token, "Busy plugin")
    idle = create_key(api, token, "Forgotten script")
    today = datetime.now(UTC).date()
    add_usage(
        server_env,
        busy["id"],
        {today: (1200, 2), today - timedelta(days=3): (4, 0), today - timedelta(days=40): (99, 9)},
    )
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")

    chart = row_of(page, busy).get_by_role("img")
    expect(chart).to_have_accessible_name("Last 30 days: 1,204 requests, 2 refused")
    assert chart.evaluate("(e) => e.namespaceURI") == "http://www.w3.org/2000/svg"
    expect(chart.locator("g")).to_have_count(30)  # one bar a day; older days left out
    expect(chart.locator(".bar-refused")).to_have_count(1)
    expect(row_of(page, busy).locator(".usage-total")).to_have_text("1,204 requests · 2 refused")

    # A scale: the busiest day's count at the top, 0 at the bottom.
    expect(chart.locator("text")).to_have_text(["1.2K", "0"])
    # Each day's numbers on hover and on focus (arrow keys move), the totals again after.
    total = row_of(page, busy).locator(".usage-total")
    chart.focus()
    expect(total).to_have_text(re.compile(r"^\w{3} \d{1,2}, \d{4}: 1,200 requests, 2 refused$"))
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(total).to_have_text(re.compile(r": 4 requests$"))
    page.keyboard.press("Home")
    expect(total).to_have_text(re.compile(r": 0 requests$"))
    chart.blur()
    expect(total).to_have_text("1,204 requests · 2 refused")
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    expect(total).to_have_text(re.compile(r": 1,200 requests, 2 refused$"))
    page.mouse.move(0, 0)
    expect(total).to_have_text("1,204 requests · 2 refused")

    # A key made moments ago is not "unused" yet: no warning.
    unused = row_of(page, idle).get_by_role("img")
    expect(unused).to_have_accessible_name("Last 30 days: no requests")
    fresh = row_of(page, idle).locator(".usage-total")
    expect(fresh).to_have_text("No requests yet")
    expect(fresh).not_to_have_class(re.compile("usage-unused"))

    # Drawn without inline style (the CSP allows none) and from nothing elsewhere.
    assert page.evaluate("document.querySelectorAll('[style]').length") == 0
    assert (
        page.evaluate("document.querySelectorAll('svg image, svg use, svg foreignObject').length")
        == 0
    )


# -- keys found in public ------------------------------------------------------------------


def test_a_key_revoked_as_leaked_says_where_it_was_found_and_what_went_with_it(
    page, api, server_env
):
    email = fresh_email()
    token = new_account(api, email)
    bootstrap = create_key(api, token, "CI bootstrap")
    foothold = api.post(
        "/api/account/apikeys", json={"name": "Preview deploys"}, headers=bearer(bootstrap["key"])
    ).json()["data"]
    mine = create_key(api, token, "Made in the panel")
    revoke_as_leaked(server_env, bootstrap, LEAK_URL, [foothold])
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")

    notice = notice_of(page, bootstrap)
    expect(notice).to_contain_text(f"Revoked automatically — found public at {LEAK_URL}")
    link = notice.get_by_role("link", name=LEAK_URL)
    expect(link).to_have_attribute("href", LEAK_URL)
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(notice).to_contain_text(
        f"Revoked with it, as keys it created: “Preview deploys” {foothold['keyPrefix']}…"
    )
    status = row_of(page, bootstrap).locator("td[data-label='Status']")
    expect(status).to_contain_text("Revoked")
    expect(status).to_contain_text("Found in public")

    expect(notice_of(page, foothold)).to_contain_text(
        f"Revoked automatically with “CI bootstrap” {bootstrap['keyPrefix']}…, "
        "the key that created it"
    )
    expect(notice_of(page, mine)).to_have_count(0)
    expect(row_of(page, mine).locator("td[data-label='Status']")).to_have_text("Active")

    open_section(page, "Security log")
    event = page.locator("#log-body tr", has_text="API key revoked automatically: found in public")
    expect(event).to_have_class(re.compile("is-warning"))
    expect(event).to_contain_text(f"Key “CI bootstrap” {bootstrap['keyPrefix']}…")
    expect(event.locator(".detail")).to_have_text(
        f"Found public at {LEAK_URL}. Revoked with it: {foothold['keyPrefix']}."
    )


def test_a_leak_location_that_is_not_a_web_address_is_text_not_a_link(page, api, server_env):
    email = fresh_email()
    token = new_account(api, email)
    key = create_key(api, token, "Pasted somewhere")
    revoke_as_leaked(server_env, key, "javascript:alert(1)", [])
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    notice = notice_of(page, key)
    expect(notice).to_contain_text("Revoked automatically — found public at javascript:alert(1)")
    expect(notice.get_by_role("link")).to_have_count(0)


# -- what people tripped over ------------------------------------------------------------


def test_revoked_rows_show_the_revoke_date_without_hovering(page, api):
    _, token, [key] = sign_in_fresh(page, api, ["Old site"])
    api.delete(f"/api/account/apikeys/{key['id']}", headers=bearer(token))
    page.reload()
    when = row_of(page, key).locator("td[data-label='Status'] time")
    expect(when).to_be_visible()
    expect(when).to_have_text(DATE)


def test_the_key_name_placeholder_reads_as_an_example_in_a_lighter_color(page, api):
    sign_in_fresh(page, api)
    field = page.get_by_label("Name", exact=True)
    expect(field).to_have_attribute("placeholder", re.compile(r"^e\.g\. "))
    colors = field.evaluate(
        """(e) => [getComputedStyle(e, '::placeholder').color, getComputedStyle(e).color]"""
    )

    def lightness(rgb: str) -> float:
        red, green, blue = (int(part) for part in re.findall(r"\d+", rgb)[:3])
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    placeholder, typed = colors
    assert lightness(placeholder) > lightness(typed) + 100, colors


def test_security_log_names_keys_shows_details_and_groups_repeats(page, api):
    email = fresh_email()
    token = new_account(api, email)
    key = create_key(api, token, "Deploy script")
    api.post(
        f"/api/account/apikeys/{key['id']}/roll",
        json={"gracePeriodMinutes": 60},
        headers=bearer(token),
    )
    for _ in range(3):
        wrong = {"email": email, "password": "not the password at all"}
        assert api.post("/api/auth/login", json=wrong).status_code == 401
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    open_section(page, "Security log")

    rows = page.locator("#log-body tr")
    failed = rows.filter(has_text="Failed sign-in attempt")
    expect(failed).to_have_count(1)
    expect(failed.locator("td[data-label='Event']")).to_have_text("Failed sign-in attempt ×3")
    expect(failed.locator(".since")).to_contain_text("first")

    rolled = rows.filter(has_text="API key rolled")
    expect(rolled).to_contain_text(f"Key “Deploy script” {key['keyPrefix']}…")
    expect(rolled.locator(".detail")).to_contain_text("Replaced by pdm_")
    created = rows.filter(has_text="API key created")
    expect(created).to_have_count(2)  # the key and its replacement: different keys


def test_security_log_groups_long_runs_and_falls_back_to_the_prefix(page):
    entry = {
        "event": "session.login_failed",
        "occurredAt": "2026-11-27T09:14:03.512Z",
        "actorType": "anonymous",
        "actorId": None,
        "keyId": None,
        "keyPrefix": None,
        "clientAddress": "198.51.100.4",
        "userAgent": None,
        "detail": None,
    }
    refused = {
        **entry,
        "event": "key.refused",
        "actorType": "key",
        "actorId": "pdm_Gone",
        "keyId": 999,
        "keyPrefix": "pdm_Gone",
        "detail": "Refused: not from an allowed address.",
    }
    data = [{**refused, "id": 100}] + [{**entry, "id": 50 - n} for n in range(37)]
    page.route(
        "**/api/account/audit?*",
        lambda route: route.fulfill(json={"succeeded": True, "message": "Log", "data": data}),
    )
    sign_up(page, fresh_email())
    open_section(page, "Security log")
    rows = page.locator("#log-body tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Key pdm_Gone…")
    expect(rows.nth(0).locator(".detail")).to_have_text("Refused: not from an allowed address.")
    expect(rows.nth(1).locator("td[data-label='Event']")).to_have_text("Failed sign-in attempt ×37")


def test_changing_the_password_ends_every_session_then_the_new_one_signs_in(page, api):
    email = fresh_email()
    sign_up(page, email)
    old_session = session_token(page)
    open_section(page, "Security")
    form = page.locator("#password-form")

    page.get_by_label("Current password").fill("not the password at all")
    page.get_by_label("New password").fill("a new passphrase for paradarum")
    form.get_by_role("button", name="Change password").click()
    expect(page.locator("#current-password-error")).to_have_text("The current password is wrong.")
    expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill("short")
    form.get_by_role("button", name="Change password").click()
    expect(page.locator("#new-password-error")).not_to_be_empty()
    expect(page.get_by_label("New password")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("New password").fill("a new passphrase for paradarum")
    form.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/signin?reason=password-changed")
    expect(page.locator("#notice")).to_have_text(
        "Your password has been changed and every session has been signed out. "
        "Sign in with your new password."
    )
    assert page.evaluate("sessionStorage.getItem('paradarum.session')") is None
    assert api.get("/api/account", headers=bearer(old_session)).status_code == 401

    sign_in(page, email)  # the old password
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(page, email, "a new passphrase for paradarum")
    page.wait_for_url("**/account/api-keys")
    expect(page.locator("#account-email")).to_have_text(email)


def test_with_sign_up_on_the_sign_in_page_offers_an_account(page):
    page.goto("/signin")
    expect(page.get_by_role("link", name="Create an account")).to_be_visible()


def test_on_a_phone_the_top_bar_shows_the_whole_email_and_nothing_scrolls_sideways(
    browser, server, api, server_env
):
    email = f"panel-{uuid.uuid4().hex}@example.com"  # longer than most
    token = new_account(api, email)
    bootstrap = create_key(api, token, "A rather long key name for the staging WordPress site")
    api.post(
        "/api/account/apikeys",
        json={
            "name": "Restricted",
            "expiresAt": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
            "permissions": "purge",
            "allowedCidrs": ["203.0.113.0/24", "2001:db8:1234:5678::/64"],
        },
        headers=bearer(token),
    )
    revoke_as_leaked(server_env, bootstrap, LEAK_URL + "?" + "x" * 80, [])
    long_host = f"{'a' * 40}.{uuid.uuid4().hex}.example.com"  # a pending zone's record
    assert (
        api.post(
            "/api/account/zones", json={"hostname": long_host}, headers=bearer(token)
        ).status_code
        == 201
    )
    context = browser.new_context(base_url=server.base_url, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto("/account")
        sign_in(page, email)
        page.wait_for_url("**/account/api-keys")
        shown = page.locator("#account-email")
        expect(shown).to_have_text(email)
        expect(page.locator("#keys-body tr[data-key-id]")).to_have_count(2)
        expect(page.locator(".usage svg")).to_have_count(2)
        page.locator("#restrictions summary").click()  # zone choices, long names included
        expect(page.get_by_role("checkbox", name=long_host)).to_be_visible()
        box = shown.evaluate(
            """(e) => { const r = e.getBoundingClientRect();
                 return {left: r.left, right: r.right, scroll: e.scrollWidth, client: e.clientWidth,
                         overflow: getComputedStyle(e).textOverflow}; }"""
        )
        assert box["scroll"] <= box["client"], box
        assert box["left"] >= 0 and box["right"] <= PHONE["width"], box
        assert box["overflow"] != "ellipsis", box
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the keys scroll sideways: {width}px"
        open_section(page, "Zones")
        expect(page.locator("#zones-body .record")).to_have_count(1)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the zones scroll sideways: {width}px"
    finally:
        context.close()
