"""Take the panel screenshots shown in the README: ``make screenshots``.

Runs a throwaway ``paradarum serve`` on a temporary SQLite file, fills one account with
example zones and keys (expiring, restricted, rolled, one found in public), and
photographs the page, the zones, a key row with its use chart, the one-time key dialog,
the Purge section (delivering to two stand-in cache nodes, one of which holds its
answer while the picture is taken), the members and the webhooks (two local receivers,
one failing on purpose) at desktop and phone widths. The key shown in the
dialog is replaced, before the picture is taken, by an illustration whose checksum is
wrong on purpose, so that no picture in the repository holds a key that any Paradarum
server (or a secret scanner) would accept. The use counts and "last used" details are
illustrations, written to the throwaway database.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from paradarum import keys
from tests.browser.harness import (
    DESKTOP,
    PHONE,
    add_usage,
    chromium_problem,
    generate_key,
    launch,
    open_section,
    revoke_as_leaked,
    set_last_used,
    sign_in,
)
from tests.cache import RecordingNode, recording_node
from tests.support import (
    activate_zone,
    bearer,
    create_key,
    login,
    new_account,
    run,
    runtime_for,
    start_server,
)
from tests.webhooks import Receiver, receiver

EMAIL = "ada@example.com"


def illustration() -> str:
    """A key's shape with a checksum that does not match its body: no server accepts it."""
    while True:
        body = keys.generate()[len(keys.PREFIX) : len(keys.PREFIX) + keys.BODY_LENGTH]
        candidate = keys.PREFIX + body + keys.checksum(body[::-1])
        if not keys.is_well_formed(candidate):
            return candidate


LEAK_URL = "https://github.com/example/shop-theme/blob/main/deploy.sh"


def daily_use(seed: int, busy: int, *, days: int = 30, refusals: bool = False) -> dict:
    """A plausible month of requests: weekdays busier than weekends."""
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    use = {}
    for back in range(days):
        day = today - timedelta(days=back)
        weekday = day.weekday() < 5
        ok = int(busy * (1.0 if weekday else 0.35) * rng.uniform(0.6, 1.3))
        refused = rng.choice([0, 0, 0, 1, 3]) if refusals else 0
        use[day] = (ok, refused)
    return use


def fill_account(base_url: str, env: dict[str, str]) -> None:
    now = datetime.now(UTC)
    with httpx.Client(base_url=base_url, timeout=10) as api:
        token = new_account(api, EMAIL)
        auth = bearer(token)
        activate_zone(env, EMAIL, "www.example.com")
        api.post("/api/account/zones", json={"hostname": "shop.example.com"}, headers=auth)
        zones = {
            zone["hostname"]: zone["id"]
            for zone in api.get("/api/account/zones", headers=auth).json()["data"]
        }

        staging = create_key(api, token, "Staging site")
        api.delete(f"/api/account/apikeys/{staging['id']}", headers=auth)
        create_key(api, token, "Old laptop backup script")
        bootstrap = create_key(api, token, "CI bootstrap")
        preview = api.post(
            "/api/account/apikeys",
            json={"name": "Preview deploys"},
            headers=bearer(bootstrap["key"]),
        ).json()["data"]
        revoke_as_leaked(env, bootstrap, LEAK_URL, [preview])
        sync = create_key(api, token, "Image CDN sync")
        add_usage(env, sync["id"], daily_use(3, 40, days=20))
        api.post(
            f"/api/account/apikeys/{sync['id']}/roll",
            json={"gracePeriodMinutes": 10080},
            headers=auth,
        )
        deploy = api.post(
            "/api/account/apikeys",
            json={
                "name": "Deploy script (GitHub Actions)",
                "expiresAt": (now + timedelta(days=6)).isoformat(),
                "permissions": "purge",
                "zoneIds": [zones["www.example.com"]],
            },
            headers=auth,
        ).json()["data"]
        add_usage(env, deploy["id"], daily_use(1, 12))
        set_last_used(env, deploy["id"], now - timedelta(hours=3), "198.51.100.23", "curl/8.5.0")
        wordpress = api.post(
            "/api/account/apikeys",
            json={
                "name": "WordPress purge plugin",
                "expiresAt": (now + timedelta(days=90)).isoformat(),
                "permissions": "purge",
                "allowedCidrs": ["203.0.113.0/24"],
            },
            headers=auth,
        ).json()["data"]
        add_usage(env, wordpress["id"], daily_use(2, 180, refusals=True))
        set_last_used(
            env,
            wordpress["id"],
            now - timedelta(minutes=4),
            "203.0.113.10",
            "WordPress/6.6.2; https://shop.example.com",
        )


