"""Driving the panel in Debian's Chromium: launch, and the steps tests share."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

from tests.support import PASSWORD

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


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)


def fresh_email() -> str:
    return f"panel-{uuid.uuid4().hex[:12]}@example.com"


def sign_up(page: Any, email: str, password: str = PASSWORD) -> None:
    """Create an account in the panel; it lands signed in on Account Settings."""
    page.goto("/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/account")
    page.get_by_text("0 of 10 active keys").wait_for()


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
