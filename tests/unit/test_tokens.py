import base64
import json
from datetime import timedelta

import jwt
import pytest

from paradarum.clock import utcnow
from paradarum.tokens import InvalidToken, TokenCodec

SECRET = "s" * 64


def codec(secret: str = SECRET, lifetime: int = 3600) -> TokenCodec:
    return TokenCodec(secret=secret, lifetime_seconds=lifetime)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(**overrides):
    now = utcnow()
    payload = {
        "sub": "1",
        "jti": "abc",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "iss": "paradarum",
        "sk": "k" * 32,
    }
    payload.update(overrides)
    return payload


def test_issued_token_round_trips():
    now = utcnow()
    token, issued = codec().issue(account_id=7, session_key="s" * 32, now=now)
    decoded = codec().decode(token, now=now)
    assert decoded.account_id == 7
    assert decoded.session_key == "s" * 32
    assert decoded.token_id == issued.token_id


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_case_is_refused(alg):
    token = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims())}."
    with pytest.raises(InvalidToken):
        codec().decode(token, now=utcnow())


def test_another_algorithm_is_refused():
    token = jwt.encode(claims(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken):
        codec().decode(token, now=utcnow())


def test_another_secret_is_refused():
    token = jwt.encode(claims(), "x" * 64, algorithm="HS256")
    with pytest.raises(InvalidToken):
        codec().decode(token, now=utcnow())


def test_tampered_payload_is_refused():
    token, _ = codec().issue(account_id=1, session_key="k" * 32, now=utcnow())
    header, _payload, signature = token.split(".")
    forged = f"{header}.{b64(claims(sub='2'))}.{signature}"
    with pytest.raises(InvalidToken):
        codec().decode(forged, now=utcnow())


def test_cut_signature_is_refused():
    token, _ = codec().issue(account_id=1, session_key="k" * 32, now=utcnow())
    for cut in (token[:-5], token.rsplit(".", 1)[0] + ".", token.rsplit(".", 1)[0]):
        with pytest.raises(InvalidToken):
            codec().decode(cut, now=utcnow())


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti", "sk"])
def test_token_without_a_required_claim_is_refused(missing):
    payload = claims()
    del payload[missing]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        codec().decode(token, now=utcnow())


def test_expired_token_is_refused():
    now = utcnow()
    token, _ = codec(lifetime=60).issue(account_id=1, session_key="k" * 32, now=now)
    codec().decode(token, now=now + timedelta(seconds=59))
    with pytest.raises(InvalidToken):
        codec().decode(token, now=now + timedelta(seconds=61))


def test_garbage_is_refused():
    for garbage in ["", "a.b.c", "not a token", "eyJ.eyJ.sig", "é.é.é"]:
        with pytest.raises(InvalidToken):
            codec().decode(garbage, now=utcnow())


def test_an_email_link_token_serves_its_own_purpose_only():
    """A verification, reset or sign-in link is none of the others, nor a session;
    a session is none of them; reset and sign-in links must name a session key."""
    from paradarum.tokens import RESET_PASSWORD, SIGN_IN, VERIFY_EMAIL

    now = utcnow()
    tokens = {
        purpose: codec().issue_email_token(
            subject=3,
            email="a@example.com",
            now=now,
            lifetime=timedelta(hours=1),
            purpose=purpose,
            session_key=None if purpose == VERIFY_EMAIL else "k" * 32,
        )
        for purpose in (VERIFY_EMAIL, RESET_PASSWORD, SIGN_IN)
    }
    session, _ = codec().issue(account_id=3, session_key="k" * 32, now=now)
    unbound = codec().issue_email_token(
        subject=3, email="a@example.com", now=now, lifetime=timedelta(hours=1), purpose=SIGN_IN
    )
    for purpose, token in tokens.items():
        claims = codec().read_email_token(token, now=now, purpose=purpose)
        assert claims.subject == 3 and claims.email == "a@example.com"
        for other in tokens.values():
            if other != token:
                with pytest.raises(InvalidToken):
                    codec().read_email_token(other, now=now, purpose=purpose)
        with pytest.raises(InvalidToken):
            codec().read_email_token(session, now=now, purpose=purpose)
        with pytest.raises(InvalidToken):
            codec().decode(token, now=now)
    with pytest.raises(InvalidToken):
        codec().read_email_token(unbound, now=now, purpose=SIGN_IN)
    with pytest.raises(InvalidToken):  # an hour later
        codec().read_email_token(tokens[SIGN_IN], now=now + timedelta(hours=1), purpose=SIGN_IN)
