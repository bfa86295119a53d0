"""Domain errors. Services raise these; the web layer maps them to HTTP in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``message`` is safe to show to the caller."""

    message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class ValidationFailed(DomainError):
    message = "The request has invalid fields."

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        super().__init__(message)
        self.errors = errors


class NotAuthenticated(DomainError):
    message = "Missing or invalid credentials."


class SignupDisabled(DomainError):
    message = "Sign-up is turned off on this server."


class EmailTaken(DomainError):
    message = "An account with this email already exists."


class AccountNotFound(DomainError):
    message = "No such account."


class KeyLimitReached(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This account already has {limit} active API keys, the most allowed. "
            "Revoke a key to create a new one."
        )
        self.limit = limit


class KeyNotFound(DomainError):
    message = "No API key with that ID in this account."


class AlreadyRevoked(DomainError):
    message = "This API key is already revoked."


class NotASession(DomainError):
    message = (
        "Only a session token can be signed out. An API key is ended by revoking it "
        "(DELETE /api/account/apikeys/{id})."
    )


class NotFound(DomainError):
    message = "Not found."


class RateLimited(DomainError):
    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message or "Too many requests. Try again later.")
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    message = "The service is temporarily unavailable. Try again shortly."


class DnsUnavailable(Unavailable):
    """DNS could not say whether a record exists (timeout, unreachable, SERVFAIL).

    Not the same as "no record": telling a customer their TXT record is missing when
    the resolver merely failed would send them hunting for a mistake they did not make.
    An outage of something Paradarum depends on, so a 503 that asks to retry.
    """

    message = "The DNS server did not answer. Try again in a moment."
