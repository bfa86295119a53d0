"""Purge request rules and the requests sent to cache nodes (pure functions)."""

from __future__ import annotations

import pytest

from paradarum.errors import ValidationFailed
from paradarum.purge_requests import MAX_TAG_HEADER, node_requests
from paradarum.services.purges import purge_request

NODE = "http://cache:6081"


def kinds(**body):
    return purge_request(
        urls=body.get("urls"), tags=body.get("tags"), everything=body.get("everything")
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body"}),
        ({"urls": ["https://a.example/"], "tags": ["t"]}, {"urls", "tags"}),
        ({"tags": ["t"], "everything": True}, {"tags", "everything"}),
        ({"urls": []}, {"urls"}),
        ({"urls": [f"https://a.example/{n}" for n in range(101)]}, {"urls"}),
        ({"urls": ["/relative/path"]}, {"urls"}),
        ({"urls": ["www.example.com/page"]}, {"urls"}),
        ({"urls": ["ftp://a.example/file"]}, {"urls"}),
        ({"urls": ["javascript:alert(1)"]}, {"urls"}),
        ({"urls": ["https:///no-host"]}, {"urls"}),
        ({"urls": ["https://user:pw@a.example/"]}, {"urls"}),
        ({"urls": ["https://a.example/with space"]}, {"urls"}),
        ({"urls": ["https://a.example/\x00"]}, {"urls"}),
        ({"urls": ["https://exämple.com/"]}, {"urls"}),
        ({"urls": ["https://a.example:99999/"]}, {"urls"}),
        ({"urls": ["https://a.example:0/"]}, {"urls"}),
        ({"urls": ["https://[::1/"]}, {"urls"}),
        ({"urls": ["https://a.example/" + "x" * 2048]}, {"urls"}),
        ({"tags": []}, {"tags"}),
        ({"tags": ["t"] * 101}, {"tags"}),
        ({"tags": ["has space"]}, {"tags"}),
        ({"tags": ["a,b"]}, {"tags"}),
        ({"tags": ["x" * 129]}, {"tags"}),
        ({"tags": ["ünïcode"]}, {"tags"}),
        ({"tags": ["tab\there"]}, {"tags"}),
        ({"tags": [""]}, {"tags"}),
        ({"everything": False}, {"everything"}),
    ],
)
def test_a_purge_request_must_name_exactly_one_valid_kind(body, fields):
    with pytest.raises(ValidationFailed) as caught:
        kinds(**body)
    assert set(caught.value.errors) == fields
    assert all(caught.value.errors[field] for field in fields)


def test_the_problem_names_the_offending_item():
    with pytest.raises(ValidationFailed) as caught:
        kinds(urls=["https://ok.example/", "ftp://bad.example/"])
    (problem,) = caught.value.errors["urls"]
    assert problem.startswith("Item 2 ('ftp://bad.example/')")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"urls": ["https://a.example/x?y=1#frag"]}, ("urls", ["https://a.example/x?y=1#frag"])),
        ({"urls": ["HTTP://[2001:db8::1]:8080/"]}, ("urls", ["HTTP://[2001:db8::1]:8080/"])),
        ({"tags": ["x" * 128, "a:b/c!~"]}, ("tags", ["x" * 128, "a:b/c!~"])),
        ({"tags": ["t", "u", "t"]}, ("tags", ["t", "u"])),
        ({"everything": True}, ("everything", [])),
    ],
)
def test_valid_purges_are_accepted_with_duplicates_dropped(body, expected):
    assert kinds(**body) == expected


@pytest.mark.parametrize(
    ("url", "path", "host"),
    [
        ("https://WWW.Example.COM/a/b?c=d&e=%20", "/a/b?c=d&e=%20", "www.example.com"),
        ("http://example.com", "/", "example.com"),
        ("http://example.com:80/x", "/x", "example.com"),
        ("https://example.com:443/x", "/x", "example.com"),
        ("https://example.com:8443/x", "/x", "example.com:8443"),
        ("http://[2001:db8::1]:8080/p", "/p", "[2001:db8::1]:8080"),
        ("https://example.com/page#section", "/page", "example.com"),
    ],
)
def test_a_url_purge_asks_the_node_for_the_path_with_the_sites_host(url, path, host):
    (request,) = node_requests("http://10.0.0.5:6081/", "urls", [url], hosts=[])
    assert request.method == "PURGE"
    assert str(request.url) == f"http://10.0.0.5:6081{path}"
    assert request.url.raw_path == path.encode()
    assert request.headers == {"Host": host}


ZONES = ["www.example.com", "*.shop.example"]


def test_tags_are_banned_in_header_sized_batches():
    tags = [f"{n:03d}" + "x" * 124 for n in range(100)]
    requests = node_requests("http://cache:6081", "tags", tags, hosts=ZONES)
    assert len(requests) > 1
    assert all(r.method == "BAN" and r.url.raw_path == b"/" for r in requests)
    headers = [r.headers["X-Purge-Tags"] for r in requests]
    assert all(len(header) <= MAX_TAG_HEADER for header in headers)
    assert " ".join(headers).split(" ") == tags


def test_every_tag_ban_is_confined_to_the_accounts_zones_wildcards_included():
    requests = node_requests("http://cache:6081", "tags", ["product-42"], hosts=ZONES)
    assert [r.headers for r in requests] == [
        {"X-Purge-Hosts": "www.example.com *.shop.example", "X-Purge-Tags": "product-42"}
    ]


