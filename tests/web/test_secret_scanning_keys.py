"""Leak reports are believed only with GitHub's signature: verified against keys fetched
from a real local keys server, refetched at most once a minute, never raising."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from paradarum.clock import FrozenClock
from paradarum.keys import generate
from paradarum.secret_scanning import SigningKeys
from tests.github import GitHubKeys, github_keys_server, new_signing_key, sign

BODY = json.dumps(
    [{"token": "not-a-key", "type": "paradarum_api_key", "url": "", "source": "content"}]
).encode()


@pytest.fixture
def github() -> Iterator[GitHubKeys]:
    with github_keys_server() as server:
        yield server


def signing_keys(github: GitHubKeys, clock: FrozenClock, timeout: float = 5.0) -> SigningKeys:
    return SigningKeys(url=github.url, timeout=timeout, clock=clock)


def verify(keys: SigningKeys, body: bytes, identifier: str | None, signature: str | None) -> bool:
    return asyncio.run(keys.verify(body=body, identifier=identifier, signature=signature))


def test_a_body_signed_by_the_published_key_verifies(github):
    keys = signing_keys(github, FrozenClock())
    assert verify(keys, BODY, github.identifier, github.sign(BODY))
    assert github.requests == 1


def test_known_keys_are_cached_not_fetched_per_report(github):
    keys = signing_keys(github, FrozenClock())
    for _ in range(5):
        body = json.dumps([{"token": generate(), "type": "t", "url": ""}]).encode()
        assert verify(keys, body, github.identifier, github.sign(body))
    assert github.requests == 1


def test_a_signature_by_another_key_under_githubs_identifier_does_not_verify(github):
    keys = signing_keys(github, FrozenClock())
    impostor = new_signing_key()
    assert not verify(keys, BODY, github.identifier, sign(impostor, BODY))


def test_a_signature_with_wrong_numbers_does_not_verify(github):
    keys = signing_keys(github, FrozenClock())
    forged = base64.b64encode(encode_dss_signature(12345, 67890)).decode()
    assert not verify(keys, BODY, github.identifier, forged)


def test_a_signature_over_different_bytes_does_not_verify(github):
    keys = signing_keys(github, FrozenClock())
    signature = github.sign(BODY)
    assert not verify(keys, BODY + b" ", github.identifier, signature)
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert reserialised != BODY
    assert not verify(keys, reserialised, github.identifier, signature)


def test_an_identifier_github_does_not_publish_does_not_verify(github):
    keys = signing_keys(github, FrozenClock())
    stranger = new_signing_key()
    assert not verify(keys, BODY, stranger.identifier, sign(stranger, BODY))


def test_a_published_key_on_another_curve_does_not_verify(github):
    p384 = github.rotate(ec.SECP384R1())
    keys = signing_keys(github, FrozenClock())
    assert not verify(keys, BODY, p384.identifier, sign(p384, BODY))
    # Its identifier is known (published), so it costs no further fetches.
    assert not verify(keys, BODY, p384.identifier, sign(p384, BODY))
    assert github.requests == 1


@pytest.mark.parametrize(
    ("identifier", "signature"),
    [
        (None, "valid"),
        ("", "valid"),
        ("valid", None),
        ("valid", ""),
        ("valid", "not base64 !"),
        ("valid", base64.b64encode(b"not DER").decode()),
        ("valid", "valid" + "A" * 300),
        ("has space", "valid"),
        ("x" * 257, "valid"),
    ],
)
def test_missing_or_malformed_headers_do_not_verify_and_cause_no_fetch(
    github, identifier, signature
):
    keys = signing_keys(github, FrozenClock())
    identifier = github.identifier if identifier == "valid" else identifier
    if signature is not None and signature.startswith("valid"):
        signature = github.sign(BODY) + signature[len("valid") :]
    assert not verify(keys, BODY, identifier, signature)
    assert github.requests == 0


def test_fifty_concurrent_unknown_identifiers_make_one_fetch_and_then_one_a_minute(github):
    clock = FrozenClock()
    keys = signing_keys(github, clock)
    github.delay = 0.3  # the fetch is still in flight while the others arrive

    def burst() -> list[bool]:
        async def run() -> list[bool]:
            checks = []
            for _ in range(50):
                stranger = new_signing_key()
                checks.append(
                    keys.verify(
                        body=BODY, identifier=stranger.identifier, signature=sign(stranger, BODY)
                    )
                )
            return list(await asyncio.gather(*checks))

        return asyncio.run(run())

    assert burst() == [False] * 50
    assert github.requests == 1
    clock.advance(59)
    assert burst() == [False] * 50
    assert github.requests == 1
    clock.advance(1)
    assert burst() == [False] * 50
    assert github.requests == 2


def test_concurrent_reports_share_the_fetch_in_flight_and_all_verify(github):
    keys = signing_keys(github, FrozenClock())
    github.delay = 0.3
    bodies = [json.dumps([{"token": str(i), "type": "t", "url": ""}]).encode() for i in range(50)]

    async def run() -> list[bool]:
        return list(
            await asyncio.gather(
                *(
                    keys.verify(
                        body=body, identifier=github.identifier, signature=github.sign(body)
                    )
                    for body in bodies
                )
            )
        )

    assert asyncio.run(run()) == [True] * 50
    assert github.requests == 1


def test_a_key_rotated_in_at_the_url_is_picked_up_by_the_next_allowed_refetch(github):
    clock = FrozenClock()
    keys = signing_keys(github, clock)
    old = github.current
    assert verify(keys, BODY, old.identifier, sign(old, BODY))
    new = github.rotate()
    clock.advance(10)
    # Within the minute the new identifier waits (GitHub retries a refused report).
    assert not verify(keys, BODY, new.identifier, sign(new, BODY))
    clock.advance(50)
    assert verify(keys, BODY, new.identifier, sign(new, BODY))
    assert verify(keys, BODY, old.identifier, sign(old, BODY))  # still published
    assert github.requests == 2


def test_a_key_withdrawn_at_the_url_stops_verifying_within_a_day(github):
    clock = FrozenClock()
    keys = signing_keys(github, clock)
    old = github.current
    assert verify(keys, BODY, old.identifier, sign(old, BODY))
    github.rotate()
    github.withdraw(old.identifier)
    clock.advance(23 * 3600)
    assert verify(keys, BODY, old.identifier, sign(old, BODY))  # cached, no fetch yet
    assert github.requests == 1
    clock.advance(3600)
    assert not verify(keys, BODY, old.identifier, sign(old, BODY))
    assert github.requests == 2


def test_keys_server_down_means_no_verification_and_no_exception(github):
    keys = signing_keys(github, FrozenClock())
    github.stop()
    assert not verify(keys, BODY, github.identifier, github.sign(BODY))


@pytest.mark.parametrize("status", [404, 500, 503])
def test_a_keys_server_error_means_no_verification(github, status):
    github.status = status
    keys = signing_keys(github, FrozenClock())
    assert not verify(keys, BODY, github.identifier, github.sign(BODY))
    assert github.requests == 1


def test_a_keys_server_slower_than_the_timeout_means_no_verification_in_bounded_time(github):
    github.delay = 3.0
    keys = signing_keys(github, FrozenClock(), timeout=0.3)
    started = time.monotonic()
    assert not verify(keys, BODY, github.identifier, github.sign(BODY))
    assert time.monotonic() - started < 2.0


def test_keys_already_held_keep_verifying_while_the_keys_server_is_down(github):
    clock = FrozenClock()
    keys = signing_keys(github, clock)
    assert verify(keys, BODY, github.identifier, github.sign(BODY))
    github.status = 500
    clock.advance(2 * 24 * 3600)  # stale: a refetch is tried, and fails
    assert verify(keys, BODY, github.identifier, github.sign(BODY))
    assert github.requests == 2


def test_fetch_failures_are_logged_once_per_outage_without_the_url(github, caplog):
    clock = FrozenClock()
    keys = signing_keys(github, clock)
    github.status = 500
    caplog.set_level(logging.INFO, logger="paradarum.secret_scanning")
    for _ in range(3):
        stranger = new_signing_key()
        assert not verify(keys, BODY, stranger.identifier, sign(stranger, BODY))
        clock.advance(60)
    assert github.requests == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].reason == "status 500"
    assert warnings[0].host == "127.0.0.1"
    assert all(github.url not in r.getMessage() for r in caplog.records)

    github.status = 200
    assert verify(keys, BODY, github.identifier, github.sign(BODY))
    recovered = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(recovered) == 1
    assert recovered[0].failed_attempts == 3
