"""The one response envelope: ``{"succeeded", "message", "data"[, "errors"]}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store"}


def ok(
    data: Any, message: str = "OK", *, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"succeeded": True, "message": message, "data": data}, status_code=status, headers=headers
    )


def fail(
    status: int,
    message: str,
    *,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"succeeded": False, "message": message, "data": None}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def next_page_link(request: Request, cursor: str | None) -> dict[str, str] | None:
    """An RFC 8288 ``Link: <...>; rel="next"`` header: this request's path and
    query with ``cursor`` replaced. A path-absolute reference, so that it stays
    right behind proxies that rewrite the host."""
    if not cursor:
        return None
    url = request.url.include_query_params(cursor=cursor)
    return {"Link": f'<{url.path}?{url.query}>; rel="next"'}
