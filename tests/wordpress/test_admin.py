"""The plugin's admin in Chromium: the settings page, "Test connection", "Purge
everything" from the admin bar, and forged form posts.

Set ``PARADARUM_WORDPRESS_SCREENSHOTS=docs`` to keep the pictures docs/wordpress.md shows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import visible_text_and_values
from tests.wordpress.conftest import ALPHA_HOST, BETA_HOST, Stack
from tests.wordpress.harness import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.wordpress,
    pytest.mark.xdist_group("wordpress-admin"),
]


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("PARADARUM_WORDPRESS_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


SETTINGS = "/wp-admin/options-general.php?page=paradarum"


def stored_settings(stack: Stack) -> dict[str, str]:
    return dict(stack.site.php("echo wp_json_encode( get_option( 'paradarum_settings' ) );"))


def test_a_pasted_key_is_never_shown_back_and_test_connection_says_what_it_may_purge(
    admin, configured: Stack, php_log_is_clean
):
    stack = configured
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=None)
    key = stack.alpha.key
    admin.goto(SETTINGS)
    admin.get_by_text("Recommended: define the key in wp-config.php").wait_for()
    admin.get_by_label("API key").fill(key["key"])
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_text("Settings saved.").wait_for()

    assert stored_settings(stack)["api_key"] == key["key"]
    shown = visible_text_and_values(admin)
    assert key["key"] not in shown
    assert f"A key starting with {key['keyPrefix']}… is stored" in admin.inner_text("body")

    admin.get_by_role("button", name="Test connection").click()
    result = admin.locator("#paradarum-test-result")
    result.wait_for()
    text = result.inner_text()
    assert "Connected." in text
    assert key["keyPrefix"] in text
    assert "Purge only (recommended)" in text
    assert f"{ALPHA_HOST} is covered by an active zone of this key" in text
    assert key["key"] not in visible_text_and_values(admin)
    screenshot(admin, "wordpress-settings.png")

    # Saving the address alone keeps the stored key (the field is always empty).
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_text("Settings saved.").wait_for()
    assert stored_settings(stack)["api_key"] == key["key"]

    # Something that is no key is refused without being repeated; the stored key stays.
    typo = key["key"][:-1] + "!"
    admin.get_by_label("API key").fill(typo)
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_text("That is not a Paradarum API key").wait_for()
    assert typo not in visible_text_and_values(admin)
    assert stored_settings(stack)["api_key"] == key["key"]


def test_test_connection_says_when_the_key_cannot_purge_this_site(
    admin, configured: Stack, php_log_is_clean
):
    stack = configured
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=stack.beta.key["key"])
    admin.goto(SETTINGS)
    admin.get_by_role("button", name="Test connection").click()
    text = admin.locator("#paradarum-test-result").inner_text()
    assert "Connected, but this key cannot purge this site." in text
    assert f"{ALPHA_HOST} is not covered by any active zone of this key" in text
    assert BETA_HOST in text


def test_a_key_in_wp_config_is_used_and_only_its_prefix_shown(
    admin, configured: Stack, php_log_is_clean
):
    stack = configured
    key = stack.new_key(stack.alpha)
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=None)
    stack.site.define_constants(PARADARUM_API_KEY=key["key"])
    admin.goto(SETTINGS)
    body = admin.inner_text("body")
    assert "Set by the PARADARUM_API_KEY constant in wp-config.php (recommended)." in body
    # No field to type a key into: wp-config.php holds it.
    assert admin.locator("input#paradarum_api_key").count() == 0
    admin.get_by_role("button", name="Test connection").click()
    text = admin.locator("#paradarum-test-result").inner_text()
    assert key["keyPrefix"] in text and "Connected." in text
    assert key["key"] not in visible_text_and_values(admin)


FORGE = """([action, fields]) => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = action;
    for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        input.value = value;
        form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
}"""


def forge(page: Any, action: str, fields: dict[str, str]) -> int:
    """Post a form the plugin did not make, with the administrator's cookies."""
    page.goto("/wp-admin/")
    with page.expect_navigation() as navigation:
        page.evaluate(FORGE, [action, fields])
    return int(navigation.value.status)


