"""Paradarum's Python client and the customer ``paradarum`` command.

This distribution depends on httpx only (plus Typer and Rich for the command
line). It is versioned with the Paradarum server, from the same repository::

    from paradarum_client import Client

    with Client(api_key="pdm_...", base_url="https://paradarum.example") as paradarum:
        print(paradarum.account().email)

Results are the API's own shapes (:mod:`paradarum_client.models`); errors are
subclasses of :class:`ParadarumError` (:mod:`paradarum_client.errors`).
"""

# First, and a plain literal: setuptools reads it without importing the package
# (whose imports need httpx), and protocol.py reads it while the package loads.
__version__ = "0.2.0"

from paradarum_client.async_client import AsyncClient
from paradarum_client.client import Client
from paradarum_client.errors import (
    AlreadyRevokedError,
    AuthenticationError,
    ConfigurationError,
    ForbiddenError,
    LimitError,
    NetworkError,
    NotFoundError,
    ParadarumError,
    RateLimitedError,
    ServerError,
    StepUpRequiredError,
    TwoFactorEnrolmentRequiredError,
    TwoFactorRequired,
    ValidationError,
)
from paradarum_client.models import (
    Account,
    ApiKey,
    AuditEvent,
    CreatedBy,
    DayUsage,
    KeyUsage,
    NewKey,
    Purge,
    PurgeNode,
    PurgeScope,
    Session,
    SignInChallenge,
    TwoFactorStatus,
    Zone,
    ZoneVerification,
)
from paradarum_client.protocol import DEFAULT_BASE_URL, Page

__all__ = [
    "DEFAULT_BASE_URL",
    "Account",
    "AlreadyRevokedError",
    "ApiKey",
    "AsyncClient",
    "AuditEvent",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "CreatedBy",
    "DayUsage",
    "ForbiddenError",
    "KeyUsage",
    "LimitError",
    "NetworkError",
    "NewKey",
    "NotFoundError",
    "Page",
    "ParadarumError",
    "Purge",
    "PurgeNode",
    "PurgeScope",
    "RateLimitedError",
    "ServerError",
    "Session",
    "SignInChallenge",
    "StepUpRequiredError",
    "TwoFactorEnrolmentRequiredError",
    "TwoFactorRequired",
    "TwoFactorStatus",
    "ValidationError",
    "Zone",
    "ZoneVerification",
    "__version__",
]
