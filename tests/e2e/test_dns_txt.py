"""TXT look-ups against a real DNS server (dnsmasq): found, wrong, missing, down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paradarum.dnsverify import check_challenge, txt_values
from paradarum.errors import DnsUnavailable
from paradarum.hostnames import challenge_name
from tests.dns import DnsServer, running_dns

NAME = challenge_name("www.example.com")
WILD = challenge_name("*.shop.example")
TIMEOUT = 1.0


@pytest.fixture
def dns_server(tmp_path: Path) -> Iterator[DnsServer]:
    records = [
        (NAME, "tok-www"),
        (NAME, "v=unrelated"),
        (WILD, ("first-half-", "second-half")),  # one value split into two strings
    ]
    with running_dns(tmp_path / "dns", records) as server:
        yield server


def lookup(server: DnsServer, name: str) -> list[str]:
    return asyncio.run(txt_values(name, nameserver=server.address, timeout=TIMEOUT))


def test_a_record_that_is_there_is_found_with_every_value(dns_server):
    found = lookup(dns_server, NAME)
    assert sorted(found) == ["tok-www", "v=unrelated"]
    assert check_challenge(found, "tok-www", name=NAME) is None


def test_a_value_split_into_several_strings_is_joined(dns_server):
    assert lookup(dns_server, WILD) == ["first-half-second-half"]


def test_a_wrong_value_is_reported_with_what_was_found(dns_server):
    dns_server.set_records([(NAME, "abc"), (NAME, "def")])
    found = lookup(dns_server, NAME)
    problem = check_challenge(found, "tok-www", name=NAME)
    assert problem is not None
    assert problem.startswith("found ") and problem.endswith("but not the expected value")
    assert "'abc'" in problem and "'def'" in problem


def test_a_missing_record_is_an_empty_answer_not_an_error(dns_server):
    assert lookup(dns_server, challenge_name("other.example.com")) == []
    dns_server.set_records([])
    found = lookup(dns_server, NAME)
    assert found == []
    assert check_challenge(found, "tok-www", name=NAME) == f"no TXT record at {NAME}"


def test_a_name_too_long_for_dns_holds_no_record(dns_server):
    assert lookup(dns_server, "_paradarum-challenge." + ".".join(["a" * 63] * 4)) == []


def test_a_server_that_is_down_is_dns_unavailable_within_the_timeout(dns_server):
    dns_server.stop()
    started = time.monotonic()
    with pytest.raises(DnsUnavailable, match="did not answer"):
        lookup(dns_server, NAME)
    assert time.monotonic() - started < TIMEOUT + 1.5


def test_a_server_that_refuses_is_dns_unavailable_not_a_missing_record(tmp_path):
    with (
        running_dns(tmp_path / "dns", [], nxdomain_for_unknown=False) as server,
        pytest.raises(DnsUnavailable),
    ):
        lookup(server, NAME)
