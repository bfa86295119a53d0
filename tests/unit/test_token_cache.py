"""Verified tokens are remembered per token string; nothing else is."""

from datetime import timedelta

import pytest

from paradarum.clock import utcnow
from paradarum.tokens import InvalidToken, TokenCodec

SECRET = "s" * 64


def test_a_remembered_token_is_still_refused_once_it_expires():
    codec = TokenCodec(secret=SECRET, lifetime_seconds=60)
    now = utcnow()
    token, _ = codec.issue(account_id=7, session_key="k" * 32, now=now)
    assert codec.decode(token, now=now).account_id == 7
    with pytest.raises(InvalidToken):
        codec.decode(token, now=now + timedelta(seconds=61))


def test_a_changed_character_is_verified_again_and_refused():
    codec = TokenCodec(secret=SECRET, lifetime_seconds=60)
    now = utcnow()
    token, _ = codec.issue(account_id=7, session_key="k" * 32, now=now)
    codec.decode(token, now=now)
    head, payload, signature = token.split(".")
    forged = ".".join([head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    with pytest.raises(InvalidToken):
        codec.decode(forged, now=now)


def test_a_token_from_another_secret_is_refused_by_a_codec_that_never_issued_it():
    now = utcnow()
    token, _ = TokenCodec(secret="t" * 64, lifetime_seconds=60).issue(
        account_id=7, session_key="k" * 32, now=now
    )
    with pytest.raises(InvalidToken):
        TokenCodec(secret=SECRET, lifetime_seconds=60).decode(token, now=now)


def test_the_memory_of_verified_tokens_is_bounded():
    codec = TokenCodec(secret=SECRET, lifetime_seconds=60, verified_cache_size=8)
    now = utcnow()
    tokens = [codec.issue(account_id=i + 1, session_key="k" * 32, now=now)[0] for i in range(20)]
    for token in tokens:
        codec.decode(token, now=now)
    assert len(codec._verified) == 8
    # The oldest were dropped, and still verify (they are simply checked again).
    assert codec.decode(tokens[0], now=now).account_id == 1
