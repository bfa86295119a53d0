"""API keys on the server: generate and hash. Pure functions, no I/O.

The format itself (prefix, alphabet, CRC32 checksum) is shared with the client
and the secret scanner: :mod:`paradarum_client.keyformat`.

Why SHA-256 and not Argon2 for keys: a key is 131 random bits (22 base62
characters from the CSPRNG), not a human password, so there is nothing for a slow
hash to protect against — brute force is out of reach either way. A fast,
unsalted digest lets the server find a key with one indexed lookup
(``WHERE key_hash = ?``) instead of scanning candidates and running a
deliberately slow function on every request.
"""

from __future__ import annotations

import hashlib
import secrets

from paradarum_client.keyformat import (
    ALPHABET,
    BODY_LENGTH,
    CHECKSUM_LENGTH,
    DISPLAY_PREFIX_LENGTH,
    KEY_LENGTH,
    PREFIX,
    base62,
    checksum,
    find_keys,
    is_well_formed,
    looks_like_key,
)

__all__ = [
    "ALPHABET",
    "BODY_LENGTH",
    "CHECKSUM_LENGTH",
    "DISPLAY_PREFIX_LENGTH",
    "KEY_LENGTH",
    "PREFIX",
    "base62",
    "checksum",
    "display_prefix",
    "find_keys",
    "generate",
    "hash_key",
    "is_well_formed",
    "looks_like_key",
]


def generate() -> str:
    """A new raw key, from the operating system's CSPRNG."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return PREFIX + body + checksum(body)


def hash_key(raw_key: str) -> str:
    """SHA-256 of the whole key, lowercase hex: the only form the server stores."""
    return hashlib.sha256(raw_key.encode("ascii")).hexdigest()


def display_prefix(raw_key: str) -> str:
    """The first 8 characters (``pdm_`` + 4), safe to show and to store."""
    return raw_key[:DISPLAY_PREFIX_LENGTH]
