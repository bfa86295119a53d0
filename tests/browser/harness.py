"""Driving the panel in Debian's Chromium: launch, and the steps tests share."""

from __future__ import annotations

import os
import re
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tests.support import PASSWORD, run, runtime_for

CHROMIUM = Path(os.environ.get("PARADARUM_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
KEY_PATTERN = re.compile(r"^pdm_[A-Za-z0-9]{28}$")
ANY_KEY = re.compile(r"pdm_[A-Za-z0-9]{28}")
CLIPBOARD = ["clipboard-read", "clipboard-write"]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}


def chromium_problem() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    return None


def launch(playwright: Any, *extra_args: str) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*LAUNCH_ARGS, *extra_args]
    )


def fresh_email() -> str:
    return f"panel-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(page: Any, email: str, password: str = PASSWORD) -> None:
    """Create an account in the panel; it lands signed in on Account Settings."""
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/account/api-keys")
    page.get_by_text("0 of 10 active keys").wait_for()


def open_section(page: Any, label: str) -> None:
    """Go to a section of Account settings the way a person does: its link in the
    settings navigation."""
    nav = page.get_by_role("navigation", name="Account settings")
    link = nav.get_by_role("link", name=label, exact=True)
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{href}")
    from playwright.sync_api import expect

    expect(link).to_have_attribute("aria-current", "page")


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def generate_key(page: Any, name: str) -> str:
    """Generate a key in the panel and return the raw key the dialog shows (left open)."""
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Generate").click()
    dialog = page.get_by_role("dialog", name="Your new API key")
    dialog.wait_for()
    return str(dialog.get_by_role("textbox", name="API key").input_value())


def visible_text_and_values(page: Any) -> str:
    """Everything the page holds as text: its HTML, its rendered text, its fields' values."""
    values = page.evaluate(
        "() => [...document.querySelectorAll('input, textarea')].map((e) => e.value).join(' ')"
    )
    return "\n".join([page.content(), page.evaluate("document.body.innerText"), values])


# -- what only Paradarum itself writes (a runtime of the test's own on the server's data)


def revoke_as_leaked(
    env: dict[str, str], leaked: dict[str, Any], url: str, created_with_it: list[dict[str, Any]]
) -> None:
    """What secret scanning does to a key found in public, and to the keys created with
    it: revoked as ``leaked`` with the URL, and a ``key.leaked`` entry in the log."""
    from sqlalchemy import select, update

    from paradarum.db.tables import api_keys
    from paradarum.services import audit
    from paradarum.services.context import ClientInfo

    with runtime_for(env) as runtime:
        now = runtime.clock()
        ids = [leaked["id"], *(key["id"] for key in created_with_it)]

        def work(conn: Any) -> None:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id.in_(ids))
                .values(revoked_at=now, revoked_reason="leaked", revoked_detail=url)
            )
            account_id = conn.execute(
                select(api_keys.c.account_id).where(api_keys.c.id == leaked["id"])
            ).scalar_one()
            with_it = ", ".join(key["keyPrefix"] for key in created_with_it)
            audit.record(
                conn,
                account_id=account_id,
                event=audit.Event.KEY_LEAKED,
                at=now,
                client=ClientInfo(),
                actor_type=audit.Actor.SYSTEM,
                key_id=leaked["id"],
                key_prefix=leaked["keyPrefix"],
                detail=f"Found public at {url}."
                + (f" Revoked with it: {with_it}." if with_it else ""),
            )

        run(runtime.db.write(work))


def add_usage(env: dict[str, str], key_id: int, days: dict[date, tuple[int, int]]) -> None:
    """Daily counts of a key's requests (successes, refusals), as the flush writes them."""
    from sqlalchemy import insert

    from paradarum.db.tables import key_usage_daily

    rows = [
        {"key_id": key_id, "day": day, "successes": ok, "refusals": refused}
        for day, (ok, refused) in days.items()
    ]

    def work(conn: Any) -> None:
        conn.execute(insert(key_usage_daily), rows)

    with runtime_for(env) as runtime:
        run(runtime.db.write(work))


def set_last_used(
    env: dict[str, str], key_id: int, at: datetime, address: str, user_agent: str
) -> None:
    """Where and when a key was last used, as if a request from ``address`` had made it."""
    from sqlalchemy import update

    from paradarum.db.tables import api_keys

    def work(conn: Any) -> None:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(last_used_at=at, last_used_address=address, last_used_user_agent=user_agent)
        )

    with runtime_for(env) as runtime:
        run(runtime.db.write(work))
