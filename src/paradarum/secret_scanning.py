"""GitHub secret scanning: believe a leak report only when GitHub signed it.

GitHub finds Paradarum keys in public code and POSTs them to
``/api/secret-scanning/github``. Anyone can POST there, so a report counts only
when its raw body carries a valid ECDSA P-256 / SHA-256 signature
(``Github-Public-Key-Signature``, base64 DER) by one of the keys GitHub
publishes at ``PARADARUM_SECRET_SCANNING_KEYS_URL``, named by
``Github-Public-Key-Identifier``. An unsigned report must revoke nothing:
otherwise anyone holding a key could make us kill it, or learn whether a
string is a live key from our answer.

This module is the part that needs no database: :class:`SigningKeys` (fetch,
cache, verify), :func:`parse_alerts` and :func:`feedback`. The route and the
revocation live with the web layer and the services.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

import httpx
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from paradarum.clock import Clock, utcnow
from paradarum.config import Settings
from paradarum.errors import ValidationFailed
from paradarum.fetching import FetchFailed, LoopLock, fetch_document, parse_json
from paradarum.keys import is_well_formed

__all__ = [
    "MAX_ALERTS",
    "MAX_BODY_BYTES",
    "Alert",
    "SigningKeys",
    "feedback",
    "parse_alerts",
    "parse_signing_keys",
]

log = logging.getLogger(__name__)

# An unknown identifier may mean GitHub rotated its key, so it earns a fetch; but
# identifiers are chosen by whoever sends the request, so no more than one a minute.
REFETCH_INTERVAL = timedelta(minutes=1)
# Keys GitHub has withdrawn stop verifying within a day even when no unknown
# identifier ever arrives. If the fetch fails, the keys we hold stay in use.
MAX_KEYS_AGE = timedelta(days=1)
# The keys document is a few hundred bytes per key; anything far larger is not it.
MAX_DOCUMENT_BYTES = 256 * 1024

# GitHub's identifiers are 64 hex characters; anything printable up to 256 is
# accepted so that a format change does not stop verification, but a header that
# could never name a key is refused before it can cause a fetch.
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,256}")
# A DER ECDSA P-256 signature is at most 72 bytes (96 base64 characters); the
# bound leaves room for other curves so that they fail on the key, not here.
_MAX_SIGNATURE_CHARACTERS = 256

# One report: GitHub batches up to 1000 matches per request.
MAX_ALERTS = 1000
# 1000 matches at a generous ~1 KiB each (token, type, a blob URL, source and
# JSON punctuation). The endpoint's body limit should be this, not the API's 64 KiB.
MAX_BODY_BYTES = 1024 * 1024
MAX_TOKEN_CHARACTERS = 1024
MAX_TYPE_CHARACTERS = 256
MAX_URL_CHARACTERS = 8192
MAX_SOURCE_CHARACTERS = 256

Label = Literal["true_positive", "false_positive"]


def parse_signing_keys(document: bytes) -> dict[str, ec.EllipticCurvePublicKey | None]:
    """The keys in GitHub's ``{"public_keys": [...]}`` document, by identifier.

    An entry whose key is not a P-256 public key maps to ``None``: its identifier
    is known (so it causes no refetch) but nothing verifies with it. Entries
    without a string identifier are skipped. Raises ``ValueError`` when the
    document is not that shape at all.
    """
    parsed = parse_json(document)
    entries = parsed.get("public_keys") if isinstance(parsed, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the document has no public_keys list")
    keys: dict[str, ec.EllipticCurvePublicKey | None] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(identifier, str) or not _IDENTIFIER.fullmatch(identifier):
            continue
        keys[identifier] = _p256_key(pem)
    return keys


def _p256_key(pem: object) -> ec.EllipticCurvePublicKey | None:
    if not isinstance(pem, str):
        return None
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        return None
    # GitHub documents ECDSA-NIST-P256V1-SHA256: another curve (or RSA) under a
    # GitHub identifier is a misconfiguration or a substitution, never a match.
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


def _signature_bytes(signature: str | None) -> bytes | None:
    """The DER signature from the header, or None when it cannot be one."""
    if not signature or len(signature) > _MAX_SIGNATURE_CHARACTERS:
        return None
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        decode_dss_signature(der)  # well-formed DER (r, s); verify checks the values
    except (ValueError, binascii.Error):
        return None
    return der


@dataclass
class _Fetches:
    """When the keys were last asked for and last received."""

    attempted_at: datetime | None = None
    succeeded_at: datetime | None = None
    failures: int = 0  # in a row, for the log line when fetching works again


class SigningKeys:
    """GitHub's secret scanning public keys, fetched on demand and cached.

    One instance per process (it holds the cache). The first verification
    fetches the keys; afterwards a fetch happens only for an identifier we do
    not hold (GitHub rotated its key) or when the cache is a day old, and never
    more than once a minute, whatever arrives: concurrent callers wait for the
    one fetch in flight and share its result. A fetch that fails (network,
    timeout, status, body) leaves the cache as it was and is logged once per
    run of failures; a signature whose key we cannot get simply does not
    verify. :meth:`verify` never raises.
    """

    def __init__(self, *, url: str, timeout: float, clock: Clock = utcnow) -> None:
        self._url = url
        self._timeout = timeout
        self._clock = clock
        self._keys: dict[str, ec.EllipticCurvePublicKey | None] = {}
        self._fetches = _Fetches()
        self._lock = LoopLock()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> SigningKeys:
        return cls(
            url=settings.secret_scanning_keys_url,
            timeout=settings.secret_scanning_keys_timeout_seconds,
            clock=clock,
        )

    async def verify(self, *, body: bytes, identifier: str | None, signature: str | None) -> bool:
        """Whether ``signature`` is GitHub's signature of exactly ``body``.

        ``body`` must be the raw request bytes: GitHub signs what it sent, and
        parsing and re-serialising the JSON would change them. False for a
        missing or malformed header, an identifier GitHub does not publish (after
        the refetch the rules allow), a key that is not P-256, keys that cannot
        be fetched, or a signature over other bytes.
        """
        der = _signature_bytes(signature)
        if der is None or identifier is None or not _IDENTIFIER.fullmatch(identifier):
            return False
        key = await self._key(identifier)
        if key is None:
            return False
        try:
            key.verify(der, body, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    async def _key(self, identifier: str) -> ec.EllipticCurvePublicKey | None:
        if identifier not in self._keys or self._stale():
            await self._refresh()
        return self._keys.get(identifier)

    def _stale(self) -> bool:
        succeeded_at = self._fetches.succeeded_at
        return succeeded_at is None or not self._recent(succeeded_at, MAX_KEYS_AGE)

    def _recent(self, moment: datetime, window: timedelta) -> bool:
        # A clock set back is not "recent": it must not block fetches for as
        # long as it went back.
        elapsed = self._clock() - moment
        return timedelta(0) <= elapsed < window

    async def _refresh(self) -> None:
        async with self._lock():
            attempted_at = self._fetches.attempted_at
            if attempted_at is not None and self._recent(attempted_at, REFETCH_INTERVAL):
                return  # fetched a moment ago, perhaps by the caller we waited for
            self._fetches.attempted_at = self._clock()
            keys = await self._fetch()
            if keys is not None:
                self._keys = keys
                self._fetches.succeeded_at = self._clock()

    async def _fetch(self) -> dict[str, ec.EllipticCurvePublicKey | None] | None:
        """The keys now published, or None (logged) when they cannot be had."""
        try:
            document = await fetch_document(
                self._url, timeout=self._timeout, max_bytes=MAX_DOCUMENT_BYTES
            )
            keys = parse_signing_keys(document)
        except Exception as exc:
            # The outside world can fail in more ways than httpx names (TLS,
            # decoding, a misconfigured URL): every one of them means "cannot
            # verify", never an error answer to GitHub.
            self._failed(exc)
            return None
        if self._fetches.failures:
            log.info(
                "secret scanning keys fetched again",
                extra={"host": self._host(), "failed_attempts": self._fetches.failures},
            )
            self._fetches.failures = 0
        return keys

    def _failed(self, exc: Exception) -> None:
        self._fetches.failures += 1
        if self._fetches.failures > 1:
            return  # this run of failures is already in the log
        # The host only: the URL could carry credentials or a query token.
        reason = str(exc) if isinstance(exc, FetchFailed) else type(exc).__name__
        log.warning(
            "secret scanning keys could not be fetched; leak reports cannot be verified",
            extra={"host": self._host(), "reason": reason},
        )

    def _host(self) -> str:
        try:
            return httpx.URL(self._url).host
        except Exception:
            return "(invalid URL)"


@dataclass(frozen=True, slots=True)
class Alert:
    """One match GitHub reports: ``token`` is the leaked string itself."""

    token: str = field(repr=False)  # a live key must not reach a log through a repr
    type: str
    url: str
    source: str

    @property
    def token_hash(self) -> str:
        """SHA-256 hex of the token: what GitHub's feedback format and our key table use."""
        return hashlib.sha256(self.token.encode("utf-8")).hexdigest()

    @property
    def is_paradarum_key(self) -> bool:
        return is_well_formed(self.token)


