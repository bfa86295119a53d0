"""OpenID Connect ID tokens: read, and verify against the issuer's published keys.

A CI job (GitHub Actions, GitLab CI, any OIDC issuer) proves who it is with a
short-lived ID token, a JWT signed by its issuer. This module is the part that
needs no database: :func:`peek` (what a token says, before anything is trusted),
:class:`IssuerKeys` (discovery, then the JWKS, fetched and cached per issuer) and
:func:`verify` (signature, issuer, audience and times, with PyJWT).

Why each rule:

* ``RS256`` and ``ES256`` only: ``none`` would accept anything, and a symmetric
  algorithm (``HS256``) would let anyone who has the *public* key sign tokens;
  the algorithm is also required to match the key's type;
* the keys come from the issuer named by a trust policy, never from the token,
  so a token cannot point us at a server of its choosing (the issuer must be
  ``https://``, or listed in ``PARADARUM_OIDC_INSECURE_ISSUERS``);
* an unknown ``kid`` may mean the issuer rotated its keys, so it earns a fetch;
  but ``kid`` is chosen by whoever sends the token, so no more than one a minute
  per issuer. A fetch that fails leaves nothing to verify with: fail closed;
* every fetch has a bounded wait and size (``fetching.py``), so a slow or huge
  JWKS cannot hold the requests that wait for it;
* the issuer is chosen by a customer, and the keys' URL by whoever runs the
  issuer's discovery document, so both are fetched as webhooks are sent
  (``egress.py``): from public addresses only (or the operator's
  ``PARADARUM_WEBHOOK_ALLOWED_NETWORKS``), checked after DNS and connected to at
  the very address checked. An issuer the operator listed in
  ``PARADARUM_OIDC_INSECURE_ISSUERS`` is theirs to vouch for, and is not checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt

from paradarum import egress
from paradarum.clock import Clock, utcnow
from paradarum.errors import DnsUnavailable, ValidationFailed
from paradarum.fetching import FetchFailed, LoopLock, fetch_document, parse_json

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
# Up to 60 seconds between the issuer's clock and ours, both ways.
LEEWAY = timedelta(seconds=60)
# GitHub's and GitLab's tokens are 1-2 KiB; a token far larger is not one.
MAX_TOKEN_CHARACTERS = 8 * 1024
MAX_DISCOVERY_BYTES = 64 * 1024
MAX_JWKS_BYTES = 128 * 1024
MAX_JWKS_KEYS = 50
MAX_KID_CHARACTERS = 256
# See the module docstring: unknown kids cause one fetch a minute at most.
REFETCH_INTERVAL = timedelta(minutes=1)
# Keys an issuer withdrew stop verifying within the hour even when no unknown
# kid ever arrives; past that age a failed fetch leaves no keys (fail closed).
MAX_KEYS_AGE = timedelta(hours=1)
# Issuers whose keys one process keeps (only issuers named by trust policies are
# ever fetched; this bounds memory should there be many).
MAX_ISSUERS = 256


class Check(StrEnum):
    """The check a token failed: said in the security log, never in the answer."""

    TOO_LARGE = "the token is too large"
    MALFORMED = "the token is not a JWT"
    NO_POLICY = "no trust policy names this issuer and identity"
    AMBIGUOUS = "policies of several accounts match; the request must name one (policyId)"
    ALGORITHM = "the algorithm is not RS256 or ES256"
    KEYS_UNAVAILABLE = "the issuer's keys could not be fetched"
    UNKNOWN_KEY = "the token's kid is not among the issuer's keys"
    SIGNATURE = "the signature does not verify"
    ISSUER = "the issuer is not the policy's"
    AUDIENCE = "the audience is not the policy's"
    MISSING_CLAIM = "a required claim is missing"
    EXPIRED = "the token has expired"
    NOT_YET_VALID = "the token is not valid yet"
    CONDITIONS = "a condition of the policy does not hold"
    REPLAYED = "the token was used before"
    MEMBER = "the member who made the policy may no longer create such keys"


class TokenRejected(Exception):
    """A token that must not be accepted, and why (``check``, plus detail)."""

    def __init__(self, check: Check, detail: str | None = None) -> None:
        super().__init__(check.value if detail is None else f"{check.value} ({detail})")
        self.check = check
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Unverified:
    """What a token says before anything in it is trusted."""

    algorithm: str
    kid: str | None
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def issuer(self) -> str | None:
        value = self.claims.get("iss")
        return value if isinstance(value, str) else None


def peek(token: str) -> Unverified:
    """The header and claims of ``token``, unverified; :class:`TokenRejected`
    when it is too large or not a signed JWT at all."""
    if len(token) > MAX_TOKEN_CHARACTERS:
        raise TokenRejected(Check.TOO_LARGE, f"{len(token)} characters")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected(Check.MALFORMED) from None
    algorithm = header.get("alg")
    kid = header.get("kid")
    if not isinstance(algorithm, str) or not isinstance(claims, dict):
        raise TokenRejected(Check.MALFORMED)
    if kid is not None and (not isinstance(kid, str) or len(kid) > MAX_KID_CHARACTERS):
        raise TokenRejected(Check.MALFORMED, "kid")
    return Unverified(algorithm=algorithm, kid=kid, claims=claims)


def verify(
    token: str,
    *,
    key: jwt.PyJWK,
    issuer: str,
    audience: str,
    now: datetime,
) -> dict[str, Any]:
    """The claims of ``token`` once its signature (by ``key``), ``iss`` and ``aud``
    verify (PyJWT) and ``exp``, ``nbf`` and ``iat`` hold at ``now`` within
    :data:`LEEWAY`; :class:`TokenRejected` naming the check otherwise.

    The times are checked here, against the service's clock (which tests freeze),
    rather than PyJWT's reading of the system time.
    """
    algorithm = key.algorithm_name
    if algorithm not in ALGORITHMS:
        raise TokenRejected(Check.ALGORITHM, algorithm)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.key,
            algorithms=[algorithm],
            issuer=issuer,
            audience=audience,
            options={
                "require": ["iss", "aud", "exp", "iat"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAlgorithmError:
        raise TokenRejected(Check.ALGORITHM) from None
    except jwt.InvalidSignatureError:
        raise TokenRejected(Check.SIGNATURE) from None
    except jwt.InvalidIssuerError:
        raise TokenRejected(Check.ISSUER) from None
    except jwt.InvalidAudienceError:
        raise TokenRejected(Check.AUDIENCE) from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRejected(Check.MISSING_CLAIM, exc.claim) from None
    except jwt.PyJWTError:
        raise TokenRejected(Check.MALFORMED) from None
    _check_times(claims, now)
    return claims


def _timestamp(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(Check.MALFORMED, f"{name} is not a number")
    return float(value)


def _check_times(claims: Mapping[str, Any], now: datetime) -> None:
    moment = now.timestamp()
    leeway = LEEWAY.total_seconds()
    expires = _timestamp(claims, "exp")
    if expires is not None and moment > expires + leeway:
        raise TokenRejected(Check.EXPIRED)
    for name in ("nbf", "iat"):
        start = _timestamp(claims, name)
        if start is not None and moment + leeway < start:
            raise TokenRejected(Check.NOT_YET_VALID, name)


# -- the issuers' keys --------------------------------------------------------------


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0, section 4: the issuer plus the well-known path."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_jwks(document: bytes) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS document, by ``kid``.

    Keys without a ``kid``, meant for encryption (``use`` other than ``sig``), of
    another algorithm than RS256/ES256, or that PyJWT cannot load are left out.
    Raises ``ValueError`` when the document is not a JWKS at all.
    """
    parsed = parse_json(document)
    entries = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the document has no keys list")
    if len(entries) > MAX_JWKS_KEYS:
        raise ValueError(f"the document has more than {MAX_JWKS_KEYS} keys")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or len(kid) > MAX_KID_CHARACTERS:
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHMS[0]) not in ALGORITHMS:
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[kid] = key
    return keys


