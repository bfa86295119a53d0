"""API keys: generate, check, hash. Pure functions, no I/O.

A key is ``pdm_`` + 22 random base62 characters + a 6-character checksum::

    pdm_ 3kT9xQ0bLm2ZrY7vW1aNcD  0fG4hK
    ^^^^ ^^^^^^^^^^^^^^^^^^^^^^  ^^^^^^
    tag  random body (CSPRNG)    base62(CRC32(body)), zero-padded

22 base62 characters carry ~131 bits of entropy. The checksum lets the server
reject a mistyped or invented key without a database read, and lets secret
scanners confirm a match offline.

Why SHA-256 and not Argon2 for keys: a key is 131 random bits, not a human
password, so there is nothing for a slow hash to protect against — brute force is
out of reach either way. A fast, unsalted digest lets the server find a key with
one indexed lookup (``WHERE key_hash = ?``) instead of scanning candidates and
running a deliberately slow function on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

PREFIX = "pdm_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_LENGTH = 22
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH  # 32
DISPLAY_PREFIX_LENGTH = 8

_ALPHABET_SET = frozenset(ALPHABET)


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


def generate() -> str:
    """A new raw key, from the operating system's CSPRNG."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return PREFIX + body + checksum(body)


def looks_like_key(credential: str) -> bool:
    """Whether a credential claims to be an API key (as opposed to a JWT)."""
    return credential.startswith(PREFIX)


def is_well_formed(candidate: str) -> bool:
    """Format and checksum check: no database needed.

    Runs in constant time with respect to the checksum comparison so that a
    caller cannot learn checksum characters by timing.
    """
    if len(candidate) != KEY_LENGTH or not candidate.startswith(PREFIX):
        return False
    rest = candidate[len(PREFIX) :]
    if not _ALPHABET_SET.issuperset(rest):
        return False
    body, given = rest[:BODY_LENGTH], rest[BODY_LENGTH:]
    return secrets.compare_digest(checksum(body), given)


def hash_key(raw_key: str) -> str:
    """SHA-256 of the whole key, lowercase hex: the only form the server stores."""
    return hashlib.sha256(raw_key.encode("ascii")).hexdigest()


def display_prefix(raw_key: str) -> str:
    """The first 8 characters (``pdm_`` + 4), safe to show and to store."""
    return raw_key[:DISPLAY_PREFIX_LENGTH]