def fill_purges(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as api:
        auth = bearer(login(api, EMAIL))
        for body in (
            {"tags": ["product-42", "category-shoes"]},
            {"urls": ["https://www.example.com/", "https://www.example.com/blog/hello-world"]},
        ):
            assert api.post("/api/account/purge", json=body, headers=auth).status_code == 202


TEAM = (("grace@example.com", "developer"), ("lin@example.com", "purger"))


def fill_members(base_url: str, env: dict[str, str]) -> None:
    """Colleagues who accepted their invitations (the links' tokens made by a runtime of
    our own, as the outbox would mail them), and one invitation still pending."""
    from paradarum.tokens import INVITATION

    with httpx.Client(base_url=base_url, timeout=30) as api, runtime_for(env) as runtime:
        owner = bearer(login(api, EMAIL))
        for email, role in TEAM:
            made = api.post(
                "/api/account/invitations", json={"email": email, "role": role}, headers=owner
            ).json()["data"]
            token = runtime.tokens.issue_email_token(
                subject=made["id"],
                email=email,
                now=runtime.clock(),
                lifetime=timedelta(days=7),
                purpose=INVITATION,
            )
            session = bearer(new_account(api, email))
            accepted = api.post("/api/invitations/accept", json={"token": token}, headers=session)
            assert accepted.status_code == 200, accepted.text
        api.post(
            "/api/account/invitations",
            json={"email": "sam@example.com", "role": "viewer"},
            headers=owner,
        )


# The endpoints as the pictures show them: the receivers really are on 127.0.0.1 (the
# server may send there by its allowed-networks setting), renamed afterwards in the
# throwaway database to the addresses a customer would have.
SHOWN_ENDPOINTS = {
    "ok": "https://hooks.example.com/paradarum",
    "failing": "https://crm.example.net/api/paradarum-events",
}


def fill_webhooks(base_url: str, env: dict[str, str], ok: Receiver, failing: Receiver) -> None:
    """Two endpoints: one whose receiver took a revoked key's event, and one whose
    receiver keeps failing a rolled key's (retrying, with the receiver's 500)."""
    from sqlalchemy import select, update

    from paradarum.db.tables import webhook_deliveries, webhook_endpoints

    with httpx.Client(base_url=base_url, timeout=30) as api:
        token = login(api, EMAIL)
        auth = bearer(token)
        ids = {}
        for name, receiver, events in (
            ("ok", ok, ["api_key.revoked", "api_key.leaked", "api_key.expiring"]),
            ("failing", failing, ["api_key.rolled", "member.joined", "member.removed"]),
        ):
            made = api.post(
                "/api/account/webhooks", json={"url": receiver.url, "events": events}, headers=auth
            )
            assert made.status_code == 201, made.text
            ids[name] = made.json()["data"]["id"]
        staging = create_key(api, token, "Staging deploy")
        rolled = api.post(
            f"/api/account/apikeys/{staging['id']}/roll",
            json={"gracePeriodMinutes": 0},
            headers=auth,
        ).json()["data"]
        api.delete(f"/api/account/apikeys/{rolled['id']}", headers=auth)

    def settled(conn: Any) -> bool:
        d = webhook_deliveries.c
        rows = conn.execute(select(d.response_status)).all()
        return len(rows) == 2 and all(row.response_status for row in rows)

    def rename(conn: Any) -> None:
        for name, endpoint_id in ids.items():
            conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(url=SHOWN_ENDPOINTS[name])
            )
        # The failed attempt's retry waits while the pictures are taken: its answer
        # stays the receiver's 500, not a lookup of the shown (made-up) hostname.
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.status == "queued")
            .values(next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
        )

    with runtime_for(env) as runtime:
        deadline = time.monotonic() + 60
        while not run(runtime.db.read(settled)):
            if time.monotonic() > deadline:
                raise SystemExit("the webhook deliveries did not settle")
            time.sleep(0.2)
        run(runtime.db.write(rename))


def shoot_webhooks(page: Any, out: Path, suffix: str) -> None:
    open_section(page, "Webhooks")
    page.locator("#webhooks-loading").wait_for(state="hidden")
    for name, status in (("failing", "Retrying"), ("ok", "Delivered")):
        item = page.locator("#webhooks-body > li", has_text=SHOWN_ENDPOINTS[name])
        item.get_by_text("Delivery log").click()
        item.locator("tbody tr", has_text=status).wait_for()
    target = out / f"panel-webhooks{suffix}.png"
    if suffix:  # a phone: the endpoints and their logs, the part that changes shape
        page.locator("#webhooks-body").screenshot(path=str(target))
    else:
        page.screenshot(path=str(target), full_page=True)