def parse_alerts(body: bytes) -> list[Alert]:
    """The matches in a report body: a JSON array of 1 to 1000 objects.

    ``token`` and ``type`` are required non-empty strings; ``url`` (GitHub says it
    may be empty) and ``source`` are strings when present and default to ``""``, so
    that a report in an older or newer shape still revokes what it names. Extra
    fields are ignored. Anything else raises :class:`ValidationFailed` naming the
    first problem. Call it only after the signature verified.
    """
    if len(body) > MAX_BODY_BYTES:
        _invalid("body", f"The report is larger than {MAX_BODY_BYTES} bytes.")
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        _invalid("body", "The report is not JSON.")
    except RecursionError:
        _invalid("body", "The report is nested too deeply.")
    if not isinstance(parsed, list):
        _invalid("body", "The report must be a JSON array of matches.")
    if not 1 <= len(parsed) <= MAX_ALERTS:
        _invalid("body", f"The report must hold 1 to {MAX_ALERTS} matches, not {len(parsed)}.")
    return [_alert(index, item) for index, item in enumerate(parsed)]


def _alert(index: int, item: Any) -> Alert:
    if not isinstance(item, dict):
        _invalid(f"[{index}]", f"Match {index} must be an object.")
    return Alert(
        token=_string(index, item, "token", MAX_TOKEN_CHARACTERS, required=True),
        type=_string(index, item, "type", MAX_TYPE_CHARACTERS, required=True),
        url=_string(index, item, "url", MAX_URL_CHARACTERS, required=False),
        source=_string(index, item, "source", MAX_SOURCE_CHARACTERS, required=False),
    )


