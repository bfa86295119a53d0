"""The one response envelope: ``{"succeeded", "message", "data"[, "errors"]}``."""

from __future__ import annotations

from typing import Any

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
