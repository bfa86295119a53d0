"""What can go wrong when talking to Paradarum, one exception per kind of failure.

Every exception the client raises on purpose is a :class:`ParadarumError`, so a script
needs one ``except`` to stay in control. ``message`` is always safe to show: it is the
server's sentence or ours, and never contains the credential.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paradarum_client.models import SignInChallenge


class ParadarumError(Exception):
    """Base of every client error. ``message`` is the server's (or ours), safe to show."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.errors: dict[str, list[str]] = errors or {}


class ConfigurationError(ParadarumError, ValueError):
    """The client was given a server URL or a credential that cannot work.

    Raised when the client is built, before any request: a key with a line break
    at its end would otherwise surface as an obscure HTTP library error on the
    first request. It is a :class:`ValueError` too, since it is a bad argument.
    """


class AuthenticationError(ParadarumError):
    """401/403: the credential is missing, wrong, revoked or expired (or not allowed)."""


class ForbiddenError(AuthenticationError):
    """403: the credential is good, but may not do this.

    A key's restrictions (purge-only, the addresses it may be used from, its zones),
    or a purge of hosts that are not among the account's active zones; ``message``
    is the server's sentence saying which, and for a purge ``errors["urls"]`` names
    the hosts. A subclass of :class:`AuthenticationError`, which 403s raised before
    it existed, so that code catching that keeps working.
    """


class StepUpRequiredError(ForbiddenError):
    """403 with ``stepUpRequired``: the action (a key, members, the password, second
    factors, trust policies) needs a sign-in at most 10 minutes old. Call
    ``client.reauthenticate(password, code=...)`` and retry with the new session."""


class TwoFactorEnrolmentRequiredError(ForbiddenError):
    """403: the account requires a second factor of every member and you have none
    yet; only enrolling (``client.two_factor``) is allowed until you do."""


class TwoFactorRequired(ParadarumError):
    """The password was right and a second factor is on: no session yet.
    ``challenge`` (valid 5 minutes) goes to ``client.login_two_factor`` with a code
    of the authenticator app or a recovery code. Not a failure of the request: a
    second step, raised so that code expecting a session cannot take it for one."""

    def __init__(self, challenge: SignInChallenge) -> None:
        super().__init__(
            "This sign-in needs a second factor: a code of your authenticator app or a "
            "recovery code."
        )
        self.challenge = challenge


class NotFoundError(ParadarumError):
    """404: no such thing in this account."""


class ValidationError(ParadarumError):
    """400: the request was refused; ``errors`` maps fields to problems."""


class LimitError(ValidationError):
    """400: a limit was reached, such as the most active keys an account may hold."""


class AlreadyRevokedError(ValidationError):
    """400: the key was already revoked."""


class RateLimitedError(ParadarumError):
    """429: still rate limited after the retries; ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None, status_code: int = 429) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ServerError(ParadarumError):
    """5xx, or an answer this client cannot read: the server could not complete the request."""


class NetworkError(ParadarumError):
    """No answer: the server could not be reached or did not answer in time."""
