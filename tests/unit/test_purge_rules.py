"""Purge request rules and the requests sent to cache nodes (pure functions)."""

from __future__ import annotations

import pytest

from paradarum.errors import ValidationFailed
from paradarum.purge_requests import MAX_TAG_HEADER, node_requests
from paradarum.services.purges import purge_request


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
    (request,) = node_requests("http://10.0.0.5:6081/", "urls", [url])
    assert request.method == "PURGE"
    assert str(request.url) == f"http://10.0.0.5:6081{path}"
    assert request.url.raw_path == path.encode()
    assert request.headers == {"Host": host}


def test_tags_are_banned_in_header_sized_batches():
    tags = [f"{n:03d}" + "x" * 124 for n in range(100)]
    requests = node_requests("http://cache:6081", "tags", tags)
    assert len(requests) > 1
    assert all(r.method == "BAN" and r.url.raw_path == b"/" for r in requests)
    headers = [r.headers["X-Purge-Tags"] for r in requests]
    assert all(len(header) <= MAX_TAG_HEADER for header in headers)
    assert " ".join(headers).split(" ") == tags


def test_everything_is_one_ban_all():
    (request,) = node_requests("http://cache:6081", "everything", [])
    assert (request.method, request.headers) == ("BAN", {"X-Purge-All": "1"})


def test_cache_nodes_are_read_from_a_comma_separated_environment_variable(monkeypatch):
    from paradarum.config import Settings

    monkeypatch.setenv("PARADARUM_CACHE_NODES", " http://10.0.0.1:6081, http://10.0.0.2:6081 ,")
    assert Settings().cache_nodes == ["http://10.0.0.1:6081", "http://10.0.0.2:6081"]
    monkeypatch.setenv("PARADARUM_CACHE_NODES", '["http://10.0.0.3"]')
    assert Settings().cache_nodes == ["http://10.0.0.3"]
    monkeypatch.setenv("PARADARUM_CACHE_NODES", "10.0.0.4:6081")
    with pytest.raises(ValueError, match="not an http"):
        Settings()
