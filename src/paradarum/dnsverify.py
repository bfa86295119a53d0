"""Asking DNS for the TXT record that proves control of a zone.

Three answers, kept apart because they mean different things to the customer:

* the record exists: its values (the customer may have several TXT records there);
* there is no such record (NXDOMAIN, or the name holds other types only): an empty list,
  so verification can say "not found" and what to create;
* DNS did not say (timeout, unreachable server, SERVFAIL, REFUSED): :class:`DnsUnavailable`,
  a temporary outage to retry, never a "not found". No dnspython exception escapes.

The resolver is a setting (``PARADARUM_DNS_RESOLVER``) so that tests and private
deployments can use a DNS server of their own; unset, the system's resolver is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from paradarum.errors import DnsUnavailable

# DNS names are at most 255 octets on the wire: 253 characters written out.
MAX_NAME = 253
# How many found values a problem sentence shows, and how much of each.
_SHOWN_VALUES = 5
_SHOWN_LENGTH = 60


def _resolver(nameserver: tuple[str, int] | None, timeout: float) -> dns.asyncresolver.Resolver:
    if nameserver is None:
        resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf, read afresh each time
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        address, port = nameserver
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)]
    # One bound for the whole question, retries and TCP fallback included.
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


async def txt_values(name: str, *, nameserver: tuple[str, int] | None, timeout: float) -> list[str]:
    """Every TXT record at ``name``, each one's strings joined; ``[]`` when there is none.

    A TXT record holds one or more strings of at most 255 bytes; DNS clients (and DNS
    providers' forms, which split long values) treat them as one value joined without a
    separator, and so does this. Raises :class:`DnsUnavailable` when DNS does not answer.
    """
    try:
        qname = dns.name.from_text(name)
    except dns.exception.DNSException:
        return []  # a name DNS cannot hold (too long, empty label) holds no record
    try:
        answer = await _resolver(nameserver, timeout).resolve(
            qname, dns.rdatatype.TXT, search=False, raise_on_no_answer=False
        )
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError) as exc:
        # Timeout, NoNameservers (SERVFAIL, REFUSED, unreachable), malformed answers.
        raise DnsUnavailable() from exc
    if answer.rrset is None:
        return []
    return [b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer.rrset]


def _clean(value: str) -> str:
    # DNS providers' forms differ on quoting: some store the quotes people paste.
    return value.strip().strip('"').strip()


def check_challenge(found: Sequence[str], expected: str, *, name: str) -> str | None:
    """The problem with the TXT values ``found`` at ``name``, or None when one is ``expected``.

    Pure. The sentence says what was found, so the customer can tell a missing record
    from a mistyped one (or one at the wrong name, which shows as missing).
    """
    if any(_clean(value) == expected for value in found):
        return None
    if not found:
        if len(name) > MAX_NAME:
            return (
                f"no TXT record can exist at {name}: the name is longer than DNS allows "
                f"({MAX_NAME} characters); ask the operator to add this zone"
            )
        return f"no TXT record at {name}"
    shown = [
        repr(value if len(value) <= _SHOWN_LENGTH else value[: _SHOWN_LENGTH - 3] + "...")
        for value in found[:_SHOWN_VALUES]
    ]
    more = f" and {len(found) - _SHOWN_VALUES} more" if len(found) > _SHOWN_VALUES else ""
    return f"found {', '.join(shown)}{more} at {name} but not the expected value"
