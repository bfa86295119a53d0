"""CI access (trust policies) in a real Chromium, against a real ``paradarum serve`` and a
local OpenID Connect issuer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.harness import PHONE, fresh_email, open_section, sign_up
from tests.oidc import REPOSITORY_ID, Issuer, oidc_issuer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with oidc_issuer() as server:
        yield server


@pytest.fixture(scope="module")
def server_overrides(issuer: Issuer, server_port: int) -> dict[str, str]:
    return {
        "PARADARUM_OIDC_INSECURE_ISSUERS": issuer.url,
        "PARADARUM_PUBLIC_URL": f"http://127.0.0.1:{server_port}",
    }


def add_policy(page, issuer: Issuer, name: str, conditions: str) -> None:
    page.goto("/account/ci")
    page.get_by_label("CI system").select_option("github")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Issuer").fill(issuer.url)
    page.get_by_label("Conditions").fill(conditions)
    page.get_by_role("button", name="Add trust policy").click()


def policy_item(page, name: str):
    return page.locator("#policies-body > li").filter(has_text=name)


def test_a_policy_is_created_shows_the_keys_it_issued_and_deleting_it_revokes_them(
    page, api, issuer, server
):
    sign_up(page, fresh_email())
    open_section(page, "CI access")
    expect(page.locator("#policies-empty")).to_be_visible()
    # The form explains each field.
    for hint in ("policy-issuer-hint", "policy-conditions-hint", "policy-ttl-hint"):
        expect(page.locator(f"#{hint}")).not_to_be_empty()
    # GitHub Actions fills in the issuer and the usual conditions.
    expect(page.get_by_label("Issuer")).to_have_value("https://token.actions.githubusercontent.com")
    expect(page.get_by_label("Conditions")).to_have_value("repository_id=\nref=refs/heads/main")

    add_policy(
        page, issuer, "acme/site deploy", f"repository_id={REPOSITORY_ID}\nref=refs/heads/main"
    )
    item = policy_item(page, "acme/site deploy")
    expect(item).to_contain_text(f"repository_id={REPOSITORY_ID}")
    expect(item).to_contain_text("Purge-only keys for every zone")
    expect(item).to_contain_text("No keys issued yet.")

    token = issuer.sign(issuer.github_claims(audience=server.base_url))
    minted = api.post("/api/oidc/token", json={"token": token})
    assert minted.status_code == 201, minted.text
    prefix = minted.json()["data"]["keyPrefix"]
    page.reload()
    key = policy_item(page, "acme/site deploy").locator(f'[data-key-prefix="{prefix}"]')
    expect(key).to_contain_text("Active")
    expect(key).to_contain_text("repo:acme/site")

    item.get_by_role("button", name="Delete acme/site deploy").click()
    dialog = page.get_by_role("dialog", name="Delete trust policy “acme/site deploy”?")
    expect(dialog).to_contain_text("every key it issued that still works is revoked")
    dialog.get_by_role("button", name="Delete policy").click()
    expect(page.locator("#policies-empty")).to_be_visible()
    assert (
        api.get("/api/account", headers={"X-API-Key": minted.json()["data"]["key"]}).status_code
        == 401
    )


def test_conditions_that_pin_no_identity_are_refused_under_the_field(page, issuer):
    sign_up(page, fresh_email())
    add_policy(page, issuer, "too broad", "repository=acme/site")
    error = page.locator("#policy-conditions-error")
    expect(error).to_contain_text("Pin the workload")
    expect(page.get_by_label("Conditions")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#policies-empty")).to_be_visible()


def test_the_ci_page_fits_a_phone(page, api, issuer, server):
    page.set_viewport_size(PHONE)
    sign_up(page, fresh_email())
    add_policy(page, issuer, "a policy with a long name " * 3, f"repository_id={REPOSITORY_ID}")
    expect(page.locator("#policies-body > li")).to_have_count(1)
    token = issuer.sign(issuer.github_claims(audience=server.base_url))
    assert api.post("/api/oidc/token", json={"token": token}).status_code == 201
    page.reload()
    expect(page.locator("#policies-body > li")).to_have_count(1)
    expect(page.locator(".minted-key")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
