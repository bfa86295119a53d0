"""Sealed secrets (TOTP shared secrets, webhook signing secrets): what one box seals
only that box opens, for the row it was sealed for, and any change is refused."""

from __future__ import annotations

import base64
import secrets

import pytest

from paradarum.secretbox import VERSION, CannotOpen, SecretBox


@pytest.fixture
def server_secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def box(server_secret: str) -> SecretBox:
    return SecretBox(server_secret)


def _raw(sealed: str) -> bytes:
    version, _, body = sealed.partition(":")
    assert version == VERSION
    return base64.urlsafe_b64decode(body)


def _with_raw(raw: bytes) -> str:
    return f"{VERSION}:{base64.urlsafe_b64encode(raw).decode()}"


@pytest.mark.parametrize("plain", ["JBSWY3DPEHPK3PXP", "", "é ünïcødé ✓", "x" * 4096])
def test_what_is_sealed_opens_to_the_same_text(box, plain):
    sealed = box.seal(plain, bound_to="account:7")
    assert box.open(sealed, bound_to="account:7") == plain


def test_a_sealed_value_shows_nothing_of_the_secret(box):
    plain = secrets.token_hex(20)
    sealed = box.seal(plain, bound_to="account:7")
    assert sealed.startswith(f"{VERSION}:")
    assert plain not in sealed
    assert plain.encode() not in _raw(sealed)
    # A 12-byte nonce, the ciphertext (as long as the text), a 16-byte tag.
    assert len(_raw(sealed)) == 12 + len(plain) + 16


def test_the_same_secret_sealed_twice_differs_and_every_nonce_is_new(box):
    sealed = [box.seal("same secret", bound_to="account:7") for _ in range(200)]
    assert len(set(sealed)) == len(sealed)
    assert len({_raw(value)[:12] for value in sealed}) == len(sealed)
    assert {box.open(value, bound_to="account:7") for value in sealed} == {"same secret"}


def test_a_value_copied_to_another_row_does_not_open(box):
    sealed = box.seal("JBSWY3DPEHPK3PXP", bound_to="account:7")
    for other in ("account:8", "account:70", "account:7 ", ""):
        with pytest.raises(CannotOpen):
            box.open(sealed, bound_to=other)


def test_another_server_secret_does_not_open_it(box):
    sealed = box.seal("JBSWY3DPEHPK3PXP", bound_to="account:7")
    with pytest.raises(CannotOpen):
        SecretBox(secrets.token_urlsafe(32)).open(sealed, bound_to="account:7")


def test_the_same_server_secret_opens_it_in_another_process_s_box(server_secret):
    """The key is derived from the secret alone: a restart (or another instance)
    opens what this one sealed."""
    sealed = SecretBox(server_secret).seal("JBSWY3DPEHPK3PXP", bound_to="account:7")
    assert SecretBox(server_secret).open(sealed, bound_to="account:7") == "JBSWY3DPEHPK3PXP"


def test_boxes_for_different_purposes_do_not_open_each_other_s_values(server_secret):
    totp = SecretBox(server_secret)
    webhook = SecretBox(server_secret, purpose="webhook")
    sealed = webhook.seal("whsec-signing-secret", bound_to="7")
    assert webhook.open(sealed, bound_to="7") == "whsec-signing-secret"
    with pytest.raises(CannotOpen):
        totp.open(sealed, bound_to="7")
    with pytest.raises(CannotOpen):
        webhook.open(totp.seal("JBSWY3DPEHPK3PXP", bound_to="7"), bound_to="7")


def test_any_changed_byte_is_refused(box):
    sealed = box.seal("JBSWY3DPEHPK3PXP", bound_to="account:7")
    raw = _raw(sealed)
    for index in range(len(raw)):  # the nonce, the ciphertext and the tag alike
        changed = bytearray(raw)
        changed[index] ^= 0x01
        with pytest.raises(CannotOpen):
            box.open(_with_raw(bytes(changed)), bound_to="account:7")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda raw: raw[:-1],  # the tag cut short
        lambda raw: raw + b"\0",  # a byte added
        lambda raw: raw[:12],  # the nonce alone
        lambda raw: b"",  # nothing at all
    ],
)
def test_a_truncated_or_extended_value_is_refused(box, mangle):
    raw = _raw(box.seal("JBSWY3DPEHPK3PXP", bound_to="account:7"))
    with pytest.raises(CannotOpen):
        box.open(_with_raw(mangle(raw)), bound_to="account:7")


@pytest.mark.parametrize(
    "sealed",
    [
        "JBSWY3DPEHPK3PXP",  # a secret stored unsealed
        "v2:AAAA",  # a version this code does not know
        "v1:not base64 at all!",
        "v1:%%%%",
        "",
    ],
)
def test_a_value_that_is_not_a_sealed_one_is_refused_not_an_error(box, sealed):
    with pytest.raises(CannotOpen):
        box.open(sealed, bound_to="account:7")


def test_the_version_prefix_is_checked_before_anything_is_decrypted(box):
    sealed = box.seal("JBSWY3DPEHPK3PXP", bound_to="account:7")
    _, _, body = sealed.partition(":")
    with pytest.raises(CannotOpen):
        box.open(f"v0:{body}", bound_to="account:7")
