"""The panel's pages and assets.

The pages are static HTML that holds no data: the browser fetches everything from the
JSON API with the panel session's JWT, kept in ``sessionStorage`` and sent as
``Authorization: Bearer``. So the panel follows exactly the rules that scripts do (there
is no second implementation of any of them), and since no cookie is involved, another
origin cannot make a browser act for a signed-in person (no CSRF).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from paradarum.services import validation

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"

# URL path -> template. Every page is public: the script on it sends a signed-out
# visitor to /signin?next=<path>, and back after signing in.
PAGES = {
    "/signin": "signin.html",
    "/signup": "signup.html",
    "/account": "account.html",
}
HOME = "/account"

# Pages are never stored, so that "back" rebuilds them rather than restoring a page
# that once showed a new key. Assets are revalidated (ETag) so an upgrade shows at once.
PAGE_HEADERS = {"Cache-Control": "no-store"}
ASSET_CACHE_CONTROL = "no-cache"

router = APIRouter(include_in_schema=False)
_assets = StaticFiles(directory=STATIC_DIR, check_dir=False)


@cache
def render(template: str) -> bytes:
    """The page, with the few facts it states taken from where the rule lives."""
    text = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    return text.replace("{{password_min}}", str(validation.PASSWORD_MIN)).encode()


def _add_page(path: str, template: str) -> None:
    async def page() -> Response:
        return HTMLResponse(render(template), headers=PAGE_HEADERS)

    router.add_api_route(path, page, methods=["GET"], name=f"panel-{template}")


for _path, _template in PAGES.items():
    _add_page(_path, _template)


@router.get("/", name="panel-home")
async def home() -> Response:
    return RedirectResponse(HOME, status_code=302)


@router.get("/static/{path:path}", name="panel-static")
async def asset(path: str, request: Request) -> Response:
    response = await _assets.get_response(path, request.scope)
    response.headers["Cache-Control"] = ASSET_CACHE_CONTROL
    return response