def test_forged_form_posts_change_nothing_and_purge_nothing(admin, configured: Stack):
    """A form posted with the administrator's session but without the plugin's nonce
    (a wrong one, or none): nothing is saved, nothing purged."""
    stack = configured
    before = stored_settings(stack)
    purges = len(stack.purges(stack.alpha))
    status = forge(
        admin,
        "/wp-admin/options.php",
        {
            "option_page": "paradarum",
            "action": "update",
            "_wpnonce": "0123456789",
            "_wp_http_referer": SETTINGS,
            "paradarum_settings[api_url]": "http://attacker.example",
            "paradarum_settings[api_key]": stack.beta.key["key"],
        },
    )
    assert status == 403
    for action in ("paradarum_purge_everything", "paradarum_test", "paradarum_dismiss"):
        for nonce in ({"_wpnonce": "0123456789"}, {}):
            status = forge(admin, "/wp-admin/admin-post.php", {"action": action, **nonce})
            assert status == 403, (action, nonce)
    assert stored_settings(stack) == before
    assert len(stack.purges(stack.alpha)) == purges


def test_purge_everything_from_the_admin_bar_asks_first_then_empties_only_this_site(
    admin, configured: Stack, php_log_is_clean
):
    stack = configured
    published = len(stack.purges(stack.alpha))
    post = stack.site.insert_post(post_title="Everything test", post_status="publish")
    # Publishing purges in the background: warm the pages once that purge is through.
    stack.delivered_after(stack.alpha, published)
    for path in ("/", post["url"], "/wp-includes/css/dashicons.min.css"):
        stack.warm(path)
    stack.warm("/", host=BETA_HOST)
    before = len(stack.purges(stack.alpha))

    admin.goto("/wp-admin/")
    admin.hover("#wp-admin-bar-paradarum")
    admin.click("#wp-admin-bar-paradarum-purge-everything a")
    confirm = admin.locator("#paradarum-confirm")
    confirm.wait_for()
    assert f"Purge everything cached for {ALPHA_HOST}?" in confirm.inner_text()
    assert len(stack.purges(stack.alpha)) == before  # nothing yet: it asks first
    admin.get_by_role("button", name="Yes, purge everything").click()
    message = admin.locator("#paradarum-result")
    message.wait_for()
    assert f"purging everything cached for {ALPHA_HOST}" in message.inner_text()

    def delivered() -> dict | None:
        newest = stack.purges(stack.alpha)[0]
        return newest if newest["status"] == "done" and newest["kind"] == "everything" else None

    wait_for(delivered, what="the purge of everything")
    assert len(stack.purges(stack.alpha)) == before + 1
    for path in ("/", post["url"], "/wp-includes/css/dashicons.min.css"):
        assert stack.cache_state(path) == "MISS", path
    assert stack.cache_state("/", host=BETA_HOST) == "HIT"


def test_a_failed_purge_shows_a_notice_with_the_way_out_until_dismissed(
    admin, configured: Stack, php_log_is_clean
):
    stack = configured
    key = stack.new_key(stack.alpha)
    with stack.http() as http:
        http.delete(f"/api/account/apikeys/{key['id']}", headers=stack.alpha.headers)
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=key["key"])
    post = stack.site.insert_post(post_title="Saved anyway", post_status="publish")
    # The purge fails in the background, after the save: the next admin page tells.
    wait_for(stack.site.notice, what="the failure recorded")

    admin.goto("/wp-admin/edit.php")
    notice = admin.locator(".paradarum-notice")
    notice.wait_for()
    text = notice.inner_text()
    assert f"Paradarum refused the API key {key['keyPrefix']}…" in text
    assert "revoked or has expired" in text
    assert "Saved anyway" in admin.inner_text("#the-list")
    screenshot(admin, "wordpress-notice.png")

    # The block editor, which shows no admin notices, shows it too.
    admin.goto(f"/wp-admin/post.php?post={post['id']}&action=edit")
    editor_notice = admin.locator(".components-notice", has_text="Paradarum:")
    editor_notice.wait_for(timeout=60_000)
    assert "revoked or has expired" in editor_notice.inner_text()

    admin.goto("/wp-admin/edit.php")
    notice.get_by_role("link", name="Dismiss").click()
    admin.wait_for_load_state()
    assert admin.locator(".paradarum-notice").count() == 0
    assert stack.site.notice() is None
