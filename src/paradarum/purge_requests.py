"""The HTTP requests that make a cache node drop what a purge names. Pure: no I/O.

* ``urls``: one ``PURGE <path?query>`` per URL, with the URL's ``Host``;
* ``tags``: ``BAN /`` with ``X-Purge-Hosts: <zones>`` and ``X-Purge-Tags: a b c``;
* ``everything``: ``BAN /`` with ``X-Purge-Hosts: <zones>`` and ``X-Purge-All: 1``;
* a wildcard zone beneath which other zones name hostnames more precisely (another
  account's ``shop.example.com`` under ``*.example.com``) gets a ban of its own with
  ``X-Purge-Except-Hosts: <those zones>``: the most specific zone owns a hostname, so
  the wildcard's ban must not reach them.

A cache node is shared by every customer, and two origins may use the same tag. So a
ban always names the hostnames (the purging account's zones) it is confined to, and the
cache drops only objects served for those hosts: nothing built here can match another
account's objects. Long lists are split so that every header stays under
:data:`MAX_TAG_HEADER`; with many zones *and* many tags, every batch of hosts goes with
every batch of tags.

``deploy/varnish/paradarum.vcl`` is the cache side of this contract.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from paradarum import hostnames
from paradarum.errors import ValidationFailed

# Longest X-Purge-Hosts or X-Purge-Tags header. Varnish refuses header lines over 8 KiB
# by default, and the shipped VCL builds each ban's regex from both headers inside the
# request's workspace (96 KiB by default), where escaping can make a list up to four
# times longer (a " becomes \x22). 3000 keeps the worst case, the shortest wildcard zones
# with tags of quotes, inside a default Varnish with room to spare
# (tests/e2e/test_vcl_isolation.py sends it).
MAX_TAG_HEADER = 3000


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


def _batches(items: Sequence[str]) -> Iterator[str]:
    """Space-separated runs of ``items``, each at most :data:`MAX_TAG_HEADER` long."""
    batch: list[str] = []
    size = 0
    for item in items:
        if len(item) > MAX_TAG_HEADER:
            raise ValueError(f"{item[:40]!r}... is longer than a header may be")
        if batch and size + 1 + len(item) > MAX_TAG_HEADER:
            yield " ".join(batch)
            batch, size = [], 0
        size += len(item) + (1 if batch else 0)
        batch.append(item)
    if batch:
        yield " ".join(batch)


def _zones(hosts: Sequence[str]) -> list[str]:
    """``hosts`` as zone hostnames, once each; ValueError unless each is one already."""
    zones = list(dict.fromkeys(hosts))
    for zone in zones:
        try:
            valid = hostnames.normalise(zone) == zone
        except ValidationFailed:
            valid = False
        if not valid:
            raise ValueError(f"{zone!r} is not a zone hostname in normalised form")
    return zones


def node_requests(
    node: str,
    kind: str,
    targets: Sequence[str],
    *,
    hosts: Sequence[str],
    excepts: Mapping[str, Sequence[str]] | None = None,
) -> list[NodeRequest]:
    """The HTTP requests that make ``node`` drop what a purge names.

    ``hosts`` are the purging account's active zones (normalised, as stored). Tags and
    everything are confined to them, and need at least one: a ban without hosts would
    reach every customer's objects, so it raises ValueError rather than being sent. For
    URLs they may be empty; when given, a URL whose host no zone covers is a ValueError
    too (the purge service has refused such URLs already: this is the last line).

    ``excepts`` maps wildcard zones among ``hosts`` to the zones beneath them that the
    ban must leave alone; all of one wildcard's exceptions go in one request (split, a
    ban would drop what another part excepts), so more than a header holds is a
    ValueError rather than a wider ban.
    """
    base = httpx.URL(node)
    zones = _zones(hosts)
    if kind == "urls":
        requests = []
        for target in targets:
            if zones and not _covered(target, zones):
                raise ValueError(f"{target!r} is on a host outside the purging account's zones")
            host, path = _host_header(target)
            requests.append(
                NodeRequest("PURGE", base.copy_with(raw_path=path.encode("ascii")), {"Host": host})
            )
        return requests
    if kind not in ("tags", "everything"):
        raise ValueError(f"unknown purge kind {kind!r}")
    if not zones:
        raise ValueError(f"a {kind} purge needs the hostnames (zones) it is confined to")
    root = base.copy_with(raw_path=b"/")
    excepted = {zone: _exceptions(zone, (excepts or {}).get(zone, ())) for zone in zones}
    groups = [{"X-Purge-Hosts": batch} for batch in _batches([z for z in zones if not excepted[z]])]
    groups += [
        {"X-Purge-Hosts": zone, "X-Purge-Except-Hosts": excepted[zone]}
        for zone in zones
        if excepted[zone]
    ]
    if kind == "everything":
        return [NodeRequest("BAN", root, {**group, "X-Purge-All": "1"}) for group in groups]
    tag_batches = list(_batches(targets))
    return [
        NodeRequest("BAN", root, {**group, "X-Purge-Tags": tag_batch})
        for group in groups
        for tag_batch in tag_batches
    ]


def _exceptions(zone: str, others: Sequence[str]) -> str:
    """The ``X-Purge-Except-Hosts`` of wildcard ``zone``: '' when none."""
    if not others:
        return ""
    if not hostnames.is_wildcard(zone):
        raise ValueError(f"only a wildcard zone has exceptions, not {zone!r}")
    listed = " ".join(_zones(others))
    if len(listed) > MAX_TAG_HEADER:
        raise ValueError(f"the zones beneath {zone!r} are more than one request can except")
    return listed


def _covered(url: str, zones: Sequence[str]) -> bool:
    host = hostnames.url_host(url)
    return host is not None and any(hostnames.covers(zone, host) for zone in zones)
