"""The plugin on a real WordPress behind a real Varnish: what a change purges, once,
and only on the site's own zone."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.support import free_port
from tests.wordpress.conftest import BETA_HOST, Stack
from tests.wordpress.harness import PLUGIN_DIR, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.wordpress,
    pytest.mark.xdist_group("wordpress-purge-on-publish"),
]


def test_every_php_file_of_the_plugin_passes_php_lint():
    files = sorted(PLUGIN_DIR.rglob("*.php"))
    assert len(files) >= 6
    for path in files:
        linted = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout + linted.stderr


def wait_for_new_purges(stack: Stack, before: int, count: int = 1) -> list[dict]:
    """The alpha account's purges made after ``before`` existed, once all are delivered."""
    return stack.delivered_after(stack.alpha, before, count)


def test_publishing_a_post_purges_its_url_and_the_pages_listing_it_and_nothing_else(
    configured: Stack, php_log_is_clean
):
    stack, site = configured, configured.site
    news = site.php("echo wp_insert_term( 'News', 'category' )['term_id'];")
    start = len(stack.purges(stack.alpha))
    # With two posts a page (install's "Hello world!" and these), the home page has a page 2.
    site.insert_post(post_title="Oldest news", post_status="publish")
    about = site.insert_post(post_type="page", post_title="About", post_status="publish")
    older = site.insert_post(
        post_title="Older news", post_status="publish", post_category=[news], tags_input=["launch"]
    )
    draft = site.insert_post(
        post_title="Fresh news", post_status="draft", post_category=[news], tags_input=["launch"]
    )
    listings = [
        "/",
        "/page/2/",
        "/category/news/",
        "/tag/launch/",
        "/author/admin/",
        "/feed/",
        "/category/news/feed/",
    ]
    untouched = [about["url"], older["url"]]
    # The three publications purge in the background: warm the pages once they are through.
    wait_for_new_purges(stack, start, count=3)
    for path in [*listings, *untouched]:
        stack.warm(path)
    stack.warm("/", host=BETA_HOST)
    before = len(stack.purges(stack.alpha))

    published = site.update_post(draft["id"], post_status="publish")

    [purge] = wait_for_new_purges(stack, before)
    assert purge["status"] == "done", purge
    assert published["url"] in purge["targets"]
    for path in listings:
        assert stack.cache_state(path) == "MISS", path
    for url in untouched:
        assert stack.cache_state(url) == "HIT", url
    # Another account's site on the same cache is untouched.
    assert stack.cache_state("/", host=BETA_HOST) == "HIT"
    assert "Fresh news" in stack.page("/").text
    assert site.notice() is None


def test_date_archives_attachments_and_the_posts_page_are_purged_in_batches_of_the_limit(
    configured: Stack, php_log_is_clean
):
    stack, site = configured, configured.site
    # Thirty categories (each with its pages 2 and 3 and its feed): more URLs than one
    # purge takes (100), so the plugin must send them in more than one request.
    categories = [
        site.php(f"echo wp_insert_term( 'Topic {n}', 'category' )['term_id'];") for n in range(30)
    ]
    start = len(stack.purges(stack.alpha))
    blog = site.insert_post(post_type="page", post_title="Blog", post_status="publish")
    front = site.insert_post(post_type="page", post_title="Welcome", post_status="publish")
    wait_for_new_purges(stack, start, count=2)
    post = site.insert_post(post_title="Photo story", post_status="draft", post_category=categories)
    attachment_id = site.php(
        f"""echo wp_insert_attachment( array(
            'post_title' => 'Photo', 'post_mime_type' => 'image/png', 'post_status' => 'inherit',
        ), 'photo.png', {post["id"]} );"""
    )
    site.php(
        f"""update_option( 'show_on_front', 'page' );
        update_option( 'page_on_front', {front["id"]} );
        update_option( 'page_for_posts', {blog["id"]} );"""
    )
    try:
        before = len(stack.purges(stack.alpha))
        published = site.update_post(post["id"], post_status="publish")
        dates = site.php(
            f"""$time = strtotime( get_post( {post["id"]} )->post_date );
            $y = (int) gmdate( 'Y', $time );
            $m = (int) gmdate( 'm', $time );
            $d = (int) gmdate( 'd', $time );
            echo wp_json_encode( array(
                get_year_link( $y ), get_month_link( $y, $m ), get_day_link( $y, $m, $d ),
            ) );"""
        )
        # Its addresses once the post is published (a draft's attachment has another).
        attachment = site.php(
            f"""echo wp_json_encode( array(
                'page' => get_attachment_link( {int(attachment_id)} ),
                'file' => wp_get_attachment_url( {int(attachment_id)} ),
            ) );"""
        )
        purges = wait_for_new_purges(stack, before, count=2)
    finally:
        site.php("update_option( 'show_on_front', 'posts' );")
    assert len(purges) >= 2 and all(len(p["targets"]) <= 100 for p in purges), purges
    assert all(p["status"] == "done" for p in purges), purges
    targets = [url for p in purges for url in p["targets"]]
    assert len(targets) == len(set(targets)) > 100  # each URL once, over the requests
    expected = [
        published["url"],
        *dates,
        attachment["page"],
        attachment["file"],
        blog["url"],
        blog["url"] + "page/2/",
    ]
    for url in expected:
        assert url in targets, url
    assert len(stack.purges(stack.alpha)) == before + len(purges)


