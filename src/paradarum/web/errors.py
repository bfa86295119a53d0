"""Every failure becomes the same envelope, here: the status for each family of
domain errors, the headers that go with some of them, and every sentence the web
layer itself says (the services say the rest)."""

from __future__ import annotations

import logging

from paradarum import errors
from paradarum.web.responses import Response, envelope_error

logger = logging.getLogger("paradarum.web")

# What the edge and the router say. Domain errors carry their own messages.
NOT_FOUND = "No such endpoint."
METHOD_NOT_ALLOWED = "Method not allowed for this endpoint."
BODY_TOO_LARGE = "The request body is larger than {limit}."
NOT_JSON = "The request body must be JSON (Content-Type: application/json)."
BAD_LENGTH = "Invalid Content-Length header."
BODY_REQUIRED = "A JSON body is required."
MALFORMED_JSON = "The request body is not valid JSON."
NESTED_TOO_DEEPLY = "The request body is nested too deeply."
INVALID_FIELDS = "The request has invalid fields."
SERVER_ERROR = "Something went wrong on our side. It has been logged; try again later."
OVERLOADED = "The service is busy. Try again in a moment."
CLIENT_BUSY = "Too many requests from your address at once. Wait for an answer before sending more."

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="paradarum"'}

_STATUS: dict[type[errors.DomainError], int] = {
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RateLimited: 429,
    errors.Unavailable: 503,
}


def status_of(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return status
    return 400  # the request cannot be done as asked


def error_response(exc: errors.DomainError) -> Response:
    status = status_of(exc)
    headers: dict[str, str] | None = None
    if status == 401:
        headers = UNAUTHORIZED_HEADERS
    elif isinstance(exc, errors.RateLimited | errors.Unavailable):
        headers = {"Retry-After": str(exc.retry_after)}
    return envelope_error(status, exc.message, errors=exc.errors, headers=headers, data=exc.data)


def unauthorized() -> Response:
    return error_response(errors.NotAuthenticated())


def server_error(exc: BaseException) -> Response:
    """The last resort: logged with its traceback, answered without one."""
    logger.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
    return envelope_error(500, SERVER_ERROR)
