"""The parts of OIDC token checking that need no server: the JWKS, reading a token,
and the policy rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jwt
import pytest

from paradarum import oidc
from paradarum.errors import ValidationFailed
from paradarum.oidc import Check, TokenRejected
from paradarum.services.context import Permission
from paradarum.services.trust import describe, policy_settings
from tests.oidc import new_key, unsigned_token


def jwks(*entries: dict) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


def test_only_rs256_and_es256_signing_keys_with_a_kid_are_kept_from_a_jwks():
    rsa, ec = new_key("RS256"), new_key("ES256")
    keys = oidc.parse_jwks(
        jwks(
            rsa.public_jwk(),
            ec.public_jwk(),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "symmetric", "alg": "HS256"},
            {**new_key().public_jwk(), "kid": "for-encryption", "use": "enc"},
            {**new_key().public_jwk(), "kid": None},
            {"kty": "RSA", "kid": "broken", "n": "??", "e": "AQAB"},
        )
    )
    assert set(keys) == {rsa.kid, ec.kid}
    assert keys[rsa.kid].algorithm_name == "RS256"
    assert keys[ec.kid].algorithm_name == "ES256"


def test_a_jwks_with_too_many_keys_or_no_keys_list_is_refused():
    with pytest.raises(ValueError):
        oidc.parse_jwks(
            jwks(*[new_key("ES256").public_jwk() for _ in range(oidc.MAX_JWKS_KEYS + 1)])
        )
    with pytest.raises(ValueError):
        oidc.parse_jwks(b'{"keys": "none"}')


def test_a_token_is_read_without_trusting_it_and_oversized_ones_are_not_read():
    token = unsigned_token({"alg": "none", "kid": "k"}, {"iss": "https://issuer.example"}, None)
    peeked = oidc.peek(token)
    assert (peeked.algorithm, peeked.kid, peeked.issuer) == ("none", "k", "https://issuer.example")
    with pytest.raises(TokenRejected) as refused:
        oidc.peek("a" * (oidc.MAX_TOKEN_CHARACTERS + 1))
    assert refused.value.check is Check.TOO_LARGE
    with pytest.raises(TokenRejected) as refused:
        oidc.peek("not a token")
    assert refused.value.check is Check.MALFORMED


def test_times_allow_sixty_seconds_of_skew_and_no_more():
    key = new_key("ES256")
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    moment = int(now.timestamp())
    jwk = oidc.parse_jwks(jwks(key.public_jwk()))[key.kid]

    def verify(**claims: int) -> None:
        base = {"iss": "https://i.example", "aud": "a", "iat": moment, "exp": moment + 300}
        token = jwt.encode({**base, **claims}, key.private, algorithm="ES256")
        oidc.verify(token, key=jwk, issuer="https://i.example", audience="a", now=now)

    verify(exp=moment - 60, iat=moment - 600)
    verify(nbf=moment + 60, iat=moment + 60)
    for claims, check in (
        ({"exp": moment - 61, "iat": moment - 600}, Check.EXPIRED),
        ({"nbf": moment + 61}, Check.NOT_YET_VALID),
        ({"iat": moment + 61}, Check.NOT_YET_VALID),
    ):
        with pytest.raises(TokenRejected) as refused:
            verify(**claims)
        assert refused.value.check is check, claims


def _settings(**overrides):
    values = {
        "now": datetime.now(UTC),
        "name": "deploy",
        "issuer": "https://token.actions.githubusercontent.com",
        "audience": None,
        "conditions": {"repository_id": "1", "ref": "refs/heads/main"},
        "permission": Permission.PURGE,
        "zone_ids": None,
        "ttl_seconds": 900,
        "default_audience": "https://cdn.example",
        "insecure_issuers": frozenset({"http://127.0.0.1:9"}),
        **overrides,
    }
    return policy_settings(**values)


def test_the_pin_is_the_first_immutable_identity_and_http_only_for_listed_issuers():
    settings = _settings(conditions={"sub": "repo:a/b:ref:x", "repository_id": "7"})
    assert settings.pin == ("repository_id", "7")
    assert settings.audience == "https://cdn.example"
    assert _settings(issuer="http://127.0.0.1:9").issuer == "http://127.0.0.1:9"
    with pytest.raises(ValidationFailed) as refused:
        _settings(issuer="http://127.0.0.1:10")
    assert "issuer" in refused.value.errors


def test_the_security_log_line_names_the_job_with_visible_characters_only():
    line = describe({"repository": "acme/site\n\x1b[31m", "workflow": "Deploy", "run_id": 7})
    assert line == "repository acme/site??[31m, workflow Deploy, run 7"