def test_updating_a_post_purges_it_once_with_its_new_content_served_next(
    configured: Stack, php_log_is_clean
):
    stack, site = configured, configured.site
    start = len(stack.purges(stack.alpha))
    post = site.insert_post(post_title="Draft title", post_status="publish")
    wait_for_new_purges(stack, start)
    stack.warm(post["url"])
    stack.warm("/")
    before = len(stack.purges(stack.alpha))

    # One save fires transition_post_status, post_updated, save_post, wp_insert_post...
    site.update_post(post["id"], post_title="Corrected title")

    [purge] = wait_for_new_purges(stack, before)
    assert purge["status"] == "done"
    assert purge["targets"].count(post["url"]) == 1
    fresh = stack.page(post["url"])
    assert fresh.headers["x-cache"] == "MISS" and "Corrected title" in fresh.text
    assert stack.cache_state("/") == "MISS"
    # Nothing else was sent for that save.
    assert len(stack.purges(stack.alpha)) == before + 1


def test_trashing_and_unpublishing_purge_the_address_the_post_had(
    configured: Stack, php_log_is_clean
):
    stack, site = configured, configured.site
    start = len(stack.purges(stack.alpha))
    first = site.insert_post(post_title="Going away", post_status="publish")
    second = site.insert_post(post_title="Back to draft", post_status="publish")
    wait_for_new_purges(stack, start, count=2)
    stack.warm(first["url"])
    stack.warm(second["url"])
    before = len(stack.purges(stack.alpha))

    site.php(f"wp_trash_post( {first['id']} );")
    site.update_post(second["id"], post_status="draft")

    purges = wait_for_new_purges(stack, before, count=2)
    targets = [url for purge in purges for url in purge["targets"]]
    assert first["url"] in targets and second["url"] in targets
    assert stack.page(first["url"]).status_code == 404
    assert stack.page(second["url"]).status_code == 404


def test_approving_a_comment_purges_the_post_and_the_comment_feeds(
    configured: Stack, php_log_is_clean
):
    stack, site = configured, configured.site
    start = len(stack.purges(stack.alpha))
    post = site.insert_post(post_title="Discuss", post_status="publish")
    wait_for_new_purges(stack, start)
    comment = site.php(
        f"""echo wp_insert_comment( array(
            'comment_post_ID' => {post["id"]}, 'comment_content' => 'First!',
            'comment_author' => 'Reader', 'comment_approved' => 0 ) );"""
    )
    stack.warm(post["url"])
    before = len(stack.purges(stack.alpha))

    site.php(f"wp_set_comment_status( {int(comment)}, 'approve' );")

    [purge] = wait_for_new_purges(stack, before)
    assert post["url"] in purge["targets"]
    fresh = stack.page(post["url"])
    assert fresh.headers["x-cache"] == "MISS" and "First!" in fresh.text


