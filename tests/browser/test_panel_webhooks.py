"""The Webhooks section in a real Chromium against a real ``paradarum serve``: a person
subscribes a URL, revokes a key, and their receiver gets one signed
``api_key.revoked`` event, verified with the Standard Webhooks reference library."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.harness import fresh_email, generate_key, open_section, sign_up
from tests.webhooks import Receiver, webhook_receiver

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="module")
def server_overrides() -> dict[str, str]:
    return {"PARADARUM_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


def test_a_subscribed_url_gets_one_signed_event_when_a_key_is_revoked(page, receiver):
    sign_up(page, fresh_email())
    key_name = "deploy bot"
    generate_key(page, key_name)
    page.get_by_role("dialog", name="Your new API key").get_by_role("button", name="Done").click()

    open_section(page, "Webhooks")
    expect(page.locator("#webhooks-empty")).to_be_visible()
    page.get_by_label("Endpoint URL").fill(receiver.url("/panel-hook"))
    page.get_by_label("A key was revoked").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret_box = page.get_by_role("textbox", name="Signing secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("whsec_")
    receiver.set(secret=secret)
    endpoint = page.locator("#webhooks-body > li")
    expect(endpoint).to_have_count(1)
    expect(endpoint).to_contain_text(receiver.url("/panel-hook"))
    expect(endpoint).to_contain_text("api_key.revoked")
    page.get_by_role("button", name="I have copied it").click()
    expect(secret_box).to_be_hidden()

    open_section(page, "API keys")
    page.get_by_role("button", name=f"Revoke {key_name}").click()
    page.get_by_role("dialog", name=f"Revoke “{key_name}”?").get_by_role(
        "button", name="Revoke key"
    ).click()
    expect(page.locator("#keys-body")).to_contain_text("Revoked")

    deadline = time.monotonic() + 30
    while not receiver.received("/panel-hook"):
        assert time.monotonic() < deadline, "no delivery arrived"
        time.sleep(0.1)
    (delivery,) = receiver.received("/panel-hook")
    assert delivery.verified
    assert delivery.event["type"] == "api_key.revoked"
    assert delivery.event["data"]["key"]["name"] == key_name

    open_section(page, "Webhooks")
    page.get_by_role("button", name=f"Deliveries to {receiver.url('/panel-hook')}").click()
    log = page.locator(".delivery")
    expect(log).to_have_count(1)
    expect(log).to_contain_text("api_key.revoked")
    expect(log).to_contain_text("Delivered")
    log.get_by_role("button", name="Resend api_key.revoked", exact=False).click()
    deadline = time.monotonic() + 30
    while len(receiver.received("/panel-hook")) < 2:
        assert time.monotonic() < deadline, "the resend did not arrive"
        time.sleep(0.1)
    again = receiver.received("/panel-hook")[1]
    assert again.verified and again.webhook_id == delivery.webhook_id
