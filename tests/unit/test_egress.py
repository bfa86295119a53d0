"""Where webhooks may be sent: URL rules, the address policy, and the request aimed
at the checked address (pure; DNS is tested against a real server in
tests/web/test_webhooks.py)."""

from __future__ import annotations

import ipaddress

import pytest

from paradarum.egress import AddressPolicy, parse_url, pinned
from paradarum.errors import ValidationFailed


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.100.100.200", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),
        ("2002:a00:1::1", "private"),
    ],
)
def test_addresses_that_are_not_public_are_refused(address, kind):
    refusal = AddressPolicy().refusal(ipaddress.ip_address(address))
    assert refusal is not None and kind in refusal


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) is None


def test_the_operator_admits_networks_of_their_own_and_only_those():
    policy = AddressPolicy(["127.0.0.1/32", "10.20.0.0/16"])
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) is not None
    assert policy.refusal(ipaddress.ip_address("10.21.0.1")) is not None


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:pass@example.com/",
        "http://@example.com/",
        "https://example.com/#fragment",
        "http:///path",
        "http://localhost/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://*.example.com/",
        "http://example.com:0/",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "http://example.com/\x00",
        "http://example.com\\@evil.com/",
        "http://[::1/",
        "https://" + "a" * 2001,
    ],
)
def test_urls_that_are_not_plain_http_s_are_refused_on_url(url):
    with pytest.raises(ValidationFailed) as refused:
        parse_url(url)
    assert list(refused.value.errors) == ["url"]


def test_a_url_is_read_as_the_connection_will_be_made():
    target = parse_url("  https://Hooks.Example.COM:8443/in?x=1  ")
    assert (target.scheme, target.host, target.port, target.target) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?x=1",
    )
    assert target.literal is None and target.host_header == "hooks.example.com:8443"
    assert parse_url("http://[2001:db8::1]/").host_header == "[2001:db8::1]"


def test_the_request_goes_to_the_checked_address_with_the_name_for_host_and_tls():
    target = parse_url("https://hooks.example.com/in?x=1")
    request = pinned(target, ipaddress.ip_address("203.0.113.7"))
    assert request.url == "https://203.0.113.7:443/in?x=1"
    assert request.headers == {"Host": "hooks.example.com"}
    assert request.extensions == {"sni_hostname": "hooks.example.com"}
    six = pinned(parse_url("http://hooks.example.com:8080/"), ipaddress.ip_address("2001:db8::7"))
    assert six.url == "http://[2001:db8::7]:8080/" and six.extensions == {}
    assert six.headers == {"Host": "hooks.example.com:8080"}
