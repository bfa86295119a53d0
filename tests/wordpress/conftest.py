"""One stack per test module: a ``paradarum serve``, a Varnish with the shipped VCL, and
a WordPress site behind it with the plugin installed from its zip; two accounts, each
with a verified zone: ``alpha`` owns the WordPress site, ``beta`` another site cached by
the same Varnish."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.harness import DESKTOP, chromium_problem, launch
from tests.cache import Varnish, running_varnish
from tests.support import (
    IN_CI,
    ServerProcess,
    activate_zone,
    bearer,
    free_port,
    login,
    signup,
    start_server,
)
from tests.wordpress.harness import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    WordPress,
    build_plugin_zip,
    install,
    mariadb_database,
    prepare_wordpress,
    require_wordpress,
    start_php,
    wait_for,
)

ALPHA_HOST = "blog.alpha.example"
BETA_HOST = "www.beta.example"


@dataclass
class Account:
    email: str
    host: str
    token: str
    zone_id: int
    key: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Stack:
    api: ServerProcess
    env: dict[str, str]
    varnish: Varnish
    site: WordPress
    alpha: Account
    beta: Account

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.base_url, timeout=20)

    def new_key(self, account: Account, **settings: Any) -> dict[str, Any]:
        """A key of ``account``: purge-only and restricted to its zone unless told."""
        body = {"name": "WordPress", "permissions": "purge", "zoneIds": [account.zone_id]}
        body.update(settings)
        with self.http() as http:
            response = http.post("/api/account/apikeys", json=body, headers=account.headers)
        assert response.status_code == 201, response.text
        return dict(response.json()["data"])

    def purges(self, account: Account) -> list[dict[str, Any]]:
        """The account's purges, newest first."""
        with self.http() as http:
            response = http.get("/api/account/purges?limit=200", headers=account.headers)
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def delivered_after(self, account: Account, before: int, count: int = 1) -> list[dict]:
        """The account's purges made after its first ``before``, once ``count`` of them
        exist and all are delivered (or failed): the plugin sends in the background."""

        def delivered() -> list[dict] | None:
            purges = self.purges(account)
            new = purges[: len(purges) - before]
            if len(new) >= count and all(p["status"] in ("done", "failed") for p in new):
                return new
            return None

        return list(wait_for(delivered, timeout=60, what="the purge delivered"))

    def page(self, path_or_url: str, host: str | None = None) -> httpx.Response:
        """A visitor's request through Varnish (for the WordPress site unless ``host``)."""
        path = path_or_url
        if path.startswith("http"):
            path = path.split(self.site.url, 1)[-1]
        authority = self.site.url.split("://", 1)[1] if host is None else host
        return httpx.get(self.varnish.base_url + path, headers={"Host": authority}, timeout=30)

    def cache_state(self, path_or_url: str, host: str | None = None) -> str:
        return str(self.page(path_or_url, host).headers["x-cache"])

    def warm(self, path_or_url: str, host: str | None = None) -> None:
        """Fetch until Varnish serves it from cache."""
        self.page(path_or_url, host)
        state = self.cache_state(path_or_url, host)
        assert state == "HIT", f"{path_or_url} is not cached ({state})"


def _account(stack_env: dict[str, str], api: ServerProcess, email: str, host: str) -> Account:
    with httpx.Client(base_url=api.base_url, timeout=20) as http:
        signup(http, email)
        activate_zone(stack_env, email, host)
        token = login(http, email)
        zones = http.get("/api/account/zones", headers=bearer(token)).json()["data"]
        zone_id = next(zone["id"] for zone in zones if zone["hostname"] == host)
        # The least a WordPress site needs: purge only, its zone only, from its server only.
        created = http.post(
            "/api/account/apikeys",
            json={
                "name": "WordPress",
                "permissions": "purge",
                "zoneIds": [zone_id],
                "allowedCidrs": ["127.0.0.1/32"],
            },
            headers=bearer(token),
        )
        assert created.status_code == 201, created.text
    return Account(email, host, token, zone_id, created.json()["data"])


@pytest.fixture(scope="module")
def plugin_preinstalled() -> bool:
    """Whether the site starts with the plugin unpacked from its zip and activated
    (a module that uploads it as a new user would says False)."""
    return True


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, plugin_preinstalled: bool) -> Iterator[Stack]:
    require_wordpress()
    work = tmp_path_factory.mktemp("wordpress")
    env = {
        "PARADARUM_DATA_DIR": str(work / "data"),
        "PARADARUM_ACCESS_LOG": "false",
        "PARADARUM_PURGE_RETRY_SECONDS": "0.2",
    }
    site = WordPress(root=work / "site", host=ALPHA_HOST, url="", origin_port=free_port())
    with contextlib.ExitStack() as cleanup:
        db = cleanup.enter_context(mariadb_database())
        plugin_zip = build_plugin_zip(work / "plugin.zip") if plugin_preinstalled else None
        prepare_wordpress(site.root, db=db, plugin_zip=plugin_zip)
        start_php(site, work / "php.log")
        cleanup.callback(site.server.stop)
        varnish = cleanup.enter_context(running_varnish(site.origin_port, work / "varnish"))
        site.url = f"http://{ALPHA_HOST}:{varnish.base_url.rsplit(':', 1)[1]}"
        install(site, "Alpha Blog", activate=plugin_preinstalled)
        env["PARADARUM_CACHE_NODES"] = varnish.base_url
        api = start_server(env, log_path=work / "paradarum.log")
        cleanup.callback(api.stop)
        alpha = _account(env, api, "alpha@example.com", ALPHA_HOST)
        beta = _account(env, api, "beta@example.com", BETA_HOST)
        yield Stack(api, env, varnish, site, alpha, beta)


@pytest.fixture
def configured(stack: Stack) -> Iterator[Stack]:
    """The plugin set up as the guide says: the API address and alpha's purge-only key
    restricted to the site's zone; no failure notice; no retry waiting."""
    stack.site.define_constants()
    stack.site.set_plugin(api_url=stack.api.base_url, api_key=stack.alpha.key["key"])
    stack.site.php("wp_unschedule_hook( 'paradarum_retry_purge' );")
    yield stack
    stack.site.define_constants()


@pytest.fixture
def php_log_is_clean(stack: Stack) -> Iterator[None]:
    yield
    assert stack.site.plugin_warnings() == []


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    problem = chromium_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"Browser tests must run in CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The site's hostname resolves nowhere: the browser sends it to the local Varnish.
        chromium = launch(playwright, f"--host-resolver-rules=MAP {ALPHA_HOST} 127.0.0.1")
        yield chromium
        chromium.close()


@pytest.fixture
def admin(browser: Any, stack: Stack) -> Iterator[Any]:
    """A page signed in to wp-admin as the administrator."""
    context = browser.new_context(viewport=DESKTOP, base_url=stack.site.url)
    page = context.new_page()
    # Straight to a light admin page: the dashboard's widgets and scripts are not what the
    # plugin's tests are about, and on a busy machine they can take longer than a sign-in.
    page.goto("/wp-login.php?redirect_to=" + quote(f"{stack.site.url}/wp-admin/profile.php"))
    page.fill("#user_login", ADMIN_USER)
    page.fill("#user_pass", ADMIN_PASSWORD)
    page.click("#wp-submit")
    page.wait_for_url("**/wp-admin/profile.php", wait_until="domcontentloaded", timeout=60_000)
    page.locator("#wpadminbar").wait_for()
    yield page
    context.close()


__all__ = ["ALPHA_HOST", "BETA_HOST", "Account", "Path", "Stack"]
