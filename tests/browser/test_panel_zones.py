"""The Zones section in a real Chromium, against a real ``paradarum serve`` whose DNS
resolver is a real DNS server of the test's own (dnsmasq on a loopback port)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.harness import fresh_email, open_section, sign_in, sign_up
from tests.dns import DnsServer, running_dns
from tests.support import activate_zone, bearer, new_account

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    with running_dns(tmp_path_factory.mktemp("dns")) as server:
        yield server


@pytest.fixture(scope="module")
def server_overrides(dns: DnsServer) -> dict[str, str]:
    return {"PARADARUM_DNS_RESOLVER": dns.setting, "PARADARUM_DNS_TIMEOUT_SECONDS": "2"}


def unique_host(label: str = "www") -> str:
    return f"{label}.site-{uuid.uuid4().hex[:8]}.example.com"


def session_token(page) -> str:
    return page.evaluate("JSON.parse(sessionStorage.getItem('paradarum.session')).token")


def zone_item(page, hostname):
    return page.locator("#zones-body > li").filter(
        has=page.locator(".zone-host", has_text=re.compile(f"^{re.escape(hostname)}$"))
    )


def add_zone(page, hostname):
    page.get_by_label("Hostname").fill(hostname)
    page.get_by_role("button", name="Add zone").click()


def test_zones_empty_state_says_purges_reach_only_active_zones(page):
    sign_up(page, fresh_email())
    open_section(page, "Zones")
    empty = page.locator("#zones-empty")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("No zones yet")
    expect(empty).to_contain_text("Purges reach only the hostnames of your active zones")
    expect(page.locator("#zones-table")).to_be_hidden()


def test_a_zone_shows_its_txt_record_says_what_dns_found_and_turns_active_when_verified(
    page, api, dns
):
    sign_up(page, fresh_email())
    open_section(page, "Zones")
    host = unique_host()
    add_zone(page, host.upper())  # the API lowercases it
    zone = zone_item(page, host)
    expect(zone).to_be_visible()
    expect(zone.locator(".badge")).to_have_text("Pending")
    expect(page.locator("#zones-status")).to_contain_text("Zone added. Create a TXT record")
    expect(page.get_by_label("Hostname")).to_have_value("")

    listed = api.get("/api/account/zones", headers=bearer(session_token(page))).json()["data"]
    record = listed[0]["verification"]
    assert record["name"] == f"_paradarum-challenge.{host}"
    record_box = zone.get_by_role("group", name=f"DNS record for {host}")
    expect(record_box).to_contain_text("TXT")
    values = record_box.locator(".record-value")
    expect(values.nth(0)).to_have_text(record["name"])
    expect(values.nth(1)).to_have_text(record["value"])

    # Each part copies on its own, as a DNS provider's form asks for them.
    zone.get_by_role("button", name=f"Copy the record name for {host}").click()
    assert page.evaluate("navigator.clipboard.readText()") == record["name"]
    zone.get_by_role("button", name=f"Copy the record value for {host}").click()
    assert page.evaluate("navigator.clipboard.readText()") == record["value"]

    # Not in DNS yet: the API's own sentence, next to the zone.
    verify = zone.get_by_role("button", name=f"Verify {host}")
    verify.click()
    problem = zone.get_by_role("alert")
    expect(problem).to_contain_text("The zone could not be verified: no TXT record at")
    expect(problem).to_contain_text(record["name"])
    expect(zone.locator(".badge")).to_have_text("Pending")

    # Another value there: the message says what was found.
    dns.set_records([(record["name"], "someone-elses-token")])
    verify.click()
    expect(problem).to_contain_text("found 'someone-elses-token'")
    expect(problem).to_contain_text("but not the expected value")

    dns.set_records([(record["name"], record["value"])])
    verify.click()
    expect(zone.locator(".badge")).to_have_text("Active")
    expect(zone).to_contain_text(re.compile(r"Verified \w{3} \d{1,2}, \d{4}"))
    expect(zone.get_by_role("group")).to_have_count(0)  # no record to create any more
    expect(zone.get_by_role("alert")).to_be_hidden()
    expect(zone.get_by_role("button", name=f"Verify {host}")).to_have_count(0)
    expect(zone.locator(".zone-host")).to_be_focused()
    expect(page.locator("#zones-status")).to_contain_text("Zone verified")

    page.reload()
    expect(zone_item(page, host).locator(".badge")).to_have_text("Active")


def test_a_zone_an_operator_made_active_shows_as_active_with_its_date(page, api, server_env):
    email = fresh_email()
    new_account(api, email)
    host = unique_host("shop")
    activate_zone(server_env, email, host)
    page.goto("/account")
    sign_in(page, email)
    page.wait_for_url("**/account/api-keys")
    open_section(page, "Zones")
    zone = zone_item(page, host)
    expect(zone.locator(".badge")).to_have_text("Active")
    expect(zone).to_contain_text(re.compile(r"Verified \w{3} \d{1,2}, \d{4}"))
    expect(zone.get_by_role("button", name=f"Verify {host}")).to_have_count(0)
    # Keys can be restricted to it.
    open_section(page, "API keys")
    page.locator("#restrictions summary").click()
    expect(page.get_by_role("checkbox", name=host)).to_be_visible()


def test_a_hostname_the_api_refuses_shows_its_sentence_under_the_field(page, api):
    sign_up(page, fresh_email())
    open_section(page, "Zones")
    bad = "https://www.example.com/blog"
    answer = api.post(
        "/api/account/zones", json={"hostname": bad}, headers=bearer(session_token(page))
    )
    assert answer.status_code == 400
    expected = " ".join(answer.json()["errors"]["hostname"])
    add_zone(page, bad)
    expect(page.locator("#zone-hostname-error")).to_have_text(expected)
    expect(page.get_by_label("Hostname")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Hostname")).to_be_focused()
    expect(page.locator("#zones-body > li")).to_have_count(0)


def test_deleting_a_zone_asks_first_naming_it_and_gives_focus_back(page):
    sign_up(page, fresh_email())
    open_section(page, "Zones")
    host = unique_host()
    add_zone(page, host)
    delete = zone_item(page, host).get_by_role("button", name=f"Delete {host}")
    delete.click()
    confirm = page.get_by_role("dialog", name=f"Delete zone “{host}”?")
    expect(confirm).to_contain_text(f"Purges from this account will no longer reach {host}")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(delete).to_be_focused()
    expect(zone_item(page, host)).to_be_visible()

    delete.click()
    page.get_by_role("button", name="Delete zone").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(zone_item(page, host)).to_have_count(0)
    expect(page.locator("#zones-empty")).to_be_visible()
    expect(page.locator("#zones-title")).to_be_focused()
    expect(page.locator("#zones-status")).to_have_text(f"Zone {host} deleted.")
