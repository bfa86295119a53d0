"""Sealing small secrets that the server must read again (TOTP shared secrets).

A TOTP secret cannot be hashed like a password or a key: the server needs it to
compute the expected code. So it is stored sealed with AES-256-GCM under a key
derived (HKDF-SHA256) from the server's secret — ``PARADARUM_SECRETS_KEY`` when
set, else the JWT signing secret — and bound to the row it belongs to (the
associated data), so that a sealed value copied to another person's row does not
open. A database dump alone, or a backup, does not reveal any secret. Pure: no I/O.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"


class CannotOpen(Exception):
    """The sealed value was made with another key, or altered."""


class SecretBox:
    def __init__(self, server_secret: str, *, purpose: str = "totp") -> None:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"paradarum-secretbox",
            info=f"paradarum {purpose} secrets".encode(),
        ).derive(server_secret.encode())
        self._aead = AESGCM(key)

    def seal(self, plain: str, *, bound_to: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plain.encode(), bound_to.encode())
        return f"{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, *, bound_to: str) -> str:
        version, _, body = sealed.partition(":")
        if version != VERSION:
            raise CannotOpen
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            return self._aead.decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise CannotOpen from exc