@dataclass
class _Issuer:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    attempted_at: datetime | None = None
    succeeded_at: datetime | None = None
    lock: LoopLock = field(default_factory=LoopLock)


class IssuerKeys:
    """The signing keys of the issuers trust policies name, fetched on demand.

    One instance per process (it holds the cache). A key is fetched when its
    issuer's keys are unknown or an hour old, or when a token names a ``kid`` we
    do not hold, and never more than once a minute per issuer: concurrent callers
    wait for the one fetch in flight and share its result.
    """

    def __init__(
        self,
        *,
        timeout: float,
        insecure_issuers: frozenset[str],
        clock: Clock = utcnow,
        rules: egress.Rules | None = None,
    ) -> None:
        self._timeout = timeout
        self._insecure = insecure_issuers
        self._clock = clock
        self._rules = rules or egress.Rules()
        self._issuers: dict[str, _Issuer] = {}

    def allows_issuer(self, issuer: str) -> bool:
        """``https://``, or an ``http://`` issuer the operator listed."""
        return issuer.startswith("https://") or issuer in self._insecure

    async def key(self, issuer: str, kid: str | None) -> jwt.PyJWK:
        """The issuer's key named ``kid``; :class:`TokenRejected` when the keys
        cannot be had (``KEYS_UNAVAILABLE``) or none has that ``kid``."""
        if kid is None:
            raise TokenRejected(Check.UNKNOWN_KEY, "the token names no kid")
        state = self._state(issuer)
        if kid not in state.keys or self._stale(state):
            await self._refresh(issuer, state)
        if self._stale(state):
            raise TokenRejected(Check.KEYS_UNAVAILABLE)
        found = state.keys.get(kid)
        if found is None:
            raise TokenRejected(Check.UNKNOWN_KEY, kid[:64])
        return found

    def _state(self, issuer: str) -> _Issuer:
        state = self._issuers.get(issuer)
        if state is None:
            if len(self._issuers) >= MAX_ISSUERS:
                self._issuers.pop(next(iter(self._issuers)))
            state = self._issuers[issuer] = _Issuer()
        return state

    def _recent(self, moment: datetime | None, window: timedelta) -> bool:
        # A clock set back is not "recent": it must not block fetches for as long
        # as it went back.
        return moment is not None and timedelta(0) <= self._clock() - moment < window

    def _stale(self, state: _Issuer) -> bool:
        return not self._recent(state.succeeded_at, MAX_KEYS_AGE)

    async def _refresh(self, issuer: str, state: _Issuer) -> None:
        async with state.lock():
            if self._recent(state.attempted_at, REFETCH_INTERVAL):
                return  # fetched a moment ago, perhaps by the caller we waited for
            state.attempted_at = self._clock()
            try:
                # One bound for discovery and JWKS together.
                async with asyncio.timeout(self._timeout):
                    keys = await self._fetch(issuer)
            except (FetchFailed, ValueError, TimeoutError) as exc:
                # The issuer only: a URL could carry a query token.
                log.warning(
                    "OIDC issuer keys could not be fetched; its tokens are refused",
                    extra={"issuer": issuer[:200], "reason": str(exc)[:200] or "timeout"},
                )
                return
            state.keys = keys
            state.succeeded_at = self._clock()

    async def _fetch(self, issuer: str) -> dict[str, jwt.PyJWK]:
        if not self.allows_issuer(issuer):
            raise FetchFailed("the issuer is not https:// nor listed as insecure")
        discovery = parse_json(
            await self._get(discovery_url(issuer), issuer, max_bytes=MAX_DISCOVERY_BYTES)
        )
        if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
            # Discovery, section 4.3: the document must name the issuer it is for.
            raise ValueError("the discovery document is for another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not (
            jwks_uri.startswith("https://")
            or (issuer in self._insecure and jwks_uri.startswith("http://"))
        ):
            raise ValueError("the discovery document has no usable jwks_uri")
        return parse_jwks(await self._get(jwks_uri, issuer, max_bytes=MAX_JWKS_BYTES))

    async def _get(self, url: str, issuer: str, *, max_bytes: int) -> bytes:
        """``url``'s document; from a public address only, unless the operator
        listed ``issuer`` (the module's docstring)."""
        if issuer in self._insecure:
            return await fetch_document(url, timeout=self._timeout, max_bytes=max_bytes)
        try:
            target = egress.parse_url(url)
            address = await self._rules.address(
                target, refused="issuers' keys are fetched from public addresses only"
            )
        except ValidationFailed:
            raise FetchFailed("the URL is not one we fetch") from None
        except egress.Refused as exc:
            raise FetchFailed(str(exc)) from None
        except DnsUnavailable:
            raise FetchFailed("DNS did not answer") from None
        request = egress.pinned(target, address)
        return await fetch_document(
            request.url,
            timeout=self._timeout,
            max_bytes=max_bytes,
            headers=request.headers,
            extensions=request.extensions,
        )
