"""The panel's pages and assets.

The pages are static HTML that holds no data: the browser fetches everything from the
JSON API with the panel session's JWT, kept in ``sessionStorage`` and sent as
``Authorization: Bearer``. So the panel follows exactly the rules that scripts do (there
is no second implementation of any of them), and since no cookie is involved, another
origin cannot make a browser act for a signed-in person (no CSRF).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import get_args

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paradarum.config import Settings
from paradarum.messages import (
    INVITATION_PATH,
    RESET_PASSWORD_PATH,
    SIGN_IN_LINK_PATH,
    VERIFY_EMAIL_PATH,
)
from paradarum.services import purges, validation
from paradarum.web import errors as web_errors
from paradarum.web.request import Request
from paradarum.web.responses import Response, envelope_error
from paradarum.web.routing import Routes
from paradarum_client.models import WebhookEvent

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"
HTML = b"text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Section:
    """One part of Account settings: its own URL, ``/account/<slug>``, whose page is the
    settings layout around ``templates/sections/<slug>.html``, run by
    ``static/sections/<slug>.js``."""

    slug: str
    # Its name in the navigation and in the page's title.
    label: str

    @property
    def path(self) -> str:
        return f"{SETTINGS}/{self.slug}"

    @property
    def template(self) -> str:
        return f"sections/{self.slug}.html"

    @property
    def script(self) -> str:
        return f"sections/{self.slug}.js"


SETTINGS = "/account"
# Account settings, in the order the navigation lists them: a section is added here
# (with its template and its script), and every page's navigation shows it.
SECTIONS = (
    Section("api-keys", "API keys"),
    Section("zones", "Zones"),
    Section("purge", "Purge"),
    Section("members", "Members"),
    Section("security", "Security"),
    Section("ci", "CI access"),
    Section("webhooks", "Webhooks"),
    Section("security-log", "Security log"),
)
SETTINGS_LAYOUT = "settings.html"


@dataclass(frozen=True, slots=True)
class CardPage:
    """A page of one card outside Account settings (most are opened by a link from an
    email): the layout ``card.html`` (head, brand) around ``templates/cards/<name>.html``,
    run by ``static/<name>.js``."""

    name: str
    # The page's title, before " · Paradarum".
    title: str

    @property
    def template(self) -> str:
        return f"cards/{self.name}.html"

    @property
    def script(self) -> str:
        return f"{self.name}.js"


CARD_LAYOUT = "card.html"

# URL path -> its page (a whole template, or a card in the card layout), for the pages
# outside Account settings. Every page is public: the script on it sends a signed-out
# visitor to /signin?next=<path>, and back after signing in.
PAGES: dict[str, str | CardPage] = {
    "/signin": "signin.html",
    "/signup": "signup.html",
    # The page the emailed verification link opens (the token is in its fragment).
    VERIFY_EMAIL_PATH: CardPage("verify-email", "Verify your email address"),
    "/forgot-password": CardPage("forgot-password", "Forgot your password?"),
    # The page the emailed reset link opens (the token in its fragment, likewise).
    RESET_PASSWORD_PATH: CardPage("reset-password", "Choose a new password"),
    # The one-time sign-in link, mailed while an account is under attack.
    SIGN_IN_LINK_PATH: "confirm-sign-in.html",
    # The page the emailed invitation link opens (the token is in its fragment).
    INVITATION_PATH: CardPage("invitations", "Invitation"),
}
# Where "/" and "/account" lead: the first section.
HOME = SECTIONS[0].path

# Pages are never stored, so that "back" rebuilds them rather than restoring a page
# that once showed a new key. Assets are revalidated (ETag) so an upgrade shows at once.
PAGE_HEADERS = {"Cache-Control": "no-store"}
ASSET_CACHE_CONTROL = (b"cache-control", b"no-cache")


# What each webhook event means, beside its name in the form that subscribes to it.
WEBHOOK_EVENT_HINTS: dict[str, str] = {
    "api_key.created": "a key was created",
    "api_key.revoked": "a key was revoked",
    "api_key.leaked": "a key was found in public and revoked",
    "api_key.expiring": "a key expires in 7 days",
    "api_key.expired": "a key expired",
    "api_key.rolled": "a key was replaced by a new one",
    "member.joined": "someone joined the account",
    "member.removed": "someone left or was removed",
    "zone.verified": "a zone's DNS record was verified",
}


def webhook_event_checks() -> str:
    """A checkbox per event an endpoint may subscribe to, from the one definition of
    them (the API's ``WebhookEvent``)."""
    lines = []
    for event in get_args(WebhookEvent):
        name = escape(event)
        lines.append(
            f'                <label class="check"><input type="checkbox" name="events" '
            f'value="{name}"> <span><code>{name}</code> '
            f'<span class="muted">{escape(WEBHOOK_EVENT_HINTS[event])}</span></span></label>'
        )
    return "\n".join(lines)


@cache
def render(template: str, *, signup_enabled: bool) -> bytes:
    """The page, with the few facts it states taken from where the rule lives."""
    text = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    text = text.replace("{{password_min}}", str(validation.PASSWORD_MIN))
    text = text.replace("{{signup}}", "on" if signup_enabled else "off")
    text = text.replace("{{purge_max}}", str(purges.MAX_TARGETS))
    text = text.replace("{{webhook_events}}", webhook_event_checks())
    return text.encode()


@cache
def render_page(page: str | CardPage, *, signup_enabled: bool) -> bytes:
    """A page outside Account settings; a card inside the card layout."""
    if isinstance(page, str):
        return render(page, signup_enabled=signup_enabled)
    layout = render(CARD_LAYOUT, signup_enabled=signup_enabled).decode()
    card = render(page.template, signup_enabled=signup_enabled).decode()
    text = (
        layout.replace("{{title}}", escape(page.title))
        .replace("{{script}}", escape(page.script))
        .replace("{{card}}\n", card)
    )
    return text.encode()


def navigation(current: Section) -> str:
    """The settings navigation, the current section marked for the eye and for screen
    readers."""
    items = []
    for section in SECTIONS:
        mark = ' aria-current="page"' if section is current else ""
        items.append(f'<li><a href="{escape(section.path)}"{mark}>{escape(section.label)}</a></li>')
    return "\n".join(items)


@cache
def render_section(section: Section, *, signup_enabled: bool) -> bytes:
    """A settings page: the shared layout (top bar, navigation, the email banner) around
    the section's own template and script."""
    layout = render(SETTINGS_LAYOUT, signup_enabled=signup_enabled).decode()
    body = render(section.template, signup_enabled=signup_enabled).decode()
    text = (
        layout.replace("{{title}}", escape(section.label))
        .replace("{{script}}", escape(section.script))
        .replace("{{navigation}}", navigation(section))
        .replace("{{section}}", body)
    )
    return text.encode()


def not_found_page() -> Response:
    """The page a browser gets at an address that is no page: a way home."""
    body = render("not-found.html", signup_enabled=True)
    return Response(404, body, PAGE_HEADERS, content_type=HTML)


def page_routes(settings: Settings) -> Routes:
    routes = Routes(tag="panel", public=False)

    def add(path: str, template: str | CardPage) -> None:
        async def page(_request: Request) -> Response:
            body = render_page(template, signup_enabled=settings.signup_enabled)
            return Response(200, body, PAGE_HEADERS, content_type=HTML)

        name = template if isinstance(template, str) else template.template
        routes.get(path, permission=None, summary=f"panel page {name}")(page)

    def add_section(section: Section) -> None:
        async def page(_request: Request) -> Response:
            body = render_section(section, signup_enabled=settings.signup_enabled)
            return Response(200, body, PAGE_HEADERS, content_type=HTML)

        routes.get(section.path, permission=None, summary=f"panel settings {section.slug}")(page)

    for path, template in PAGES.items():
        add(path, template)
    for section in SECTIONS:
        add_section(section)

    async def home(_request: Request) -> Response:
        return Response(302, b"", {"Location": HOME}, content_type=HTML)

    routes.get("/", permission=None, summary="panel home")(home)
    routes.get(SETTINGS, permission=None, summary="panel settings")(home)

    return routes


class Assets:
    """``/static/...``: the panel's CSS, JavaScript and images (Starlette's
    ``StaticFiles``: ETags, ranges, no directory listing), revalidated on use."""

    prefix = "/static/"

    def __init__(self) -> None:
        self._files: ASGIApp = StaticFiles(directory=STATIC_DIR, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def no_cache(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message["headers"] if h[0] != b"cache-control"]
                message["headers"] = [*headers, ASSET_CACHE_CONTROL]
            await send(message)

        child = {**scope, "path": scope["path"][len(self.prefix) - 1 :], "root_path": ""}
        try:
            await self._files(child, receive, no_cache)
        except HTTPException as exc:  # no such file (404), or not GET/HEAD (405)
            message = web_errors.NOT_FOUND if exc.status_code == 404 else exc.detail
            await envelope_error(exc.status_code, message, headers=exc.headers)(send)
