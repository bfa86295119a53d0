"""The HTTP requests that make a cache node drop what a purge names. Pure: no I/O.

* ``urls``: one ``PURGE <path?query>`` per URL, with the URL's ``Host``;
* ``tags``: ``BAN /`` with ``X-Purge-Tags: a b c`` (batched to stay under header limits);
* ``everything``: ``BAN /`` with ``X-Purge-All: 1``.

``deploy/varnish/paradarum.vcl`` is the cache side of this contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

# Varnish refuses request header lines over 8 KiB by default: keep BAN headers short.
MAX_TAG_HEADER = 4000


@dataclass(frozen=True, slots=True)
class NodeRequest:
    method: str
    url: httpx.URL
    headers: dict[str, str]


def _host_header(target: str) -> tuple[str, str]:
    """``(Host header, path with query)`` the way a browser asks for ``target``."""
    parts = urlsplit(target)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    default = 443 if parts.scheme.lower() == "https" else 80
    if port is not None and port != default:
        host = f"{host}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return host, path


def _tag_batches(tags: list[str]) -> Iterator[str]:
    batch: list[str] = []
    size = 0
    for tag in tags:
        if batch and size + 1 + len(tag) > MAX_TAG_HEADER:
            yield " ".join(batch)
            batch, size = [], 0
        batch.append(tag)
        size += len(tag) + 1
    if batch:
        yield " ".join(batch)


def node_requests(node: str, kind: str, targets: list[str]) -> list[NodeRequest]:
    """The HTTP requests that make ``node`` drop what a purge names."""
    base = httpx.URL(node)
    if kind == "urls":
        requests = []
        for target in targets:
            host, path = _host_header(target)
            requests.append(
                NodeRequest("PURGE", base.copy_with(raw_path=path.encode("ascii")), {"Host": host})
            )
        return requests
    root = base.copy_with(raw_path=b"/")
    if kind == "tags":
        return [
            NodeRequest("BAN", root, {"X-Purge-Tags": batch}) for batch in _tag_batches(targets)
        ]
    if kind == "everything":
        return [NodeRequest("BAN", root, {"X-Purge-All": "1"})]
    raise ValueError(f"unknown purge kind {kind!r}")
