"""Every failure becomes the same envelope, in this one place."""

from __future__ import annotations

import logging
import sqlite3

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from paradarum import errors
from paradarum.web.responses import fail

logger = logging.getLogger("paradarum.web")

UNAUTHORIZED_MESSAGE = errors.NotAuthenticated.message
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="paradarum"', "Cache-Control": "no-store"}

_STATUS: dict[type[errors.DomainError], int] = {
    errors.ValidationFailed: 400,
    errors.KeyLimitReached: 400,
    errors.AlreadyRevoked: 400,
    errors.NotASession: 400,
    errors.NotAuthenticated: 401,
    errors.SignupDisabled: 403,
    errors.KeyNotFound: 404,
    errors.NotFound: 404,
    errors.AccountNotFound: 404,
    errors.EmailTaken: 409,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}

_HTTP_MESSAGES = {
    400: "Bad request.",
    404: "No such endpoint.",
    405: "Method not allowed for this endpoint.",
    413: "The request body is larger than 64 KiB.",
    415: "The request body must be JSON (Content-Type: application/json).",
}


def unauthorized() -> Response:
    return fail(401, UNAUTHORIZED_MESSAGE, headers=UNAUTHORIZED_HEADERS)


def domain_error_response(exc: errors.DomainError) -> Response:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
    if isinstance(exc, errors.NotAuthenticated):
        if exc.message == UNAUTHORIZED_MESSAGE:
            return unauthorized()
        return fail(401, exc.message, headers=UNAUTHORIZED_HEADERS)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unavailable):
        headers["Retry-After"] = "5"
    field_errors = exc.errors if isinstance(exc, errors.ValidationFailed) else None
    return fail(status, exc.message, errors=field_errors, headers=headers or None)


def _field_name(loc: tuple[object, ...]) -> str:
    parts = [str(part) for part in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    if loc and loc[0] == "path" and parts == ["key_id"]:
        return "id"
    return ".".join(parts) or "body"


def validation_response(exc: RequestValidationError) -> Response:
    problems: dict[str, list[str]] = {}
    malformed = False
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            malformed = True
            problems.setdefault("body", []).append("The request body is not valid JSON.")
            continue
        loc = tuple(error.get("loc", ()))
        message = str(error.get("msg", "Invalid value."))
        if error.get("type") == "missing" and loc == ("body",):
            message = "A JSON body is required."
        problems.setdefault(_field_name(loc), []).append(message)
    message = (
        "The request body is not valid JSON." if malformed else "The request has invalid fields."
    )
    return fail(400, message, errors=problems)


# SQLAlchemy's wrappers, and the drivers' own errors from the hot-path reads that
# bypass SQLAlchemy (the SQLite reader connection, the PostgreSQL asyncio pool).
_OUTAGES = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def _is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, _OUTAGES):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def unexpected_response(exc: BaseException) -> Response:
    if _is_database_outage(exc):
        logger.error("database unavailable: %s", type(exc).__name__)
        return domain_error_response(errors.Unavailable())
    logger.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
    return fail(500, "Something went wrong on our side. It has been logged; try again later.")


def install(app: FastAPI) -> None:
    async def on_domain(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.DomainError)
        return domain_error_response(exc)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc)

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = _HTTP_MESSAGES.get(exc.status_code)
        if message is None:
            message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            return unauthorized()
        return fail(exc.status_code, message, headers=headers or None)

    async def on_unexpected(_request: Request, exc: Exception) -> Response:
        return unexpected_response(exc)

    app.add_exception_handler(errors.DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for outage in _OUTAGES:
        app.add_exception_handler(outage, on_unexpected)
