"""The DNS resolver setting and the verdict on the TXT values found (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paradarum.config import Settings
from paradarum.dnsverify import check_challenge

NAME = "_paradarum-challenge.www.example.com"


def test_the_expected_value_among_others_verifies():
    assert check_challenge(["v=spf1 -all", "tok123"], "tok123", name=NAME) is None


def test_quotes_and_spaces_a_dns_form_kept_around_the_value_are_forgiven():
    assert check_challenge(['"tok123"'], "tok123", name=NAME) is None
    assert check_challenge([" tok123 "], "tok123", name=NAME) is None


def test_no_record_names_where_it_was_looked_for():
    assert check_challenge([], "tok123", name=NAME) == f"no TXT record at {NAME}"


def test_a_wrong_value_says_what_was_found():
    assert check_challenge(["abc", "def"], "tok123", name=NAME) == (
        f"found 'abc', 'def' at {NAME} but not the expected value"
    )


def test_many_or_long_found_values_are_shortened():
    problem = check_challenge([f"v{n}" for n in range(8)] + ["x" * 500], "t", name=NAME)
    assert problem is not None
    assert "'v4' and 4 more" in problem
    assert "x" * 100 not in problem


def test_a_challenge_name_longer_than_dns_allows_says_so():
    long_name = "_paradarum-challenge." + ".".join(["a" * 63] * 4)
    problem = check_challenge([], "tok", name=long_name)
    assert problem is not None and "longer than DNS allows" in problem


def test_the_system_resolver_is_used_unless_one_is_set(monkeypatch):
    monkeypatch.delenv("PARADARUM_DNS_RESOLVER", raising=False)
    settings = Settings()
    assert settings.dns_nameserver is None
    assert settings.dns_timeout_seconds == 5


@pytest.mark.parametrize(
    ("value", "nameserver"),
    [
        ("10.0.0.53", ("10.0.0.53", 53)),
        (" 127.0.0.1:5353 ", ("127.0.0.1", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("[2001:DB8::53]:5353", ("2001:db8::53", 5353)),
        ("", None),
    ],
)
def test_the_resolver_is_an_address_with_an_optional_port(monkeypatch, value, nameserver):
    monkeypatch.setenv("PARADARUM_DNS_RESOLVER", value)
    assert Settings().dns_nameserver == nameserver


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("dns.example.com", "must be an IP address"),
        ("10.0.0.53:0", "invalid port"),
        ("10.0.0.53:65536", "invalid port"),
        ("10.0.0.53:dns", "invalid port"),
        ("[10.0.0.53]:53", "brackets are for IPv6"),
        ("[2001:db8::53]:", "empty port"),
        ("[2001:db8::53", "not an address"),
        ("udp://10.0.0.53", "must be an IP address"),
    ],
)
def test_a_resolver_that_is_not_an_address_is_a_clear_configuration_error(monkeypatch, value, says):
    monkeypatch.setenv("PARADARUM_DNS_RESOLVER", value)
    with pytest.raises(ValidationError, match="PARADARUM_DNS_RESOLVER") as caught:
        Settings()
    assert says in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-1", "61"])
def test_the_dns_timeout_is_bounded(monkeypatch, value):
    monkeypatch.setenv("PARADARUM_DNS_TIMEOUT_SECONDS", value)
    with pytest.raises(ValidationError):
        Settings()
