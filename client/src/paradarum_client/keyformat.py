"""The Paradarum API key format: check a key and find keys in text, offline.

A key is ``pdm_`` + 22 random base62 characters + a 6-character checksum::

    pdm_ 3kT9xQ0bLm2ZrY7vW1aNcD  0fG4hK
    ^^^^ ^^^^^^^^^^^^^^^^^^^^^^  ^^^^^^
    tag  random body (CSPRNG)    base62(CRC32(body)), zero-padded

The checksum lets anyone tell a real key from a mistyped or made-up one without
asking the server: the server refuses a bad one before any database read, the
client says what is wrong with it, and secret scanners (``paradarum scan``,
GitHub's secret scanning, the server's own log redaction) report only strings
that are keys, with almost no false positives.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

PREFIX = "pdm_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 22
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH  # 32
DISPLAY_PREFIX_LENGTH = 8

# What secret scanners look for: the prefix and 28 base62 characters, not part of
# a longer word. The checksum then separates keys from look-alikes.
PATTERN = re.compile(r"(?<![A-Za-z0-9_])pdm_[A-Za-z0-9]{28}(?![A-Za-z0-9_])")

_ALPHABET_SET = frozenset(ALPHABET)
_VALUE = {ch: index for index, ch in enumerate(ALPHABET)}
_SHAPE = re.compile(r"pdm_[0-9A-Za-z]{28}")


def base62(number: int, width: int) -> str:
    """``number`` in base62, left-padded with ``0`` to ``width`` characters."""
    if number < 0:
        raise ValueError("base62 encodes non-negative numbers only")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    encoded = "".join(reversed(digits)) or "0"
    if len(encoded) > width:
        raise ValueError("number too large for the width")
    return encoded.rjust(width, "0")


def checksum(body: str) -> str:
    """The 6-character base62 CRC32 of the key body."""
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def looks_like_key(credential: str) -> bool:
    """Whether a credential claims to be an API key (as opposed to a session token)."""
    return credential.startswith(PREFIX)


def is_well_formed(candidate: str) -> bool:
    """Format and checksum check: no server needed.

    It runs on every request that carries a key, so the checksum is compared as a
    number (the given characters decoded) rather than by encoding the CRC. Timing
    tells nothing here: the checksum is a public function of the body the caller
    sent, not a secret.
    """
    if _SHAPE.fullmatch(candidate) is None:
        return False
    value = 0
    for ch in candidate[len(PREFIX) + BODY_LENGTH :]:
        value = value * 62 + _VALUE[ch]
    return value == zlib.crc32(candidate[len(PREFIX) : len(PREFIX) + BODY_LENGTH].encode("ascii"))


def problem(candidate: str) -> str | None:
    """What is wrong with ``candidate`` as a key, in words; None when it is a key."""
    if candidate != candidate.strip():
        return "the key has spaces or a line break around it"
    if not candidate.startswith(PREFIX):
        return f"a Paradarum API key starts with {PREFIX}"
    if len(candidate) != KEY_LENGTH:
        return f"a Paradarum API key is {KEY_LENGTH} characters long, this one {len(candidate)}"
    if not _ALPHABET_SET.issuperset(candidate[len(PREFIX) :]):
        return f"a Paradarum API key has only letters and digits after {PREFIX}"
    if not is_well_formed(candidate):
        return "the key's checksum does not match: it was mistyped or cut"
    return None


def find_keys(text: str) -> Iterator[re.Match[str]]:
    """Every Paradarum key in ``text`` (valid checksum only), as regex matches."""
    for match in PATTERN.finditer(text):
        if is_well_formed(match.group(0)):
            yield match
