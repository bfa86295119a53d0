"""Take the panel screenshots shown in the README: ``make screenshots``.

Runs a throwaway ``paradarum serve`` on a temporary SQLite file, fills one account with
example keys, and photographs the key list and the one-time key dialog at desktop and
phone widths. The key shown in the dialog is replaced, before the picture is taken, by
an illustration whose checksum is wrong on purpose, so that no picture in the repository
holds a key that any Paradarum server (or a secret scanner) would accept.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import httpx

from paradarum import keys
from tests.browser.harness import DESKTOP, PHONE, chromium_problem, generate_key, launch, sign_in
from tests.support import bearer, create_key, new_account, start_server

EMAIL = "ada@example.com"


def illustration() -> str:
    """A key's shape with a checksum that does not match its body: no server accepts it."""
    while True:
        body = keys.generate()[len(keys.PREFIX) : len(keys.PREFIX) + keys.BODY_LENGTH]
        candidate = keys.PREFIX + body + keys.checksum(body[::-1])
        if not keys.is_well_formed(candidate):
            return candidate


USES = {
    "WordPress purge plugin": "WordPress/6.6.2; https://shop.example.com",
    "Deploy script (GitHub Actions)": "curl/8.5.0",
}


def fill_account(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as api:
        token = new_account(api, EMAIL)
        staging = create_key(api, token, "Staging site")
        api.delete(f"/api/account/apikeys/{staging['id']}", headers=bearer(token))
        create_key(api, token, "Old laptop backup script")
        for name, user_agent in USES.items():
            key = create_key(api, token, name)["key"]
            headers = {**bearer(key), "User-Agent": user_agent}
            api.get("/api/account", headers=headers).raise_for_status()


def shoot(browser: Any, base_url: str, out: Path, viewport: dict[str, int], suffix: str) -> None:
    context = browser.new_context(
        base_url=base_url,
        viewport=viewport,
        device_scale_factor=2 if viewport is PHONE else 1,
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.goto("/account")
    sign_in(page, EMAIL)
    page.wait_for_url("**/account")
    page.locator("#keys-body tr").first.wait_for()
    page.locator("#log-loading").wait_for(state="hidden")
    # A phone shows what fits on its screen; the desktop shot shows the whole page.
    page.screenshot(path=str(out / f"panel-keys{suffix}.png"), full_page=viewport is DESKTOP)
    generate_key(page, "Image optimizer")
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    field = page.get_by_role("dialog", name="Your new API key").get_by_role(
        "textbox", name="API key"
    )
    field.evaluate("(element, value) => { element.value = value; }", illustration())
    page.screenshot(path=str(out / f"panel-new-key{suffix}.png"))
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
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            {"PARADARUM_DATA_DIR": str(Path(tmp) / "data"), "PARADARUM_ACCESS_LOG": "false"},
            log_path=Path(tmp) / "server.log",
        )
        try:
            fill_account(server.base_url)
            with sync_playwright() as playwright:
                browser = launch(playwright)
                shoot(browser, server.base_url, args.out, DESKTOP, "")
                shoot(browser, server.base_url, args.out, PHONE, "-phone")
                browser.close()
        finally:
            server.stop()
    print(f"Screenshots written to {args.out}/")


if __name__ == "__main__":
    main()
