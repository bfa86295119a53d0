"""A CI job's OpenID Connect ID token, to trade for a short-lived Paradarum key.

Inside GitHub Actions a job with ``permissions: id-token: write`` asks GitHub for
its ID token as GitHub documents: a ``GET`` of ``ACTIONS_ID_TOKEN_REQUEST_URL``
with ``&audience=<audience>`` added and ``Authorization: bearer
$ACTIONS_ID_TOKEN_REQUEST_TOKEN``; the answer is ``{"value": "<JWT>"}``. Other CI
systems put the token in an environment variable (GitLab: ``id_tokens:``).
The token itself is a credential: it is never printed, logged or kept.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import httpx

from paradarum_client.errors import AuthenticationError, ConfigurationError, NetworkError

REQUEST_URL_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
MAX_TOKEN_CHARACTERS = 16 * 1024


def github_actions_id_token(audience: str, *, timeout: float = 10.0) -> str:
    """This GitHub Actions job's ID token for ``audience``.

    Raises :class:`ConfigurationError` outside a job that may have one (no
    ``id-token: write`` permission), :class:`AuthenticationError` when GitHub
    refuses, :class:`NetworkError` when it cannot be reached.
    """
    url = os.environ.get(REQUEST_URL_VARIABLE)
    request_token = os.environ.get(REQUEST_TOKEN_VARIABLE)
    if not url or not request_token:
        raise ConfigurationError(
            f"No GitHub Actions ID token here: {REQUEST_URL_VARIABLE} is not set. Run inside "
            "a GitHub Actions job with `permissions: id-token: write`, or pass the token "
            "with --oidc-token-env VARIABLE."
        )
    separator = "&" if "?" in url else "?"
    try:
        response = httpx.get(
            f"{url}{separator}audience={quote(audience, safe='')}",
            headers={"Authorization": f"bearer {request_token}", "Accept": "application/json"},
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.RequestError as exc:
        raise NetworkError(f"Cannot get the ID token from GitHub Actions: {exc}.") from None
    if response.status_code != 200:
        raise AuthenticationError(
            f"GitHub Actions refused the ID token request ({response.status_code}). "
            "Does the job have `permissions: id-token: write`?",
            status_code=response.status_code,
        )
    try:
        value = response.json().get("value")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not value:
        raise AuthenticationError("GitHub Actions answered without an ID token.")
    return value


def id_token_from_environment(variable: str) -> str:
    """The ID token a CI system put in ``variable`` (GitLab's ``id_tokens:``)."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ConfigurationError(
            f"{variable} is not set or empty: it should hold the CI job's ID token "
            "(GitLab: declare it under `id_tokens:` with the server's URL as `aud`)."
        )
    if len(value) > MAX_TOKEN_CHARACTERS:
        raise ConfigurationError(f"{variable} is too long to be an ID token.")
    return value
