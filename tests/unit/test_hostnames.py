"""Zone hostnames: one normalised form, wildcard coverage, the host of a purge URL."""

from __future__ import annotations

import pytest

from paradarum import hostnames
from paradarum.errors import ValidationFailed
from paradarum.hostnames import challenge_name, covers, normalise, url_host

LONGEST = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("www.example.com", "www.example.com"),
        ("  WWW.Example.COM  ", "www.example.com"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("faß.de", "xn--fa-hia.de"),  # non-transitional, as browsers ask for it
        ("ＥＸＡＭＰＬＥ。ｃｏｍ", "example.com"),  # full-width letters and dot
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("*.Example.com", "*.example.com"),
        ("*.bücher.example", "*.xn--bcher-kva.example"),
        ("a-b.c0.example", "a-b.c0.example"),
        ("1password.com", "1password.com"),
        (LONGEST, LONGEST),
    ],
)
def test_a_hostname_is_stored_trimmed_lowercase_and_in_punycode(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "Enter a hostname"),
        ("   ", "Enter a hostname"),
        ("www.exa mple.com", "spaces"),
        ("https://www.example.com", "without http:// or https://"),
        ("HTTP://www.example.com/", "without http:// or https://"),
        ("www.example.com/blog", "without a path"),
        ("www.example.com?x=1", "without a path, query"),
        ("www.example.com#top", "fragment"),
        ("user@www.example.com", "user name"),
        ("www.example.com:8080", "without a port"),
        ("localhost", "at least two labels"),
        ("com.", "trailing dot"),
        ("www.example.com.", "without the trailing dot: 'www.example.com'"),
        ("*.shop.example.", "without the trailing dot: '*.shop.example'"),
        ("*.com", "at least two labels after *."),
        ("*", "at least two labels after *."),
        ("a.*.com", "only as the whole first label"),
        ("*a.example.com", "only as the whole first label"),
        ("*.*.example.com", "only as the whole first label"),
        ("www..example.com", "empty label"),
        (".example.com", "empty label"),
        ("my_host.example.com", "underscore"),
        ("_dmarc.example.com", "underscore"),
        ("-www.example.com", "hyphen"),
        ("www-.example.com", "hyphen"),
        ("www.exa!mple.com", "'!'"),
        ("a" * 64 + ".example.com", "at most 63 characters"),
        (LONGEST + "d", "at most 253 characters"),
        ("*." + LONGEST[2:] + "x", "at most 253 characters"),
        ("192.0.2.1", "IP address"),
        ("1.2.3", "IP address"),
        ("example.0x7f", "IP address"),
        ("::1", "IP address"),
        ("2001:db8::1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("xn--zz.example", "not valid punycode"),
        ("😀.example", "not a valid international name"),
        ("bü_cher.example", "underscore"),
        ("bücher-.example", "hyphen"),
        ("ü" * 60 + ".example", "once IDNA-encoded"),
        ("192.0.2.1:8080", "IP address"),
    ],
)
def test_anything_but_a_bare_hostname_is_refused_with_a_sentence_that_says_why(raw, says):
    with pytest.raises(ValidationFailed) as caught:
        normalise(raw)
    (problem,) = caught.value.errors["hostname"]
    assert says in problem
    assert caught.value.message == problem
    assert problem.endswith(".")


@pytest.mark.parametrize(
    ("zone", "host", "covered"),
    [
        ("www.example.com", "www.example.com", True),
        ("www.example.com", "example.com", False),
        ("www.example.com", "a.www.example.com", False),
        ("example.com", "www.example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "b.a.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "badexample.com", False),
        ("*.example.com", "a.badexample.com", False),
        ("*.example.com", ".example.com", False),
        ("*.example.com", "example.com.evil.test", False),
    ],
)
def test_a_wildcard_zone_covers_every_subdomain_but_not_the_apex(zone, host, covered):
    assert covers(zone, host) is covered


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://WWW.Example.COM/a?b=c", "www.example.com"),
        ("http://www.example.com.:8080/", "www.example.com"),
        ("https://user@www.example.com/", "www.example.com"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("http://[2001:DB8::1]:8080/", "2001:db8::1"),
        ("ftp://www.example.com/", None),
        ("/relative/path", None),
        ("https:///no-host", None),
        ("https://www%2eexample.com/", None),
        ("https://*.example.com/", None),
    ],
)
def test_the_host_of_a_url_is_the_one_a_browser_sends(url, host):
    assert url_host(url) == host


def test_a_url_on_a_subdomain_is_covered_by_the_wildcard_zone():
    host = url_host("https://Shop.Example.com./cart")
    assert host is not None
    assert covers(normalise("*.example.com"), host)
    assert not covers(normalise("example.com"), host)


@pytest.mark.parametrize(
    ("zone", "name"),
    [
        ("www.example.com", "_paradarum-challenge.www.example.com"),
        ("*.example.com", "_paradarum-challenge.example.com"),
    ],
)
def test_the_challenge_record_of_a_wildcard_zone_lives_at_its_base_name(zone, name):
    assert challenge_name(zone) == name


def test_the_zones_that_could_own_a_host_are_listed_most_specific_first():
    assert hostnames.candidates("a.shop.example.com") == [
        "a.shop.example.com",
        "*.shop.example.com",
        "*.example.com",
    ]
    assert hostnames.candidates("example.com") == ["example.com"]


@pytest.mark.parametrize(
    ("zone", "inside"),
    [
        ("shop.example.com", True),
        ("a.b.example.com", True),
        ("*.eu.example.com", True),
        ("example.com", False),
        ("*.example.com", False),
        ("badexample.com", False),
        ("*.com", False),
    ],
)
def test_a_zone_is_beneath_a_wildcard_only_when_it_names_its_subdomains_more_precisely(
    zone, inside
):
    assert hostnames.beneath("*.example.com", zone) is inside
    assert hostnames.beneath("www.example.com", zone) is False
