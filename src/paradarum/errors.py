"""Domain errors. Services raise these; the web layer maps them to HTTP in one place
(``paradarum.web.errors``) by the family each belongs to: a refusal of the input
(400), of the credential (401), of the action (403), something missing (404), a
conflict (409), a limit (429), or the service itself (503)."""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base class: ``message`` is safe to show to the caller; ``errors`` (field →
    problems), when set, says which parts of the request were refused; ``data``, when
    set, is the envelope's ``data`` (what a client acts on, such as ``stepUpRequired``)."""

    message = "The request could not be completed."
    errors: dict[str, list[str]] | None = None
    data: ClassVar[dict[str, object] | None] = None

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


# -- 400: the request cannot be done as asked ----------------------------------------


class ValidationFailed(DomainError):
    message = "The request has invalid fields."

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        super().__init__(message)
        self.errors: dict[str, list[str]] = errors


class KeyLimitReached(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This account already has {limit} active API keys, the most allowed. "
            "Revoke a key to create a new one."
        )
        self.limit = limit


class AlreadyRevoked(DomainError):
    message = "This API key is already revoked."


class NotASession(DomainError):
    message = (
        "Only a session token can be signed out. An API key is ended by revoking it "
        "(DELETE /api/account/apikeys/{id})."
    )


class OneCredential(DomainError):
    message = "Send one credential."


class TrustPolicyLimitReached(DomainError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This account already has {limit} trust policies, the most allowed. "
            "Delete one to add another."
        )


# -- 401 ---------------------------------------------------------------------------


class NotAuthenticated(DomainError):
    message = "Missing or invalid credentials."


# -- 403: understood, and not allowed ----------------------------------------------


class Forbidden(DomainError):
    message = "This credential may not do that."


class SignupDisabled(Forbidden):
    message = "Sign-up is turned off on this server."


class RestrictedKey(Forbidden):
    message = (
        "A key limited to some zones or addresses cannot create or roll keys: "
        "use the panel, or a key without those limits."
    )


class EmailNotVerified(Forbidden):
    message = (
        "Verify your email address first: follow the link we emailed you "
        "(POST /api/account/email/verification sends a new one)."
    )


class StepUpRequired(Forbidden):
    """The action mints power (keys, members, second factors, trust policies): the
    session's sign-in must be at most 10 minutes old. ``POST /api/auth/reauthenticate``
    gives a fresh session."""

    message = (
        "Confirm it is you: this needs a sign-in from the last 10 minutes. "
        "Re-authenticate (POST /api/auth/reauthenticate) and try again."
    )
    data: ClassVar[dict[str, object]] = {"stepUpRequired": True}


class TwoFactorEnrolmentRequired(Forbidden):
    """The account requires a second factor of every member, and this person has
    none yet: they may only enrol (``/api/account/two-factor``)."""

    message = (
        "This account requires two-factor sign-in: turn on an authenticator app or a "
        "passkey (POST /api/account/two-factor/totp) before anything else."
    )
    data: ClassVar[dict[str, object]] = {"twoFactorEnrolmentRequired": True}


class NotYourHosts(Forbidden):
    """A purge names URLs on hosts outside the caller's active zones."""

    def __init__(self, hosts: list[str]) -> None:
        shown = ", ".join(hosts[:10]) + (f" and {len(hosts) - 10} more" if len(hosts) > 10 else "")
        super().__init__(
            f"These hosts are not among your active zones: {shown}. "
            "Add and verify a zone for each (POST /api/account/zones) before purging them."
        )
        self.errors = {"urls": [f"{host} is not one of your active zones." for host in hosts]}


# -- 404 ---------------------------------------------------------------------------


class NotFound(DomainError):
    message = "Not found."


class AccountNotFound(NotFound):
    message = "No such account."


class KeyNotFound(NotFound):
    message = "No API key with that ID in this account."


class TrustPolicyNotFound(NotFound):
    message = "No trust policy with that ID in this account."


# -- 409 ---------------------------------------------------------------------------


class Conflict(DomainError):
    message = "That conflicts with what exists."


class EmailTaken(Conflict):
    message = "An account with this email already exists."


class ZoneTaken(Conflict):
    message = "This hostname is already an active zone of another account."


# -- 429 / 503 -----------------------------------------------------------------------


class RateLimited(DomainError):
    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message or "Too many requests. Try again later.")
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """The service cannot answer now (the database, a full queue); ``reason`` is
    for the operator's log only, never for the caller."""

    message = "The service is temporarily unavailable. Try again shortly."

    def __init__(
        self, message: str | None = None, *, reason: str | None = None, retry_after: int = 5
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = max(1, int(retry_after))


class DnsUnavailable(Unavailable):
    """DNS could not say whether a record exists (timeout, unreachable, SERVFAIL).

    Not the same as "no record": telling a customer their TXT record is missing when
    the resolver merely failed would send them hunting for a mistake they did not make.
    An outage of something Paradarum depends on, so a 503 that asks to retry.
    """

    message = "The DNS server did not answer. Try again in a moment."
