"""The log's last line of defence: whatever looks like a secret is masked."""

import hashlib

import pytest

from paradarum import keys
from paradarum.logs import redact


@pytest.mark.parametrize(
    "secret",
    [
        keys.generate(),
        "pdm_LD-6zXT1b8eX3tR2B2ZuCzGgCo7quYc7",  # URL-safe characters, not base62
        "pdm__-_-abcdef",
        "pdm_abcde1",  # cut short
    ],
    ids=["generated", "url-safe", "underscores", "cut-short"],
)
def test_a_key_keeps_only_its_first_eight_characters(secret):
    shown = redact(f"GET /api/keys/{secret}?x=1")
    assert secret not in shown
    assert shown == f"GET /api/keys/{secret[:8]}…?x=1"


def test_tokens_hashes_and_bearer_values_are_masked_and_the_rest_is_left_alone():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    digest = hashlib.sha256(b"x").hexdigest()
    argon = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    text = f'{{"a":"{jwt}","b":"{digest}","c":"{argon}","d":"Bearer opaque-value","e":"pdm_"}}'
    assert redact(text) == (
        '{"a":"[jwt]","b":"[hash]","c":"[password hash]","d":"Bearer [redacted]","e":"pdm_"}'
    )