def test_everything_is_one_ban_of_everything_served_for_the_accounts_zones():
    (request,) = node_requests("http://cache:6081", "everything", [], hosts=ZONES)
    assert (request.method, request.url.raw_path) == ("BAN", b"/")
    assert request.headers == {
        "X-Purge-Hosts": "www.example.com *.shop.example",
        "X-Purge-All": "1",
    }


@pytest.mark.parametrize("kind", ["tags", "everything"])
@pytest.mark.parametrize(
    "hosts",
    [
        [],
        ["*.com"],
        ["WWW.example.com"],
        ["a.example b.example"],
        ["example.com/x"],
        ["192.0.2.1"],
        [".*"],
    ],
)
def test_a_ban_is_never_built_without_valid_zones_to_confine_it(kind, hosts):
    with pytest.raises(ValueError, match=r"zone|hostnames"):
        node_requests("http://cache:6081", kind, ["t"], hosts=hosts)


def test_duplicate_zones_are_sent_once():
    (request,) = node_requests("http://cache:6081", "everything", [], hosts=["a.example"] * 3)
    assert request.headers["X-Purge-Hosts"] == "a.example"


def test_a_hundred_longest_zones_are_split_so_every_header_fits():
    zones = [".".join([f"{n:02d}" + "a" * 61, "b" * 63, "c" * 63, "d" * 61]) for n in range(100)]
    assert all(len(zone) == 253 for zone in zones)
    requests = node_requests("http://cache:6081", "everything", [], hosts=zones)
    headers = [r.headers["X-Purge-Hosts"] for r in requests]
    assert len(headers) == -(-100 // (MAX_TAG_HEADER // 254))  # as many as fit, no fewer
    assert all(len(header) <= MAX_TAG_HEADER for header in headers)
    assert " ".join(headers).split(" ") == zones


def test_many_zones_and_many_tags_ban_every_host_batch_with_every_tag_batch():
    zones = [f"*.site{n:03d}." + ".".join(["z" * 60] * 3) + ".example" for n in range(100)]
    tags = [f"{n:03d}" + "t" * 125 for n in range(100)]
    requests = node_requests("http://cache:6081", "tags", tags, hosts=zones)
    pairs = [(r.headers["X-Purge-Hosts"], r.headers["X-Purge-Tags"]) for r in requests]
    host_batches = list(dict.fromkeys(h for h, _ in pairs))
    tag_batches = list(dict.fromkeys(t for _, t in pairs))
    assert len(host_batches) > 1 and len(tag_batches) > 1
    assert sorted(pairs) == sorted((h, t) for h in host_batches for t in tag_batches)
    assert all(len(h) <= MAX_TAG_HEADER and len(t) <= MAX_TAG_HEADER for h, t in pairs)
    assert " ".join(host_batches).split(" ") == zones
    assert " ".join(tag_batches).split(" ") == tags


def test_url_purges_given_zones_refuse_a_url_outside_them():
    zones = ["www.example.com", "*.shop.example"]
    requests = node_requests(
        "http://cache:6081",
        "urls",
        ["https://WWW.example.com/a", "https://x.shop.example./b"],
        hosts=zones,
    )
    assert [r.headers["Host"] for r in requests] == ["www.example.com", "x.shop.example."]
    for outside in ("https://shop.example/", "https://example.com/", "https://wwwxexample.com/"):
        with pytest.raises(ValueError, match="outside"):
            node_requests("http://cache:6081", "urls", [outside], hosts=zones)


def test_cache_nodes_are_read_from_a_comma_separated_environment_variable(monkeypatch):
    from paradarum.config import Settings

    monkeypatch.setenv("PARADARUM_CACHE_NODES", " http://10.0.0.1:6081, http://10.0.0.2:6081 ,")
    assert Settings().cache_nodes == ["http://10.0.0.1:6081", "http://10.0.0.2:6081"]
    monkeypatch.setenv("PARADARUM_CACHE_NODES", '["http://10.0.0.3"]')
    assert Settings().cache_nodes == ["http://10.0.0.3"]
    monkeypatch.setenv("PARADARUM_CACHE_NODES", "10.0.0.4:6081")
    with pytest.raises(ValueError, match="not an http"):
        Settings()


def test_a_wildcard_with_exceptions_gets_a_ban_of_its_own_that_names_them():
    requests = node_requests(
        NODE,
        "everything",
        [],
        hosts=["*.example.com", "www.example.org", "*.example.net"],
        excepts={"*.example.com": ["shop.example.com", "*.eu.example.com"]},
    )
    assert [dict(r.headers) for r in requests] == [
        {"X-Purge-Hosts": "www.example.org *.example.net", "X-Purge-All": "1"},
        {
            "X-Purge-Hosts": "*.example.com",
            "X-Purge-Except-Hosts": "shop.example.com *.eu.example.com",
            "X-Purge-All": "1",
        },
    ]


@pytest.mark.parametrize(
    "excepts",
    [
        {"www.example.org": ["a.www.example.org"]},  # only a wildcard has exceptions
        {"*.example.com": ["Shop.example.com"]},  # not in zone form
        {"*.example.com": [f"h{n:04d}.example.com" for n in range(300)]},  # over a header
    ],
)
def test_exceptions_that_cannot_be_sent_whole_refuse_the_ban(excepts):
    with pytest.raises(ValueError):
        node_requests(
            NODE, "tags", ["t"], hosts=["*.example.com", "www.example.org"], excepts=excepts
        )
