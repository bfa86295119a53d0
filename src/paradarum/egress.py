"""Where Paradarum's own outgoing requests may go (webhooks, and the keys of the
OpenID Connect issuers trust policies name), and how they get there.

A webhook URL is chosen by a customer (and so is an issuer, and through the
issuer's discovery document the URL of its keys), so without care it is a way to make the
server send requests into its own network (server-side request forgery): to a
database's HTTP port on 127.0.0.1, an admin interface on 10.0.0.5, or a cloud's
metadata service at 169.254.169.254, which hands out credentials. So:

* a URL is ``http(s)`` only, without a user name or password, a fragment, or
  anything a browser would read differently from us (:func:`parse_url`);
* every address its host resolves to must be a public one: not loopback, private,
  link-local (metadata services live there), shared, reserved, multicast or
  unspecified, IPv4 inside IPv6 included (:class:`AddressPolicy`); an operator
  admits networks of their own (``PARADARUM_WEBHOOK_ALLOWED_NETWORKS``) for private
  deployments and tests;
* the check is made when the URL is saved (so a customer hears at once) **and again
  at every send, after DNS**, and the request goes to the very address that was
  checked (:func:`pinned`): the name is not looked up a second time by the HTTP
  client, so a DNS answer that changes between the check and the connection (DNS
  rebinding) gains nothing. For ``https`` the TLS server name and the certificate
  check use the hostname, and the ``Host`` header carries it, as if the name had
  been connected to.

Names are resolved through the same resolver as zone verification
(``PARADARUM_DNS_RESOLVER``, else the system's), A and AAAA records; ``/etc/hosts``
is not read, so ``localhost`` and the like name nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from paradarum import hostnames
from paradarum.errors import DnsUnavailable, ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL = 2000
# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it
# (NAT64, RFC 6052 and RFC 8215): checked as the IPv4 address they lead to.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


# How a refusal ends, unless the caller says what it refuses.
WEBHOOKS_REFUSED = "webhooks are sent to public addresses only"


class Refused(Exception):
    """The URL may not be sent to; the message says why, for the customer."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: what to connect to and what to ask for."""

    url: str
    scheme: str
    # The hostname (IDNA, lowercase) or the IP address as written, without brackets.
    host: str
    port: int
    # What follows the host in the request line: path and query.
    target: str
    # The address, when the URL names one rather than a hostname.
    literal: IPAddress | None

    @property
    def host_header(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return shown if self.port == default else f"{shown}:{self.port}"


def _problem(text: str) -> ValidationFailed:
    return ValidationFailed({"url": [text]}, f"The webhook URL is not accepted: {text}")


def parse_url(raw: str) -> Target:
    """``raw`` as a :class:`Target`, or :class:`ValidationFailed` on ``url`` naming the
    problem. Pure: no DNS here (see :func:`addresses`)."""
    url = raw.strip()
    if not url:
        raise _problem("Give the URL events are sent to, such as https://example.com/hooks.")
    if len(url) > MAX_URL:
        raise _problem(f"A webhook URL may be at most {MAX_URL} characters long.")
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in url):
        raise _problem(
            "The URL must not contain spaces, control characters or non-ASCII characters "
            "(percent-encode them; international hostnames in punycode)."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _problem("This is not a URL with a valid host and port.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _problem("Only http:// and https:// URLs are accepted (https:// is recommended).")
    if "@" in parts.netloc:
        raise _problem("The URL must not carry a user name or password (user:password@).")
    if parts.fragment or url.endswith("#"):
        raise _problem("The URL must not have a fragment (#...): it is never sent.")
    if "\\" in url:
        raise _problem("The URL must not contain backslashes.")
    host = parts.hostname or ""
    if not host:
        raise _problem("The URL has no host.")
    if port == 0:
        raise _problem("Port 0 cannot be connected to.")
    literal: IPAddress | None = None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is None:
        if parts.netloc.startswith("["):
            raise _problem("The URL's IPv6 address is not valid.")
        if _NUMERIC_LABEL.fullmatch(host.rstrip(".").rpartition(".")[2]):
            # 2130706433, 0x7f.1, 127.1: what browsers read as an IPv4 address.
            raise _problem(
                f"{host[:60]!r} ends in a number: write an IP address in its usual form "
                "(203.0.113.7), or use a hostname."
            )
        try:
            host = hostnames.normalise(host.rstrip(".") if host.count(".") > 1 else host)
        except ValidationFailed as exc:
            raise _problem(" ".join(exc.errors.get("hostname", [exc.message]))) from None
        if hostnames.is_wildcard(host):
            raise _problem("A URL's host cannot be a wildcard.")
    else:
        host = str(literal)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    default = 443 if scheme == "https" else 80
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port or default,
        target=target,
        literal=literal,
    )


def _kind(address: IPAddress) -> str | None:
    """What makes ``address`` not a public one, in the customer's words."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved or non-public address"
    return None


class AddressPolicy:
    """Which addresses requests may go to: public ones, and the operator's networks."""

    def __init__(self, allowed: Sequence[str] = ()) -> None:
        self.allowed: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in allowed
        )

    def _admitted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed)

    def refusal(self, address: IPAddress) -> str | None:
        """None when ``address`` may be connected to; else what it is ("a loopback
        address")."""
        if self._admitted(address):
            return None
        inner: IPAddress | None = None
        if isinstance(address, ipaddress.IPv6Address):
            inner = address.ipv4_mapped or address.sixtofour
            if address.teredo is not None:
                inner = address.teredo[1]
            if inner is None and any(address in prefix for prefix in _NAT64):
                inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            # An IPv4 address written as IPv6 is that IPv4 address.
            if self._admitted(inner):
                return None
            kind = _kind(inner)
            if kind is not None:
                return f"{kind} ({inner} inside IPv6)"
        return _kind(address)


