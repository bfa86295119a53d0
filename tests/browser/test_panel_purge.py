"""The Purge section in a real Chromium against a real ``paradarum serve`` that delivers
to two stand-in cache nodes of the test's own: URLs checked against the account's zones
while they are typed, tags, everything after a question naming the zones, and the history
following each node's delivery as it happens."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from tests.browser.harness import PHONE, fresh_email, open_section, sign_in, sign_up
from tests.cache import RecordingNode, recording_node
from tests.support import activate_zone, bearer, new_account

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def nodes() -> Iterator[list[RecordingNode]]:
    with ExitStack() as stack:
        yield [stack.enter_context(recording_node()) for _ in range(2)]


@pytest.fixture(scope="module")
def server_overrides(nodes: list[RecordingNode]) -> dict[str, str]:
    return {
        "PARADARUM_CACHE_NODES": ",".join(node.base_url for node in nodes),
        "PARADARUM_PURGE_RETRY_SECONDS": "0.5",
    }


@pytest.fixture
def held(nodes: list[RecordingNode]) -> Iterator[RecordingNode]:
    """node-2, answering nothing until the test releases it."""
    nodes[1].hold()
    try:
        yield nodes[1]
    finally:
        nodes[1].release()


def unique_host(label: str = "www") -> str:
    return f"{label}.site-{uuid.uuid4().hex[:8]}.example.com"


def signed_in_with_zones(page, api, server_env, active, pending=()):
    email = fresh_email()
    token = new_account(api, email)
    for host in active:
        activate_zone(server_env, email, host)
    for host in pending:
        response = api.post("/api/account/zones", json={"hostname": host}, headers=bearer(token))
        assert response.status_code == 201, response.text
    page.goto("/account/purge")
    sign_in(page, email)
    page.wait_for_url("**/account/purge")
    return token


def history(page):
    return page.locator("#purges-body > li")


def test_urls_are_checked_against_the_zones_as_typed_and_each_node_shows_its_delivery(
    page, api, server_env, nodes, held
):
    site, pending, elsewhere = unique_host(), unique_host("shop"), unique_host("other")
    token = signed_in_with_zones(page, api, server_env, [site], [pending])
    field = page.get_by_label("URLs")
    field.fill(
        f"https://{site}/blog/\nhttps://{pending}/cart\nhttps://{elsewhere}/\nwww.example.com/x"
    )
    checks = page.locator("#purge-urls-check li")
    expect(checks).to_have_text(
        [
            f"Line 2: https://{pending}/cart is on {pending}, which is not verified yet "
            "(see Zones).",
            f"Line 3: https://{elsewhere}/ is on {elsewhere}, which is not one of your zones.",
            "Line 4: www.example.com/x is not a full URL: start it with https://.",
        ]
    )
    expect(field).to_have_attribute("aria-invalid", "true")

    field.fill(f"https://{site}/blog/\nhttps://{site.upper()}/about?lang=en")
    expect(checks).to_have_text(["2 URLs. All are on your active zones."])
    expect(field).not_to_have_attribute("aria-invalid", "true")

    page.get_by_role("button", name="Purge URLs").click()
    item = history(page).first
    expect(item).to_contain_text("URLs")
    expect(item.locator(".purge-targets li")).to_have_text(
        [f"https://{site}/blog/", f"https://{site.upper()}/about?lang=en"]
    )
    node_1 = item.locator('[data-node="node-1"]')
    node_2 = item.locator('[data-node="node-2"]')
    # node-2 holds the request: the list shows it on its way, node-1 done, by their labels.
    expect(node_1).to_contain_text("Done")
    expect(node_2).to_contain_text("Sending")
    expect(item.locator(".purge-head .badge")).to_have_text("Delivering")
    expect(field).to_have_value("")
    for node in nodes:  # the addresses are the operator's: never on the page
        assert node.base_url.split("//")[1] not in page.content()

    held.release()
    expect(node_2).to_contain_text("Done")
    expect(item.locator(".purge-head .badge")).to_have_text("Done")
    expect(page.locator("#purge-status")).to_have_text(re.compile(r"reached every cache node"))

    [purge] = api.get("/api/account/purges", headers=bearer(token)).json()["data"]
    assert purge["status"] == "done" and purge["kind"] == "urls"


def test_tags_are_purged_and_a_refusal_shows_under_the_field(page, api, server_env):
    signed_in_with_zones(page, api, server_env, [unique_host()])
    tags = page.get_by_label("Cache tags")
    tags.fill("product-42\nsale,summer")
    page.get_by_role("button", name="Purge tags").click()
    expect(page.locator("#purge-tags-error")).to_contain_text("without spaces or commas")
    expect(tags).to_have_attribute("aria-invalid", "true")
    expect(history(page)).to_have_count(0)
    expect(page.locator("#purges-empty")).to_be_visible()

    tags.fill("product-42\nsale")
    page.get_by_role("button", name="Purge tags").click()
    item = history(page).first
    expect(item).to_contain_text("Tags")
    expect(item.locator(".purge-targets li")).to_have_text(["product-42", "sale"])
    expect(item.locator(".purge-head .badge")).to_have_text("Done")
    expect(item.locator(".purge-node")).to_have_count(2)


def test_everything_asks_first_naming_the_zones_it_covers(page, api, server_env):
    first, second = unique_host(), unique_host("shop")
    token = signed_in_with_zones(page, api, server_env, [first, second], [unique_host("new")])
    button = page.get_by_role("button", name="Purge everything…")
    button.click()
    ask = page.get_by_role("dialog", name="Purge everything?")
    expect(ask.get_by_role("listitem")).to_have_text([second, first])  # newest first
    expect(ask.get_by_role("button", name="Cancel")).to_be_focused()
    ask.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(button).to_be_focused()
    assert api.get("/api/account/purges", headers=bearer(token)).json()["data"] == []

    button.click()
    ask.get_by_role("button", name="Purge everything").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    item = history(page).first
    expect(item).to_contain_text("Everything cached for your active zones")
    expect(item.locator(".purge-head .badge")).to_have_text("Done")


def test_without_an_active_zone_the_section_says_what_to_do_first(page):
    sign_up(page, fresh_email())
    open_section(page, "Purge")
    note = page.locator("#purge-zones-note")
    expect(note).to_contain_text("you have none yet")
    expect(page.get_by_label("URLs")).to_be_disabled()
    expect(page.get_by_label("Cache tags")).to_be_disabled()
    expect(page.get_by_role("button", name="Purge everything…")).to_be_disabled()
    expect(page.get_by_text("No purges yet")).to_be_visible()
    note.get_by_role("link", name="add and verify a zone").click()
    page.wait_for_url("**/account/zones")


def test_until_the_zones_are_known_nothing_can_be_purged(page, api, server_env):
    held = []
    page.route("**/api/account/zones?*", lambda route: held.append(route))
    signed_in_with_zones(page, api, server_env, [unique_host()])
    for _ in range(250):  # until the page has asked for its zones (their answer is held back)
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the page never asked for its zones"
    everything = page.get_by_role("button", name="Purge everything…")
    expect(page.get_by_label("URLs")).to_be_disabled()
    expect(page.get_by_label("Cache tags")).to_be_disabled()
    expect(everything).to_be_disabled()
    held[0].continue_()
    expect(everything).to_be_enabled()
    expect(page.get_by_label("URLs")).to_be_enabled()


def test_on_a_phone_the_purge_section_and_its_history_fit(browser, server, api, server_env):
    context = browser.new_context(base_url=server.base_url, viewport=PHONE)
    try:
        page = context.new_page()
        host = f"{'a' * 40}.{uuid.uuid4().hex}.example.com"
        signed_in_with_zones(page, api, server_env, [host])
        page.get_by_label("URLs").fill(f"https://{host}/{'long-path/' * 12}")
        page.get_by_role("button", name="Purge URLs").click()
        expect(history(page).first.locator(".purge-head .badge")).to_have_text("Done")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"/account/purge scrolls sideways: {width}px"
    finally:
        context.close()
