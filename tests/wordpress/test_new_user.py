"""What a new user does, in Chromium, on Debian's WordPress: upload the zip built by
``make wordpress-plugin``, activate it, paste a purge-only key restricted to the site's
zone, press "Test connection", publish a post in the block editor, and see the home page
refreshed in Varnish while another customer's site on the same cache stays cached."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wordpress.conftest import ALPHA_HOST, BETA_HOST, Stack
from tests.wordpress.harness import build_plugin_zip, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.wordpress,
    pytest.mark.xdist_group("wordpress-new-user"),
]


@pytest.fixture(scope="module")
def plugin_preinstalled() -> bool:
    return False


def test_a_new_user_installs_the_zip_connects_and_publishes_a_refreshed_page(
    admin: Any, stack: Stack, tmp_path, php_log_is_clean
):
    stack.warm("/")
    stack.warm("/", host=BETA_HOST)

    # Plugins → Add New → Upload Plugin.
    zip_path = build_plugin_zip(tmp_path / "paradarum-wordpress.zip")
    admin.goto("/wp-admin/plugin-install.php?tab=upload")
    admin.set_input_files("#pluginzip", str(zip_path))
    admin.click("#install-plugin-submit")
    admin.get_by_text("Plugin installed successfully.").wait_for(timeout=60_000)
    admin.get_by_role("link", name="Activate Plugin").click()
    admin.get_by_text("Plugin activated.").wait_for()

    # Settings → Paradarum: the address and the key, then Test connection.
    admin.goto("/wp-admin/options-general.php?page=paradarum")
    admin.get_by_label("API address").fill(stack.api.base_url)
    admin.get_by_label("API key").fill(stack.alpha.key["key"])
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_text("Settings saved.").wait_for()
    admin.get_by_role("button", name="Test connection").click()
    result = admin.locator("#paradarum-test-result").inner_text()
    assert f"{ALPHA_HOST} is covered by an active zone of this key" in result
    before = len(stack.purges(stack.alpha))

    # A post, written and published in the block editor (its welcome guide seen before).
    stack.site.php(
        """update_user_meta( 1, $GLOBALS['wpdb']->get_blog_prefix() . 'persisted_preferences',
            array( 'core/edit-post' => array( 'welcomeGuide' => false ),
                   '_modified' => gmdate( 'c' ) ) );"""
    )
    admin.goto("/wp-admin/post-new.php")
    admin.get_by_label("Add title").fill("Hello from the editor")
    admin.get_by_role("region", name="Editor top bar").get_by_role("button", name="Publish").click()
    admin.get_by_role("region", name="Editor publish").get_by_role(
        "button", name="Publish", exact=True
    ).click()
    admin.get_by_text("is now live").first.wait_for(timeout=60_000)

    def delivered() -> dict | None:
        purges = stack.purges(stack.alpha)
        newest = purges[0] if len(purges) > before else None
        return newest if newest and newest["status"] == "done" else None

    purge = wait_for(delivered, what="the purge of the new post's pages")
    assert stack.site.url + "/" in purge["targets"]
    home = stack.page("/")
    assert home.headers["x-cache"] == "MISS" and "Hello from the editor" in home.text
    assert stack.cache_state("/", host=BETA_HOST) == "HIT"
