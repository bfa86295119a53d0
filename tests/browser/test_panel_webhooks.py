"""Webhooks in a real Chromium, against a real ``paradarum serve`` whose allowed-networks
setting admits loopback endpoints: a customer subscribes a receiver of their own in the
panel (its signing secret shown once), revokes a key, and the receiver gets one signed
``api_key.revoked`` event, verified with the Standard Webhooks library, which the
delivery log shows as delivered and sends again; an endpoint is paused, its secret
rolled, and it is deleted."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from tests.browser.harness import (
    ANY_KEY,
    PHONE,
    fresh_email,
    generate_key,
    open_section,
    sign_up,
)
from tests.webhooks import Receiver, Request, receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Checked when saved (the server's setting admits loopback); nothing listens there.
ENDPOINT = "http://127.0.0.1:9/hooks"


@pytest.fixture(scope="module")
def server_overrides() -> dict[str, str]:
    return {"PARADARUM_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32"}


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


def received(hooks: Receiver, count: int = 1, timeout: float = 30.0) -> list[Request]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = hooks.requests()
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} requests reached the receiver")


def add_endpoint(page, url: str, events: list[str]) -> str:
    """Add an endpoint in the panel; returns the signing secret its dialog showed."""
    open_section(page, "Webhooks")
    page.get_by_label("Endpoint URL").fill(url)
    for event in events:
        page.locator(f'#webhook-events input[value="{event}"]').check()
    page.get_by_role("button", name="Add endpoint").click()
    dialog = page.get_by_role("dialog", name="Your signing secret")
    expect(dialog).to_contain_text("This secret will not be shown again.")
    secret = dialog.get_by_role("textbox", name="Signing secret").input_value()
    dialog.get_by_role("button", name="Copy").click()
    dialog.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    return str(secret)


def endpoint_item(page, url: str):
    return page.locator("#webhooks-body > li").filter(has_text=url)


def test_an_endpoint_is_added_with_its_secret_once_and_a_revoked_key_shows_in_its_log(page):
    sign_up(page, fresh_email())
    generate_key(page, "Shop plugin")
    page.get_by_role("dialog", name="Your new API key").get_by_role("button", name="Done").click()
    secret = add_endpoint(page, ENDPOINT, ["api_key.revoked"])
    assert secret.startswith("whsec_")
    # Shown once: the dialog forgot it, and a reload does not bring it back.
    assert page.locator("#secret-value").input_value() == ""
    page.reload()
    item = endpoint_item(page, ENDPOINT)
    expect(item).to_contain_text("Enabled")
    expect(item.get_by_role("list", name=f"Events sent to {ENDPOINT}")).to_have_text(
        "api_key.revoked"
    )
    assert secret not in page.content()

    open_section(page, "API keys")
    page.get_by_role("button", name="Revoke Shop plugin").click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.locator("#keys-body")).to_contain_text("Revoked")

    open_section(page, "Webhooks")
    item = endpoint_item(page, ENDPOINT)
    item.get_by_text("Delivery log").click()
    row = item.locator("tbody tr").first
    expect(row).to_contain_text("api_key.revoked")
    # Nothing listens at the endpoint: the delivery waits for its next attempt.
    expect(row.locator('[data-label="Status"]')).to_have_text(re.compile("Queued|Retrying"))

    # Resend queues the same message again: a second row, on top.
    row.get_by_role("button", name="Resend").click()
    expect(item.locator("tbody tr")).to_have_count(2)
    expect(page.locator("#webhooks-status")).to_have_text("Queued to be sent again")


def test_a_customer_subscribes_a_receiver_revokes_a_key_and_sees_the_delivery_in_the_log(
    page, hooks
):
    sign_up(page, fresh_email())
    key = generate_key(page, "Shop plugin")
    page.get_by_role("dialog", name="Your new API key").get_by_role("button", name="Done").click()
    secret = add_endpoint(page, hooks.url, ["api_key.revoked"])
    item = endpoint_item(page, hooks.url)
    item.get_by_text("Delivery log").click()
    expect(item.get_by_text("No deliveries yet")).to_be_visible()

    open_section(page, "API keys")
    page.get_by_role("button", name="Revoke Shop plugin").click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.locator("#keys-body")).to_contain_text("Revoked")

    [delivery] = received(hooks)
    event = Webhook(secret).verify(delivery.body, delivery.headers)
    assert event["type"] == "api_key.revoked" and event["data"]["name"] == "Shop plugin"
    assert key not in delivery.body.decode() and not ANY_KEY.search(delivery.body.decode())

    open_section(page, "Webhooks")
    item = endpoint_item(page, hooks.url)
    item.get_by_text("Delivery log").click()
    row = item.locator("tbody tr").first
    expect(row.locator('[data-label="Event"]')).to_have_text("api_key.revoked")
    expect(row.locator('[data-label="Status"]')).to_have_text("Delivered")
    expect(row.locator('[data-label="Attempts"]')).to_have_text("1")
    expect(row.locator('[data-label="Response"]')).to_have_text("204")

    row.get_by_role("button", name="Resend").click()
    first, again = received(hooks, count=2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"] and again.body == first.body
    # The new delivery is followed in the open log until it is delivered too.
    expect(item.locator('[data-label="Status"]')).to_have_text(["Delivered", "Delivered"])


def test_an_endpoint_is_paused_its_secret_rolled_with_a_grace_period_and_deleted(page):
    sign_up(page, fresh_email())
    first = add_endpoint(page, ENDPOINT, ["api_key.created", "zone.verified"])
    item = endpoint_item(page, ENDPOINT)

    item.get_by_role("button", name=f"Disable {ENDPOINT}").click()
    expect(item).to_contain_text("Disabled")
    item.get_by_role("button", name=f"Enable {ENDPOINT}").click()
    expect(item).to_contain_text("Enabled")

    item.get_by_role("button", name=f"Roll the secret of {ENDPOINT}").click()
    roll = page.get_by_role("dialog", name=f"Roll the signing secret of {ENDPOINT}?")
    expect(roll.get_by_label("In 1 day")).to_be_checked()
    roll.get_by_label("In 1 hour").check()
    roll.get_by_role("button", name="Roll secret").click()
    dialog = page.get_by_role("dialog", name="Your signing secret")
    expect(dialog).to_contain_text("requests are signed with the old one too")
    second = dialog.get_by_role("textbox", name="Signing secret").input_value()
    assert second.startswith("whsec_") and second != first
    dialog.get_by_role("button", name="Done").click()

    item.get_by_role("button", name=f"Roll the secret of {ENDPOINT}").click()
    roll.get_by_label("Now").check()
    roll.get_by_role("button", name="Roll secret").click()
    expect(dialog).to_contain_text("The old one no longer signs requests.")
    dialog.get_by_role("button", name="Done").click()

    item.get_by_role("button", name=f"Delete {ENDPOINT}").click()
    confirm = page.get_by_role("dialog", name=f"Delete the endpoint {ENDPOINT}?")
    confirm.get_by_role("button", name="Delete endpoint").click()
    expect(page.locator("#webhooks-empty")).to_be_visible()


def test_a_private_address_or_no_event_is_refused_under_its_field(page):
    sign_up(page, fresh_email())
    open_section(page, "Webhooks")
    page.get_by_label("Endpoint URL").fill("http://10.1.2.3/hooks")
    page.locator('#webhook-events input[value="api_key.revoked"]').check()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#webhook-url-error")).to_contain_text("private")
    expect(page.get_by_label("Endpoint URL")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Endpoint URL").fill(ENDPOINT)
    page.locator('#webhook-events input[value="api_key.revoked"]').uncheck()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#webhook-events-error")).not_to_be_empty()
    expect(page.locator("#webhooks-empty")).to_be_visible()


def test_the_webhooks_page_fits_a_phone(page):
    page.set_viewport_size(PHONE)
    sign_up(page, fresh_email())
    add_endpoint(page, ENDPOINT + "/a-long-path-that-would-not-fit" * 3, ["api_key.created"])
    open_section(page, "API keys")
    generate_key(page, "One")
    page.get_by_role("dialog", name="Your new API key").get_by_role("button", name="Done").click()
    open_section(page, "Webhooks")
    page.locator("#webhooks-body > li").first.get_by_text("Delivery log").click()
    expect(page.locator("#webhooks-body tbody tr")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
