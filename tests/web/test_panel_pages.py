"""The panel's pages and assets as HTTP sees them (the browser tests drive them)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import get_args

import pytest
from starlette.testclient import TestClient

from paradarum.services import audit, validation
from paradarum.web.app import create_app
from paradarum.web.panel import routes
from paradarum_client.models import WebhookEvent
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
PANEL_FILES = sorted(
    path
    for folder in (routes.STATIC_DIR, routes.TEMPLATES_DIR)
    for path in folder.rglob("*")
    if path.is_file()
)
SCRIPTS = sorted(routes.STATIC_DIR.rglob("*.js"))
HTML_OR_CODE_SINKS = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "eval(",
    "Function(",
)


@pytest.fixture
def panel(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path / "data", None))) as client:
        yield client


PAGE_PATHS = sorted([*routes.PAGES, *(section.path for section in routes.SECTIONS)])


def rendered(path: str) -> str:
    """A page's HTML as the server sends it."""
    for section in routes.SECTIONS:
        if section.path == path:
            return routes.render_section(section, signup_enabled=True).decode()
    return routes.render_page(routes.PAGES[path], signup_enabled=True).decode()


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_pages_are_html_with_a_strict_csp_no_framing_and_no_caching(panel, path):
    response = panel.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("path", ["/", "/account"])
def test_home_and_account_settings_lead_to_the_first_section(panel, path):
    response = panel.get(path, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == routes.SECTIONS[0].path == "/account/api-keys"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.nav: list[tuple[str, str, bool]] = []  # href, text, current
        self._in_nav = False
        self._link: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "nav":
            self._in_nav = True
        elif tag == "a" and self._in_nav:
            self._link = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False
        elif tag == "a":
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            href = self._link.get("href") or ""
            self.nav.append((href, data, self._link.get("aria-current") == "page"))


@pytest.mark.parametrize("section", routes.SECTIONS, ids=lambda section: section.slug)
def test_every_settings_page_lists_every_section_and_marks_its_own(panel, section):
    response = panel.get(section.path)
    assert response.status_code == 200
    links = _Links()
    links.feed(response.text)
    assert links.nav == [(other.path, other.label, other is section) for other in routes.SECTIONS]
    assert f"<title>{section.label} · Account settings · Paradarum</title>" in response.text
    assert f'src="/static/{section.script}"' in response.text
    assert (routes.TEMPLATES_DIR / section.template).is_file()
    assert (routes.STATIC_DIR / section.script).is_file()


CARD_PAGES = {
    path: page for path, page in routes.PAGES.items() if isinstance(page, routes.CardPage)
}


@pytest.mark.parametrize("path", sorted(CARD_PAGES))
def test_every_card_page_has_its_title_card_and_script_in_the_card_layout(panel, path):
    page = CARD_PAGES[path]
    response = panel.get(path)
    assert response.status_code == 200
    assert f"<title>{page.title} · Paradarum</title>" in response.text
    assert f'<script type="module" src="/static/{page.script}"></script>' in response.text
    card = routes.render(page.template, signup_enabled=True).decode()
    assert card.strip() and card in response.text
    assert (routes.STATIC_DIR / page.script).is_file()
    assert "{{" not in response.text


def test_the_webhooks_page_offers_every_event_the_api_takes_each_explained(panel):
    page = panel.get("/account/webhooks").text
    for event in get_args(WebhookEvent):
        assert f'name="events" value="{event}"' in page
        assert routes.WEBHOOK_EVENT_HINTS[event]


def test_sections_have_distinct_lowercase_slugs():
    slugs = [section.slug for section in routes.SECTIONS]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[a-z][a-z-]*", slug) for slug in slugs)


def test_assets_are_served_and_revalidated(panel):
    response = panel.get("/static/panel.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["cache-control"] == "no-cache"
    again = panel.get("/static/panel.css", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    script = panel.get("/static/sections/api-keys.js")
    assert script.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path", ["/static/../routes.py", "/static/%2e%2e/routes.py", "/static/missing.js"]
)
def test_only_files_of_the_static_folder_are_served(panel, path):
    assert panel.get(path).status_code == 404


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.assets: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "form" and values.get("method") != "post":
            # Should the script not run, a native submit must not put a password in a URL.
            self.problems.append("a <form> that is not method=post")
        if tag == "script":
            if not values.get("src") or values.get("type") != "module":
                self.problems.append("a <script> that is not an external module")
            self._in_script = True
        for name in ("src", "href"):
            value = values.get(name) or ""
            if value.startswith("/static/"):
                self.assets.append(value.removeprefix("/static/"))
            elif value.startswith(("http:", "https:", "//")):
                self.problems.append(f"an asset from elsewhere: {value}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script")


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_pages_have_no_inline_script_or_style_and_only_local_assets(path):
    markup = _Markup()
    markup.feed(rendered(path))
    assert markup.problems == []
    assert markup.assets
    for asset in markup.assets:
        assert (routes.STATIC_DIR / asset).is_file(), asset


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_never_turn_strings_into_html_or_code(script):
    source = script.read_text()
    for sink in HTML_OR_CODE_SINKS:
        assert sink not in source, f"{script.name} uses {sink}"


def test_security_log_names_every_audit_event():
    events = {str(event) for event in audit.Event}
    source = (routes.STATIC_DIR / "log.js").read_text()
    block = re.search(r"const EVENT_LABELS = \{(.*?)\};", source, re.S)
    assert block is not None
    labelled = set(re.findall(r'"([a-z_]+\.[a-z_]+)":', block.group(1)))
    assert labelled == events


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("template", ["signin.html", "signup.html"])
def test_sign_in_and_sign_up_pages_say_whether_the_server_takes_sign_ups(template, enabled):
    page = routes.render(template, signup_enabled=enabled).decode()
    assert f'data-signup="{"on" if enabled else "off"}"' in page
    assert "{{" not in page


def test_security_page_states_the_password_rule_where_it_lives():
    page = rendered("/account/security")
    assert f"At least {validation.PASSWORD_MIN} characters" in page
    assert "{{" not in page


def test_signup_page_states_the_password_rule_where_it_lives():
    page = routes.render("signup.html", signup_enabled=True).decode()
    assert f"At least {validation.PASSWORD_MIN} characters" in page
    assert "{{" not in page


def test_package_data_ships_every_panel_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["paradarum"]
    package = ROOT / "src" / "paradarum"
    # As setuptools reads them: a "*" never crosses a "/".
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    for path in PANEL_FILES:
        assert path in shipped, path.relative_to(package).as_posix()


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/acount", "/account/api-key", "/account/zones/", "/signin/x"])
def test_a_browser_at_a_mistyped_page_gets_a_page_not_found_with_a_way_home(panel, path):
    response = panel.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert "<h1>Page not found</h1>" in response.text
    assert 'href="/"' in response.text
    markup = _Markup()
    markup.feed(response.text)
    assert markup.problems == []


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/acount", BROWSER_ACCEPT),  # the API keeps its JSON, even for a browser
        ("/api/account/nope", "application/json"),
        ("/acount", "application/json"),  # a script asking for JSON gets JSON
        ("/acount", "*/*"),
    ],
)
def test_the_api_and_scripts_keep_the_json_404(panel, path, accept):
    response = panel.get(path, headers={"Accept": accept})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["succeeded"] is False
