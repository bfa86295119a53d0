"""Leak reports: the keys document, the report body and the feedback answer, without I/O."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from paradarum.config import Settings
from paradarum.errors import ValidationFailed
from paradarum.keys import KEY_LENGTH, PREFIX, generate, hash_key
from paradarum.secret_scanning import (
    MAX_ALERTS,
    MAX_BODY_BYTES,
    Alert,
    feedback,
    parse_alerts,
    parse_signing_keys,
)
from tests.github import new_signing_key


def alert(token: str, **fields: str) -> dict[str, str]:
    return {"token": token, "type": "paradarum_api_key", "url": "", "source": "content"} | fields


def body(*alerts: object) -> bytes:
    return json.dumps(list(alerts)).encode()


def pem(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def document(*entries: dict[str, object]) -> bytes:
    return json.dumps({"public_keys": list(entries)}).encode()


# --- the keys document --------------------------------------------------------------


def test_published_p256_keys_are_read_by_identifier():
    first, second = new_signing_key(), new_signing_key()
    keys = parse_signing_keys(
        document(
            {"key_identifier": first.identifier, "key": first.public_pem(), "is_current": False},
            {"key_identifier": second.identifier, "key": second.public_pem(), "is_current": True},
        )
    )
    assert set(keys) == {first.identifier, second.identifier}
    assert all(isinstance(key, ec.EllipticCurvePublicKey) for key in keys.values())


@pytest.mark.parametrize(
    "key",
    [
        pem(ec.generate_private_key(ec.SECP384R1()).public_key()),
        pem(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()),
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
        "not a key",
        None,
    ],
    ids=["p384", "rsa", "bad-der", "not-pem", "missing"],
)
def test_a_published_key_that_is_not_p256_is_known_but_verifies_nothing(key):
    assert parse_signing_keys(document({"key_identifier": "abc", "key": key})) == {"abc": None}


def test_entries_without_a_usable_identifier_are_skipped():
    good = new_signing_key()
    keys = parse_signing_keys(
        document(
            {"key": good.public_pem()},
            {"key_identifier": 7, "key": good.public_pem()},
            {"key_identifier": "has space", "key": good.public_pem()},
            {"key_identifier": good.identifier, "key": good.public_pem()},
        )
    )
    assert list(keys) == [good.identifier]


@pytest.mark.parametrize("raw", [b"<html>", b"[]", b'{"keys": []}', b'{"public_keys": {}}'])
def test_a_document_that_is_not_a_keys_list_is_refused(raw):
    with pytest.raises(ValueError):
        parse_signing_keys(raw)


# --- the report body ----------------------------------------------------------------


def test_a_report_is_read_into_alerts_in_order():
    first, second = generate(), generate()
    alerts = parse_alerts(
        body(alert(first, url="https://example.com/a"), alert(second, source="commit"))
    )
    assert [a.token for a in alerts] == [first, second]
    assert alerts[0].url == "https://example.com/a"
    assert alerts[1].source == "commit"
    assert alerts[0].type == "paradarum_api_key"


def test_url_and_source_may_be_empty_or_missing_and_extra_fields_are_ignored():
    [parsed] = parse_alerts(body({"token": "t", "type": "x", "found_at": "2026-01-01"}))
    assert (parsed.url, parsed.source) == ("", "")


def test_a_full_batch_of_a_thousand_is_accepted_and_one_more_is_refused():
    assert len(parse_alerts(body(*[alert(str(i)) for i in range(MAX_ALERTS)]))) == MAX_ALERTS
    with pytest.raises(ValidationFailed, match="1 to 1000"):
        parse_alerts(body(*[alert(str(i)) for i in range(MAX_ALERTS + 1)]))


def test_an_empty_report_is_refused():
    with pytest.raises(ValidationFailed, match="1 to 1000"):
        parse_alerts(b"[]")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"token": "t"}', "JSON array"),
        (b'"t"', "JSON array"),
        (body("t"), "Match 0 must be an object"),
        (body(alert("t"), {"type": "x"}), "Match 1: token must be a non-empty string"),
        (body(alert("")), "Match 0: token must be a non-empty string"),
        (body(alert("t") | {"token": 7}), "Match 0: token must be a non-empty string"),
        (body(alert("t") | {"type": ""}), "Match 0: type must be a non-empty string"),
        (body(alert("t") | {"url": ["x"]}), "Match 0: url must be a string"),
        (body(alert("t") | {"source": 1}), "Match 0: source must be a string"),
        (body(alert("t" * 1025)), "token must be at most 1024 characters"),
        (body(alert("t", type="x" * 257)), "type must be at most 256 characters"),
        (body(alert("t", url="u" * 8193)), "url must be at most 8192 characters"),
        (body(alert("t", source="s" * 257)), "source must be at most 256 characters"),
    ],
)
def test_a_malformed_report_is_refused_naming_the_problem(raw, message):
    with pytest.raises(ValidationFailed, match=message) as raised:
        parse_alerts(raw)
    assert raised.value.errors


def test_a_body_over_the_size_bound_is_refused_before_parsing():
    with pytest.raises(ValidationFailed, match="larger than"):
        parse_alerts(b"[" + b" " * MAX_BODY_BYTES + b"]")


def test_a_full_batch_of_realistic_reports_fits_the_recommended_body_bound():
    url = (
        "https://github.com/some-organisation/some-fairly-long-repository-name/blob/"
        + "0123456789abcdef0123456789abcdef01234567"
        + "/src/some/deeply/nested/directory/with/a/long/path/settings.production.yaml"
    )
    raw = body(
        *[alert(generate(), url=url, source="pull_request_comment") for _ in range(MAX_ALERTS)]
    )
    assert 64 * 1024 < len(raw) <= MAX_BODY_BYTES
    assert len(parse_alerts(raw)) == MAX_ALERTS


def test_an_alerts_repr_never_shows_the_token():
    key = generate()
    [parsed] = parse_alerts(body(alert(key)))
    assert key not in repr(parsed)
    assert key[len(PREFIX) :] not in repr(parsed)


# --- the feedback answer ------------------------------------------------------------


def test_a_key_of_ours_is_a_true_positive_and_anything_else_a_false_one():
    ours, revoked, stranger = generate(), generate(), generate()
    alerts = parse_alerts(body(alert(ours), alert("not-a-key"), alert(stranger), alert(revoked)))
    answer = feedback(alerts, known_hashes={hash_key(ours), hash_key(revoked)})
    assert [entry["label"] for entry in answer] == [
        "true_positive",
        "false_positive",
        "false_positive",
        "true_positive",
    ]


def test_feedback_sends_the_tokens_sha256_and_type_never_the_token():
    key = generate()
    alerts = [Alert(token=key, type="paradarum_api_key", url="", source="content")]
    [entry] = feedback(alerts, known_hashes=set())
    assert entry == {
        "token_hash": hashlib.sha256(key.encode()).hexdigest(),
        "token_type": "paradarum_api_key",
        "label": "false_positive",
    }
    assert entry["token_hash"] == hash_key(key)
    assert key not in json.dumps(entry)


def test_only_a_well_formed_key_can_be_a_true_positive():
    key = generate()
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")  # checksum no longer matches
    assert len(broken) == KEY_LENGTH
    alerts = [Alert(token=broken, type="t", url="", source="")]
    # Even if its hash were somehow known, a string that is not a key is not ours.
    answer = feedback(alerts, known_hashes={hashlib.sha256(broken.encode()).hexdigest()})
    assert answer[0]["label"] == "false_positive"


def test_feedback_keeps_one_entry_per_reported_match():
    key = generate()
    alerts = parse_alerts(body(alert(key), alert(key, url="https://example.com/b")))
    answer = feedback(alerts, known_hashes={hash_key(key)})
    assert [entry["label"] for entry in answer] == ["true_positive", "true_positive"]


# --- settings -----------------------------------------------------------------------


def test_the_keys_url_defaults_to_githubs_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv("PARADARUM_SECRET_SCANNING_KEYS_URL", raising=False)
    default = Settings()
    assert default.secret_scanning_keys_url == (
        "https://api.github.com/meta/public_keys/secret_scanning"
    )
    monkeypatch.setenv("PARADARUM_SECRET_SCANNING_KEYS_URL", "http://127.0.0.1:9/keys")
    monkeypatch.setenv("PARADARUM_SECRET_SCANNING_KEYS_TIMEOUT_SECONDS", "2.5")
    settings = Settings()
    assert settings.secret_scanning_keys_url == "http://127.0.0.1:9/keys"
    assert settings.secret_scanning_keys_timeout_seconds == 2.5


@pytest.mark.parametrize(
    "fields",
    [
        {"secret_scanning_keys_url": "file:///etc/keys.json"},
        {"secret_scanning_keys_timeout_seconds": 0},
        {"secret_scanning_keys_timeout_seconds": 60},
    ],
)
def test_a_keys_url_that_is_not_http_or_an_unbounded_timeout_is_a_configuration_error(fields):
    with pytest.raises(ValidationError):
        Settings(**fields)


def test_a_signing_keys_document_nested_too_deeply_is_not_a_signing_keys_document():
    with pytest.raises(ValueError):
        parse_signing_keys(b"[" * 5_000 + b"]" * 5_000)
