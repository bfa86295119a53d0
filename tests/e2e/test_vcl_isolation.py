"""One cache, many customers: a ban built by Paradarum drops only the purging account's objects.

A real Varnish runs the shipped VCL in front of an origin where several hosts serve pages
with the same tags; the requests sent are exactly those :func:`node_requests` builds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from paradarum.purge_requests import node_requests
from tests.cache import Origin, Varnish, running_origin, running_varnish

TAGS = {"/page": "shared", "/other": "other", "/odd": 'odd.(tag)"[x]'}
HEADERS = {"/spoof": {"X-Paradarum-Host": "a.test", "X-Cache-Tags": "shared"}}


@pytest.fixture
def origin() -> Iterator[Origin]:
    with running_origin(TAGS, HEADERS) as server:
        yield server


@pytest.fixture
def varnish(origin: Origin, tmp_path: Path) -> Iterator[Varnish]:
    with running_varnish(origin.port, tmp_path / "varnish") as cache:
        yield cache


def warm(varnish: Varnish, host: str, path: str = "/page") -> None:
    """Get ``path`` on ``host`` into the cache (the second fetch is a HIT)."""
    varnish.get(path, host=host)
    again = varnish.get(path, host=host)
    assert again.headers["x-cache"] == "HIT", (host, path)
    assert "x-paradarum-host" not in again.headers
    assert "x-cache-tags" not in again.headers


def cache_state(varnish: Varnish, host: str, path: str = "/page") -> str:
    """HIT or MISS for the next visitor (who then caches it again)."""
    return str(varnish.get(path, host=host).headers["x-cache"])


def send(varnish: Varnish, kind: str, targets: Sequence[str], hosts: Sequence[str]) -> None:
    requests = node_requests(varnish.base_url, kind, targets, hosts=hosts)
    assert requests
    for request in requests:
        response = httpx.request(request.method, request.url, headers=request.headers, timeout=10)
        assert response.status_code == 200, (request.headers, response.text)


def test_a_tag_ban_for_one_host_leaves_another_hosts_page_with_the_same_tag_cached(varnish):
    warm(varnish, "a.test")
    warm(varnish, "b.test")
    warm(varnish, "b.test", "/other")

    send(varnish, "tags", ["shared"], hosts=["b.test"])

    assert cache_state(varnish, "b.test") == "MISS"
    assert cache_state(varnish, "a.test") == "HIT"
    assert cache_state(varnish, "b.test", "/other") == "HIT"


def test_everything_for_one_host_drops_its_pages_whatever_the_host_spelling_and_no_others(
    varnish,
):
    # Two objects: the cache files `B.Test`, `b.test.` and `b.test` as one (below),
    # and another port is another object.
    spellings = ["B.Test", "b.test:8080"]
    for host in spellings:
        warm(varnish, host)
    warm(varnish, "b.test", "/other")
    for host in ("a.test", "www.b.test"):
        warm(varnish, host)
        warm(varnish, host, "/other")

    send(varnish, "everything", [], hosts=["b.test"])

    for host in spellings:
        assert cache_state(varnish, host) == "MISS", host
    assert cache_state(varnish, "b.test", "/other") == "MISS"
    for host in ("a.test", "www.b.test"):
        assert cache_state(varnish, host) == "HIT", host
        assert cache_state(varnish, host, "/other") == "HIT", host


@pytest.mark.parametrize(("kind", "targets"), [("everything", []), ("tags", ["shared"])])
def test_a_wildcard_zone_drops_subdomains_at_any_depth_but_not_the_apex_or_lookalikes(
    varnish, kind, targets
):
    inside = ["x.b.test", "y.x.b.test", "X.B.TEST:8080"]
    outside = ["b.test", "xb.test", "x.xb.test", "a.test", "x.b.test.evil.test", "b.test.x.b"]
    for host in inside + outside:
        warm(varnish, host)

    send(varnish, kind, targets, hosts=["*.b.test"])

    assert {host: cache_state(varnish, host) for host in inside + outside} == {
        **{host: "MISS" for host in inside},
        **{host: "HIT" for host in outside},
    }


BAD_BANS = [
    {"X-Purge-All": "1"},
    {"X-Purge-Tags": "shared"},
    {"X-Purge-Hosts": "", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "-", "X-Purge-Tags": "shared"},
    {"X-Purge-Hosts": ".*", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "(.*)", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test|a.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test)|(.*", "X-Purge-Tags": "shared"},
    {"X-Purge-Hosts": "b.test$|^a.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "*", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "*.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "a.*.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "*b.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b..test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": ".b.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "-b.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test:80", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test/x", "X-Purge-All": "1"},
    {"X-Purge-Hosts": 'b"test.x', "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test,a.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "a" * 64 + ".test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "B.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test a.test.", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test  a.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test\ta.test", "X-Purge-All": "1"},
    {"X-Purge-Hosts": "b.test"},  # hosts alone name nothing to drop
]


def test_a_ban_without_valid_hosts_is_refused_and_drops_nothing(varnish):
    hosts = ["a.test", "b.test", "x.b.test"]
    for host in hosts:
        warm(varnish, host)

    answers = {
        repr(headers): httpx.request(
            "BAN", varnish.base_url + "/", headers=headers, timeout=10
        ).status_code
        for headers in BAD_BANS
    }

    assert answers == {repr(headers): 400 for headers in BAD_BANS}
    assert {host: cache_state(varnish, host) for host in hosts} == dict.fromkeys(hosts, "HIT")


def test_regex_characters_in_hosts_and_tags_cannot_widen_a_ban(varnish):
    # An unescaped "." in the zone a.b.test would also match a-b.test and axb.test.
    for host in ("a.b.test", "a-b.test", "axb.test"):
        warm(varnish, host)
        warm(varnish, host, "/odd")

    send(varnish, "tags", [".*", "shar.d", "(shared)", "shared|x", "^shared$"], hosts=["a.b.test"])
    assert cache_state(varnish, "a.b.test") == "HIT"

    send(varnish, "tags", ['odd.(tag)"[x]'], hosts=["a.b.test"])
    assert cache_state(varnish, "a.b.test", "/odd") == "MISS"
    assert cache_state(varnish, "a-b.test", "/odd") == "HIT"

    send(varnish, "everything", [], hosts=["a.b.test"])
    assert cache_state(varnish, "a.b.test") == "MISS"
    assert cache_state(varnish, "a-b.test") == "HIT"
    assert cache_state(varnish, "axb.test") == "HIT"


def test_an_object_belongs_to_the_host_it_was_served_for_not_the_one_its_origin_claims(
    varnish,
):
    warm(varnish, "b.test", "/spoof")  # the origin says X-Paradarum-Host: a.test

    send(varnish, "everything", [], hosts=["a.test"])
    send(varnish, "tags", ["shared"], hosts=["a.test"])
    assert cache_state(varnish, "b.test", "/spoof") == "HIT"

    send(varnish, "tags", ["shared"], hosts=["b.test"])
    assert cache_state(varnish, "b.test", "/spoof") == "MISS"


def test_bans_for_a_hundred_longest_zones_and_a_hundred_long_tags_reach_the_last_of_each(
    varnish,
):
    zones = [".".join([f"{n:02d}" + "a" * 61, "b" * 63, "c" * 63, "d" * 61]) for n in range(99)]
    zones.append("b.test")
    tags = [f"{n:03d}" + "t.(x)" * 25 for n in range(99)] + ["shared"]
    for host in ("a.test", "b.test"):
        warm(varnish, host)
        warm(varnish, host, "/other")

    send(varnish, "tags", tags, hosts=zones)
    assert cache_state(varnish, "b.test") == "MISS"
    assert cache_state(varnish, "b.test", "/other") == "HIT"
    assert cache_state(varnish, "a.test") == "HIT"

    send(varnish, "everything", [], hosts=zones)
    assert cache_state(varnish, "b.test", "/other") == "MISS"
    assert cache_state(varnish, "a.test", "/other") == "HIT"


def test_a_url_purge_drops_that_url_on_that_host_only(varnish):
    for host in ("a.test", "b.test"):
        warm(varnish, host)

    send(varnish, "urls", ["https://B.test/page"], hosts=["b.test"])

    assert cache_state(varnish, "b.test") == "MISS"
    assert cache_state(varnish, "a.test") == "HIT"


@pytest.mark.parametrize(
    "spelling", ["b.test.", "b.test:80", "b.test:443", "B.Test", "B.TEST.:80", "b.test.:443"]
)
def test_a_url_purge_drops_the_object_whatever_spelling_of_the_host_it_was_cached_under(
    varnish, spelling
):
    warm(varnish, spelling)
    warm(varnish, "a.test.")

    send(varnish, "urls", ["https://b.test/page"], hosts=["b.test"])

    assert cache_state(varnish, spelling) == "MISS"
    assert cache_state(varnish, "a.test.") == "HIT"


def test_every_spelling_of_a_host_is_one_cached_object_but_another_port_is_another(varnish, origin):
    warm(varnish, "b.test")
    for spelling in ("b.test.", "b.test:80", "B.Test:443", "B.TEST."):
        assert cache_state(varnish, spelling) == "HIT", spelling
    assert cache_state(varnish, "b.test:8080") == "MISS"
    # The origin saw the host in the one spelling, once, plus the other port.
    assert sorted(host for host, _ in origin.counters if "b.test" in host) == [
        "b.test",
        "b.test:8080",
    ]


def test_the_largest_ban_paradarum_can_send_fits_a_default_varnish(varnish):
    # The most that escaping inflates: the shortest wildcard zones and tags made of
    # double quotes (each becomes \x22), each header as long as node_requests allows.
    zones = [f"*.{n:03d}.t" for n in range(999)] + ["*.b.test"]
    tags = [f"{n:03d}" + '"' * 125 for n in range(99)] + ["shared"]
    for host in ("x.b.test", "a.test"):
        warm(varnish, host)

    send(varnish, "tags", tags, hosts=zones)

    assert cache_state(varnish, "x.b.test") == "MISS"
    assert cache_state(varnish, "a.test") == "HIT"


@pytest.mark.parametrize(("kind", "targets"), [("everything", []), ("tags", ["shared"])])
def test_a_wildcard_ban_leaves_alone_the_hosts_it_excepts(varnish, kind, targets):
    dropped = ["www.b.test", "x.y.b.test", "eu.b.test"]
    spared = ["shop.b.test", "a.eu.b.test", "z.a.eu.b.test", "b.test", "a.test"]
    for host in dropped + spared:
        warm(varnish, host)

    send(varnish, kind, targets, hosts=["*.b.test"])  # nothing excepted: a reminder
    for host in dropped + spared:
        warm(varnish, host)
    requests = node_requests(
        varnish.base_url,
        kind,
        targets,
        hosts=["*.b.test"],
        excepts={"*.b.test": ["shop.b.test", "*.eu.b.test"]},
    )
    assert [r.headers["X-Purge-Except-Hosts"] for r in requests] == ["shop.b.test *.eu.b.test"]
    for request in requests:
        response = httpx.request(request.method, request.url, headers=request.headers, timeout=10)
        assert response.status_code == 200, response.text

    assert {host: cache_state(varnish, host) for host in dropped + spared} == {
        **{host: "MISS" for host in dropped},
        **{host: "HIT" for host in spared},
    }


@pytest.mark.parametrize(
    "excepted", ["", "*", "b.test|.*", ".*", "shop.b.test  x.b.test", "X.b.test"]
)
def test_a_ban_with_invalid_exceptions_is_refused_and_drops_nothing(varnish, excepted):
    warm(varnish, "x.b.test")
    response = httpx.request(
        "BAN",
        varnish.base_url + "/",
        headers={"X-Purge-Hosts": "*.b.test", "X-Purge-Except-Hosts": excepted, "X-Purge-All": "1"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert cache_state(varnish, "x.b.test") == "HIT"
