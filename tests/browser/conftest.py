"""Browser fixtures: one real ``paradarum serve`` and one Chromium per module (Playwright's
sync API runs an event loop while it is open, which must not outlive the module),
and a fresh browser context (and account, made by each test) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.harness import CLIPBOARD, DESKTOP, chromium_problem, launch
from tests.mail import SmtpServer, smtp_server
from tests.support import IN_CI, ServerProcess, free_port, start_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = chromium_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"Browser tests must run in CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server_port() -> int:
    """The port the module's server listens on: chosen first, so that its settings
    (``server_overrides``) can name the server's own address."""
    return free_port()


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    """A mail relay for the modules whose server sends mail (``smtp.url()`` in their
    ``server_overrides``); ``smtp.links`` finds what it was sent."""
    with smtp_server(directory=tmp_path_factory.mktemp("smtp")) as server:
        yield server


@pytest.fixture(scope="module")
def server_overrides() -> dict[str, str]:
    """Settings a test module gives its server (override the fixture in the module)."""
    return {}


@pytest.fixture(scope="module")
def server_env(
    tmp_path_factory: pytest.TempPathFactory, server_overrides: dict[str, str]
) -> dict[str, str]:
    """The server's settings: also what a runtime of the test's own needs to reach
    its data (``tests.support.runtime_for``)."""
    data_dir = tmp_path_factory.mktemp("panel")
    return {
        "PARADARUM_DATA_DIR": str(data_dir / "data"),
        "PARADARUM_ACCESS_LOG": "false",
        # Every test signs up an account of its own, all from 127.0.0.1.
        "PARADARUM_SIGNUPS_PER_ADDRESS": "1000",
        **server_overrides,
    }


@pytest.fixture(scope="module")
def server(server_env: dict[str, str], server_port: int) -> Iterator[ServerProcess]:
    data_dir = Path(server_env["PARADARUM_DATA_DIR"]).parent
    process = start_server(server_env, log_path=data_dir / "server.log", port=server_port)
    yield process
    process.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """The JSON API, as a script would call it."""
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


class PageProblems:
    """What must never happen on a panel page: script errors, CSP violations, alerts."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.csp: list[str] = []

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def context(browser: Any, server: ServerProcess) -> Iterator[Any]:
    ctx = browser.new_context(base_url=server.base_url, viewport=DESKTOP, permissions=CLIPBOARD)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, problems: PageProblems) -> Iterator[Any]:
    tab = context.new_page()
    problems.watch(tab)
    yield tab
    assert problems.errors == [], f"script errors on the page: {problems.errors}"
    assert problems.csp == [], f"Content-Security-Policy violations: {problems.csp}"
    assert problems.dialogs == [], f"unexpected browser dialogs: {problems.dialogs}"