def _string(index: int, item: dict[str, Any], name: str, limit: int, *, required: bool) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        wanted = "a non-empty string" if required else "a string"
        _invalid(f"[{index}].{name}", f"Match {index}: {name} must be {wanted}.")
    if len(value) > limit:
        _invalid(f"[{index}].{name}", f"Match {index}: {name} must be at most {limit} characters.")
    return value


def _invalid(where: str, message: str) -> NoReturn:
    raise ValidationFailed({where: [message]}, message)


def feedback(alerts: Sequence[Alert], *, known_hashes: AbstractSet[str]) -> list[dict[str, str]]:
    """GitHub's feedback answer, one entry per match, in the order reported.

    ``true_positive`` when the token is, or was, one of our keys: ``known_hashes``
    holds the hashes of reported well-formed keys that the database knows, active
    or revoked (``LeakService.report``). The token goes back hashed, never raw. A
    string that is not a well-formed key is a false positive whatever
    ``known_hashes`` says.
    """
    answer: list[dict[str, str]] = []
    for alert in alerts:
        token_hash = alert.token_hash
        ours = alert.is_paradarum_key and token_hash in known_hashes
        label: Label = "true_positive" if ours else "false_positive"
        answer.append({"token_hash": token_hash, "token_type": alert.type, "label": label})
    return answer
