import hashlib
import re
import zlib

from paradarum import keys

KEY_RE = re.compile(r"^pdm_[A-Za-z0-9]{28}$")


def test_hundred_thousand_generated_keys_are_unique_and_well_formed():
    generated = [keys.generate() for _ in range(100_000)]
    assert len(set(generated)) == len(generated)
    for key in generated:
        assert KEY_RE.match(key)
        assert keys.is_well_formed(key)


def test_checksum_is_base62_crc32_of_the_body_zero_padded():
    key = keys.generate()
    body, check = key[4:26], key[26:]
    number = 0
    for ch in check:
        number = number * 62 + keys.ALPHABET.index(ch)
    assert number == zlib.crc32(body.encode())
    assert keys.base62(0, 6) == "000000"
    assert keys.base62(61, 2) == "0z"


def test_checksum_catches_every_single_character_typo():
    key = keys.generate()
    tried = 0
    for position in range(4, len(key)):
        for replacement in keys.ALPHABET:
            if replacement == key[position]:
                continue
            typo = key[:position] + replacement + key[position + 1 :]
            assert not keys.is_well_formed(typo), typo
            tried += 1
    assert tried == 28 * 61


def test_checksum_catches_adjacent_transpositions():
    key = keys.generate()
    for position in range(4, len(key) - 1):
        if key[position] == key[position + 1]:
            continue
        swapped = key[:position] + key[position + 1] + key[position] + key[position + 2 :]
        assert not keys.is_well_formed(swapped)


def test_malformed_candidates_are_refused():
    key = keys.generate()
    for bad in [
        "",
        "pdm_",
        key[:-1],
        key + "A",
        "pdx_" + key[4:],
        key[:10] + "-" + key[11:],
        key.replace("pdm_", "PDM_"),
        key[:5] + "é" + key[6:],
    ]:
        assert not keys.is_well_formed(bad)


def test_hash_is_lowercase_sha256_hex_of_the_whole_key_and_prefix_is_eight_characters():
    key = keys.generate()
    assert keys.hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert keys.display_prefix(key) == key[:8]
    assert keys.display_prefix(key).startswith("pdm_")