def shoot_members(page: Any, out: Path, suffix: str) -> None:
    open_section(page, "Members")
    page.locator("#members-body tr").nth(2).wait_for()
    page.locator("#invitations-body tr").first.wait_for()
    page.screenshot(path=str(out / f"panel-members{suffix}.png"), full_page=True)


def shoot_purge(page: Any, out: Path, suffix: str, held: RecordingNode) -> None:
    open_section(page, "Purge")
    page.locator("#purges-loading").wait_for(state="hidden")
    held.hold()
    try:
        page.get_by_label("URLs").fill("https://www.example.com/shop/summer-sale")
        page.get_by_role("button", name="Purge URLs").click()
        latest = page.locator("#purges-body > li").first
        latest.locator('[data-node="node-1"]', has_text="Done").wait_for()
        latest.locator('[data-node="node-2"]', has_text="Sending").wait_for()
        page.get_by_label("URLs").fill(
            "https://www.example.com/blog/\nhttps://shop.example.com/cart"
        )
        page.locator("#purge-urls-check li").first.wait_for()
        page.screenshot(path=str(out / f"panel-purge{suffix}.png"), full_page=True)
    finally:
        held.release()


def shoot(
    browser: Any,
    base_url: str,
    out: Path,
    viewport: dict[str, int],
    suffix: str,
    held: RecordingNode,
) -> None:
    phone = viewport is PHONE
    context = browser.new_context(
        base_url=base_url,
        viewport=viewport,
        device_scale_factor=2 if phone else 1,
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.goto("/account")
    sign_in(page, EMAIL)
    page.wait_for_url("**/account/api-keys")
    page.locator("#keys-body tr").first.wait_for()
    page.locator(".usage svg").first.wait_for()
    page.locator(".usage .muted").first.wait_for(state="detached")  # no eval: the CSP
    # A phone shows what fits on its screen; the desktop shot shows the whole page.
    page.screenshot(path=str(out / f"panel-keys{suffix}.png"), full_page=not phone)
    if phone:
        # A key as a phone shows it: one card per key.
        card = page.locator("#keys-body tr", has_text="WordPress purge plugin")
        card.screenshot(path=str(out / "panel-key-row-phone.png"))
    else:
        # The column heads and the row of a restricted, expiring key with its use chart.
        clip = page.evaluate(
            """() => {
                const table = document.getElementById("keys-table").getBoundingClientRect();
                const row = [...document.querySelectorAll("#keys-body tr")]
                    .find((tr) => tr.textContent.includes("WordPress purge plugin"))
                    .getBoundingClientRect();
                return {x: table.left - 8, y: table.top + scrollY - 8,
                        width: table.width + 16, height: row.bottom - table.top + 16};
            }"""
        )
        page.screenshot(path=str(out / "panel-key-row.png"), clip=clip, full_page=True)
    page.evaluate("scrollTo(0, 0)")
    generate_key(page, "Image optimizer")
    dialog = page.get_by_role("dialog", name="Your new API key")
    dialog.get_by_role("button", name="Copy").click()
    dialog.get_by_role("button", name="Copied").wait_for()
    field = dialog.get_by_role("textbox", name="API key")
    field.evaluate("(element, value) => { element.value = value; }", illustration())
    page.screenshot(path=str(out / f"panel-new-key{suffix}.png"))
    dialog.get_by_role("button", name="Done").click()
    open_section(page, "Zones")
    page.locator("#zones-loading").wait_for(state="hidden")
    page.locator("#zones").screenshot(path=str(out / f"panel-zones{suffix}.png"))
    shoot_purge(page, out, suffix, held)
    shoot_members(page, out, suffix)
    shoot_webhooks(page, out, suffix)
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    problem = chromium_problem()
    if problem:
        raise SystemExit(problem)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        recording_node() as first,
        recording_node() as second,
        receiver() as hooks,
        receiver(mode="fail") as failing_hooks,
    ):
        env = {
            "PARADARUM_DATA_DIR": str(Path(tmp) / "data"),
            "PARADARUM_ACCESS_LOG": "false",
            "PARADARUM_CACHE_NODES": f"{first.base_url},{second.base_url}",
            "PARADARUM_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        }
        server = start_server(env, log_path=Path(tmp) / "server.log")
        try:
            fill_account(server.base_url, env)
            fill_purges(server.base_url)
            fill_members(server.base_url, env)
            fill_webhooks(server.base_url, env, hooks, failing_hooks)
            with sync_playwright() as playwright:
                browser = launch(playwright)
                shoot(browser, server.base_url, args.out, DESKTOP, "", second)
                shoot(browser, server.base_url, args.out, PHONE, "-phone", second)
                browser.close()
        finally:
            server.stop()
    print(f"Screenshots written to {args.out}/")


if __name__ == "__main__":
    main()
