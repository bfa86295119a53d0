"""When a purge cannot be done, the save still succeeds, the administrator is told why
in words they can act on, and nothing is retried forever."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import free_port
from tests.wordpress.conftest import ALPHA_HOST, Stack
from tests.wordpress.harness import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.wordpress,
    pytest.mark.xdist_group("wordpress-failures"),
]

RETRIES = """
$events = array();
foreach ( (array) _get_cron_array() as $time => $hooks ) {
    foreach ( (array) ( $hooks['paradarum_retry_purge'] ?? array() ) as $event ) {
        $events[] = $event['args'];
    }
}
echo wp_json_encode( $events );
"""

RUN_RETRY = """
foreach ( (array) _get_cron_array() as $time => $hooks ) {
    foreach ( (array) ( $hooks['paradarum_retry_purge'] ?? array() ) as $event ) {
        wp_unschedule_event( $time, 'paradarum_retry_purge', $event['args'] );
        do_action_ref_array( 'paradarum_retry_purge', $event['args'] );
    }
}
"""


def scheduled_retries(stack: Stack) -> list:
    return list(stack.site.php(RETRIES))


def notice_once_sent(stack: Stack) -> str:
    """The failure notice, once the background request that sends the purge recorded it."""
    return str(wait_for(stack.site.notice, what="the failure notice"))


def save_succeeds(stack: Stack, title: str) -> dict:
    post = stack.site.insert_post(post_title="Before", post_status="publish")
    saved = stack.site.update_post(post["id"], post_title=title)
    assert saved["title"] == title and saved["status"] == "publish"
    return saved


def test_a_revoked_key_still_saves_and_says_the_key_was_revoked_or_expired(
    configured: Stack, php_log_is_clean
):
    stack = configured
    key = stack.new_key(stack.alpha)
    with stack.http() as http:
        revoked = http.delete(f"/api/account/apikeys/{key['id']}", headers=stack.alpha.headers)
    assert revoked.status_code == 200
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=key["key"])
    before = len(stack.purges(stack.alpha))

    save_succeeds(stack, "Saved with a revoked key")

    notice = notice_once_sent(stack)
    assert f"refused the API key {key['keyPrefix']}…" in notice
    assert "revoked or has expired" in notice
    assert key["key"] not in notice
    assert scheduled_retries(stack) == []  # a refusal is final: no retry
    assert len(stack.purges(stack.alpha)) == before


def test_a_key_without_the_sites_zone_still_saves_and_names_the_missing_zone(
    configured: Stack, php_log_is_clean
):
    stack = configured
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=stack.beta.key["key"])

    save_succeeds(stack, "Saved with another site's key")

    notice = notice_once_sent(stack)
    assert f"may not purge {ALPHA_HOST}: none of its zones covers this site" in notice
    assert scheduled_retries(stack) == []


def test_a_key_used_from_an_address_it_does_not_allow_says_so(configured: Stack, php_log_is_clean):
    stack = configured
    key = stack.new_key(stack.alpha, allowedCidrs=["192.0.2.0/24"])
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=key["key"])

    save_succeeds(stack, "Saved from an address the key does not allow")

    notice = notice_once_sent(stack)
    assert f"refused the API key {key['keyPrefix']}…: This key cannot be used from your" in notice
    assert scheduled_retries(stack) == []


def test_with_the_api_down_the_save_succeeds_and_retries_end_after_a_bound(
    configured: Stack, php_log_is_clean
):
    stack = configured
    down = f"http://127.0.0.1:{free_port()}"
    stack.site.set_plugin(api_url=down, api_key=stack.alpha.key["key"])

    save_succeeds(stack, "Saved while the API is down")

    notice = notice_once_sent(stack)
    assert f"could not be reached at {down}" in notice
    assert "will try again" in notice
    rounds = 0
    while scheduled_retries(stack):
        rounds += 1
        assert rounds <= 3, "retried more than three times"
        stack.site.php(RUN_RETRY)
    assert rounds == 3
    final = stack.site.notice()
    assert final is not None and "did not purge the changed pages" in final


class Busy(ThreadingHTTPServer):
    """A stand-in for the API that is busy (``503`` with ``Retry-After: 1``) at first."""

    daemon_threads = True

    def __init__(self, busy_answers: int) -> None:
        super().__init__(("127.0.0.1", free_port()), BusyHandler)
        self.busy_answers = busy_answers
        self.requests: list[dict] = []


class BusyHandler(BaseHTTPRequestHandler):
    server: Busy

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.requests.append(json.loads(self.rfile.read(length)))
        if len(self.server.requests) <= self.server.busy_answers:
            status, body, headers = (
                503,
                {"succeeded": False, "message": "Busy."},
                {"Retry-After": "1"},
            )
        else:
            status, body, headers = (
                202,
                {"succeeded": True, "message": "Purge queued", "data": {}},
                {},
            )
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_api() -> Iterator[Busy]:
    server = Busy(busy_answers=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_busy_api_is_asked_again_after_its_retry_after(
    configured: Stack, busy_api: Busy, php_log_is_clean
):
    stack = configured
    post = stack.site.insert_post(post_title="Before", post_status="publish")
    stack.site.set_plugin(
        api_url=f"http://127.0.0.1:{busy_api.server_address[1]}", api_key=stack.alpha.key["key"]
    )

    saved = stack.site.update_post(post["id"], post_title="Saved while the API is busy")

    wait_for(lambda: len(busy_api.requests) >= 2, what="the second attempt")
    assert len(busy_api.requests) == 2
    assert busy_api.requests[0] == busy_api.requests[1]
    assert saved["url"] in busy_api.requests[1]["urls"]
    assert stack.site.notice() is None
    assert scheduled_retries(stack) == []
