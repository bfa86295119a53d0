"""docs/api.md documents every endpoint: a route added without its entry there fails
this test (``/openapi.json`` follows the routes by itself; the prose does not)."""

from __future__ import annotations

from pathlib import Path

from paradarum.web.app import API_MODULES

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_public_route_is_in_docs_api():
    lines = API_DOC.read_text().splitlines()
    text = "\n".join(lines)

    def documented(method: str, path: str) -> bool:
        # "`GET /path`", or a line on the path that names another method of it
        # ("`PATCH /path` renames one; `DELETE` removes it").
        return f"{method} {path}`" in text or any(
            f"{path}`" in line and f"`{method}`" in line for line in lines
        )

    missing = [
        f"{route.method} {route.path}"
        for module in API_MODULES
        for route in module.routes.routes
        if route.public and not documented(route.method, route.path)
    ]
    assert missing == [], f"not in docs/api.md: {', '.join(missing)}"