def _resolver(nameserver: tuple[str, int] | None, timeout: float) -> dns.asyncresolver.Resolver:
    if nameserver is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        address, port = nameserver
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


async def _records(
    resolver: dns.asyncresolver.Resolver, name: dns.name.Name, kind: dns.rdatatype.RdataType
) -> list[IPAddress]:
    try:
        answer = await resolver.resolve(name, kind, search=False, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError) as exc:
        raise DnsUnavailable() from exc
    if answer.rrset is None:
        return []
    return [ipaddress.ip_address(rdata.address) for rdata in answer.rrset]


async def addresses(
    target: Target, *, nameserver: tuple[str, int] | None, timeout: float
) -> list[IPAddress]:
    """Every address ``target``'s host has now (its literal, or its A and AAAA
    records); ``[]`` when DNS has none. :class:`DnsUnavailable` when DNS did not say."""
    if target.literal is not None:
        return [target.literal]
    try:
        name = dns.name.from_text(target.host)
    except dns.exception.DNSException:
        return []
    resolver = _resolver(nameserver, timeout)
    found_v4, found_v6 = await asyncio.gather(
        _records(resolver, name, dns.rdatatype.A), _records(resolver, name, dns.rdatatype.AAAA)
    )
    return [*found_v4, *found_v6]


async def checked_address(
    target: Target,
    *,
    policy: AddressPolicy,
    nameserver: tuple[str, int] | None,
    timeout: float,
    refused: str = WEBHOOKS_REFUSED,
) -> IPAddress:
    """The address to connect to for ``target``: every address its host resolves to
    must be allowed (one refused address refuses the URL: which one a client would
    pick is not ours to guess), and the first is used. :class:`Refused` says why not,
    ending with ``refused``."""
    found = await addresses(target, nameserver=nameserver, timeout=timeout)
    if not found:
        raise Refused(f"{target.host} has no address in DNS")
    for address in found:
        kind = policy.refusal(address)
        if kind is not None:
            named = (
                f"{address} is {kind}"
                if target.literal is not None
                else f"{target.host} resolves to {address}, {kind}"
            )
            raise Refused(f"{named}; {refused}")
    return found[0]


@dataclass(frozen=True, slots=True)
class Pinned:
    """An HTTP request for a target, aimed at one checked address."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pinned(target: Target, address: IPAddress) -> Pinned:
    """The request line, ``Host`` and TLS server name that reach ``target`` through
    ``address`` and nothing else."""
    shown = f"[{address}]" if address.version == 6 else str(address)
    extensions = {}
    if target.scheme == "https" and target.literal is None:
        # The certificate is checked against the hostname, not the address.
        extensions["sni_hostname"] = target.host
    return Pinned(
        url=f"{target.scheme}://{shown}:{target.port}{target.target}",
        headers={"Host": target.host_header},
        extensions=extensions,
    )


@dataclass(frozen=True, slots=True)
class Rules:
    """Where this server's own requests may go: the address policy and the resolver
    (one set for webhooks and OIDC issuers alike, ``runtime.py``)."""

    policy: AddressPolicy = field(default_factory=AddressPolicy)
    nameserver: tuple[str, int] | None = None
    dns_timeout: float = 5.0

    async def address(self, target: Target, *, refused: str = WEBHOOKS_REFUSED) -> IPAddress:
        """:func:`checked_address` under these rules."""
        return await checked_address(
            target,
            policy=self.policy,
            nameserver=self.nameserver,
            timeout=self.dns_timeout,
            refused=refused,
        )