class Held(ThreadingHTTPServer):
    """A proxy in front of the real API that holds every purge until the test releases it."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", free_port()), HeldHandler)
        self.upstream = upstream
        self.release = threading.Event()
        self.received: list[bytes] = []
        self.answered = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HeldHandler(BaseHTTPRequestHandler):
    server: Held

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append(body)
        self.server.release.wait()
        upstream = httpx.post(
            self.server.upstream + self.path,
            content=body,
            headers={
                name: self.headers[name]
                for name in ("Authorization", "Content-Type", "Accept")
                if self.headers[name]
            },
            timeout=30,
        )
        self.send_response(upstream.status_code)
        for name in ("Content-Type", "Retry-After"):
            if name in upstream.headers:
                self.send_header(name, upstream.headers[name])
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)
        self.server.answered += 1

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def held_api(configured: Stack) -> Iterator[Held]:
    server = Held(configured.api.base_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_a_save_completes_while_its_purge_is_still_held_and_the_page_is_purged_after(
    configured: Stack, held_api: Held, php_log_is_clean
):
    stack, site = configured, configured.site
    post = site.insert_post(post_title="Before the hold", post_status="publish")
    stack.warm(post["url"])
    site.set_plugin(api_url=held_api.base_url, api_key=stack.alpha.key["key"])
    before = len(stack.purges(stack.alpha))

    # The save returns although Paradarum has not answered (and will not until released):
    # had it waited, its attempts would have timed out, been tried again, and left a notice.
    saved = site.update_post(post["id"], post_title="Saved during the hold")
    assert saved["title"] == "Saved during the hold"

    wait_for(lambda: held_api.received, what="the purge sent in the background")
    assert held_api.answered == 0
    assert saved["url"] in json.loads(held_api.received[0])["urls"]
    assert stack.cache_state(post["url"]) == "HIT"  # not purged yet: the purge is held
    held_api.release.set()

    [purge] = wait_for_new_purges(stack, before)
    assert purge["status"] == "done" and saved["url"] in purge["targets"]
    fresh = stack.page(post["url"])
    assert fresh.headers["x-cache"] == "MISS" and "Saved during the hold" in fresh.text
    assert len(held_api.received) == 1  # one attempt: it never timed out
    wait_for(lambda: held_api.answered == 1, what="the answer passed back")
    assert site.notice() is None


def test_a_forged_background_request_is_refused_and_sends_nothing(configured: Stack):
    site = configured.site
    queued = site.php(
        """$id = Paradarum_Purger::enqueue( array( home_url( '/forged/' ) ) );
        echo wp_json_encode( array( 'id' => $id, 'token' => Paradarum_Purger::token( $id ) ) );"""
    )
    ajax = f"http://127.0.0.1:{site.origin_port}/wp-admin/admin-ajax.php"
    try:
        for token in ("", "0" * 64, queued["token"].upper() + "0"):
            forged = httpx.post(
                ajax,
                data={"action": "paradarum_send_queue", "id": queued["id"], "token": token},
                timeout=30,
            )
            assert forged.status_code == 403, token
        # Still queued: nothing was claimed or sent.
        left = site.php(f"echo wp_json_encode( get_option( 'paradarum_queue_{queued['id']}' ) );")
        assert left == [site.url + "/forged/"]
    finally:
        site.php(f"delete_option( 'paradarum_queue_{queued['id']}' );")


def test_uninstalling_removes_the_settings_the_notice_and_pending_retries(configured: Stack):
    site = configured.site
    left = site.php(
        """
        update_option( 'paradarum_notice', array( 'message' => 'x', 'time' => time() ) );
        set_transient( 'paradarum_connection_1', array( 'ok' => true ), 600 );
        Paradarum_Purger::enqueue( array( home_url( '/' ) ) );
        wp_schedule_single_event( time() + 600, 'paradarum_retry_purge', array( array(), 0 ) );
        wp_schedule_single_event( time() + 600, 'paradarum_send_queue' );
        require_once ABSPATH . 'wp-admin/includes/plugin.php';
        uninstall_plugin( 'paradarum/paradarum.php' );
        global $wpdb;
        echo wp_json_encode( array(
            'options' => $wpdb->get_col(
                "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE '%paradarum%'"
            ),
            'retry' => wp_next_scheduled( 'paradarum_retry_purge', array( array(), 0 ) ),
            'queue' => wp_next_scheduled( 'paradarum_send_queue' ),
        ) );
        """
    )
    assert left == {"options": [], "retry": False, "queue": False}
