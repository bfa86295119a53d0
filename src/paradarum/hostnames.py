"""Hostnames as zones: the one spelling Paradarum stores, compares and bans on. Pure: no I/O.

A zone is a hostname an account has proven it controls (a DNS TXT record at
:func:`challenge_name`). Everything that decides whose cache a purge may touch compares
hostnames, so they are compared in exactly one form, the one a browser puts in the
``Host`` header and a cache node sees: lowercase, IDNA-encoded (UTS #46, non-transitional,
so ``faß.de`` stays ``xn--fa-hia.de`` as browsers ask for it), no trailing dot, no port.

``*.example.com`` is a zone too: every subdomain of ``example.com`` at any depth, never
``example.com`` itself. It needs two labels after ``*.`` so that nobody can claim a
whole top-level domain (``*.com``).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import idna

from paradarum.errors import ValidationFailed

MAX_LENGTH = 253
MAX_LABEL = 63
WILDCARD = "*."
CHALLENGE_LABEL = "_paradarum-challenge"

_LDH = re.compile(r"[a-z0-9-]+")
# What browsers (the WHATWG URL standard) read as an IPv4 address in the last label.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# What url_host passes on: names, and IP literals (which no zone covers).
_URL_HOST = re.compile(r"[a-z0-9._-]+")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _refuse(problem: str) -> ValidationFailed:
    return ValidationFailed({"hostname": [problem]}, problem)


def _is_ip(value: str) -> bool:
    candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _shape_problem(value: str) -> str | None:
    """What makes ``value`` more than a bare hostname (a URL, a port, spaces)."""
    if any(ch.isspace() for ch in value):
        return (
            "A hostname cannot contain spaces or other blank characters: "
            "enter just the name, such as www.example.com."
        )
    if "://" in value or re.match(r"[a-z][a-z0-9+.-]*:/", value):
        return (
            "Enter the hostname alone, without http:// or https:// in front: "
            "www.example.com, not https://www.example.com/."
        )
    if "@" in value:
        return "Enter the hostname alone, without a user name and @ in front."
    if any(ch in value for ch in "/?#\\"):
        return (
            "Enter the hostname alone, without a path, query or fragment (nothing from the "
            "first /, ? or # on): www.example.com, not www.example.com/blog."
        )
    if _is_ip(value) or _is_ip(value.rpartition(":")[0]) or value.startswith("["):
        return (
            f"{_shown(value)} is an IP address: a zone must be a hostname such as "
            "www.example.com, because the DNS TXT record that proves ownership cannot be "
            "set on an IP address."
        )
    if ":" in value:
        return (
            "Enter the hostname without a port (:8080 or similar): a zone covers its "
            "hostname on every port."
        )
    return None


def _label_problem(label: str) -> str | None:
    if not label:
        return (
            "A hostname cannot have an empty label (two dots in a row, or a dot at the "
            "start): enter a name such as www.example.com."
        )
    if len(label) > MAX_LABEL:
        return (
            f"Each label (the part between two dots) may be at most {MAX_LABEL} characters "
            f"long; {_shown(label)} has {len(label)}."
        )
    if "_" in label:
        return (
            f"The label {_shown(label)} contains an underscore: a hostname may contain only "
            "letters, digits, hyphens and dots."
        )
    if "*" in label:
        return (
            "A * is allowed only as the whole first label, as in *.example.com "
            "(every subdomain of example.com)."
        )
    if label.startswith("-") or label.endswith("-"):
        return f"The label {_shown(label)} starts or ends with a hyphen, which hostnames cannot."
    if not _LDH.fullmatch(label):
        bad = next(ch for ch in label if not _LDH.fullmatch(ch))
        if not label.isascii():  # an international label IDNA took: name the ASCII culprit
            bad = next((ch for ch in label if ch.isascii() and not _LDH.fullmatch(ch)), bad)
        return (
            f"The label {_shown(label)} contains {bad!r}: a hostname may contain only "
            "letters, digits, hyphens and dots (international names are fine too)."
        )
    if label.startswith("xn--"):
        try:
            idna.ulabel(label)
        except idna.IDNAError:
            return f"The label {_shown(label)} starts with xn-- but is not valid punycode."
    return None


def _to_ascii(label: str) -> str:
    """One label in punycode; raises the field error when IDNA does not allow it."""
    ascii_part = "".join(ch for ch in label if ch.isascii())
    if (
        label.isascii()
        or (ascii_part and not _LDH.fullmatch(ascii_part))
        or label.startswith("-")
        or label.endswith("-")
    ):
        return label  # an ASCII mistake: left as it is for _label_problem to name it
    punycode = "xn--" + label.encode("punycode").decode("ascii")
    if len(punycode) > MAX_LABEL:
        raise _refuse(
            f"Each label (the part between two dots) may be at most {MAX_LABEL} characters "
            f"long once IDNA-encoded; {_shown(label)} becomes {len(punycode)}."
        )
    try:
        return idna.alabel(label).decode("ascii")
    except idna.IDNAError:
        raise _refuse(
            f"The label {_shown(label)} is not a valid international name (IDNA): "
            "check for symbols, emoji or characters that hostnames cannot hold."
        ) from None


def normalise(raw: str) -> str:
    """``raw`` as a zone hostname in its one stored form, or :class:`ValidationFailed`.

    Accepts what people paste (`` WWW.Example.COM ``, ``bücher.example``) and returns the
    form a cache node sees (``www.example.com``, ``xn--bcher-kva.example``). Refuses
    anything that is not a bare hostname with a sentence that says what to change.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise _refuse("Enter a hostname, such as www.example.com.")
    value = raw.strip().lower()
    problem = _shape_problem(value)
    if problem is None and not value.isascii():
        try:
            # UTS #46 mapping: case folding, full-width letters and dots (。) and the
            # like, exactly as a browser maps what is typed in its address bar.
            value = idna.uts46_remap(value, std3_rules=False, transitional=False)
        except idna.IDNAError:
            raise _refuse(
                f"{_shown(raw.strip())} holds characters that no hostname can contain "
                "(IDNA): enter a name such as www.example.com."
            ) from None
        problem = _shape_problem(value)
    if problem:
        raise _refuse(problem)

    if value.endswith(".") and not value.endswith(".."):
        # The DNS root dot: refused as the contract says, with the name to enter instead.
        raise _refuse(f"Enter the hostname without the trailing dot: {_shown(value[:-1])}.")
    wildcard = value.startswith(WILDCARD)
    base = value[len(WILDCARD) :] if wildcard else value
    labels = base.split(".")
    if value in ("*", "*.") or (wildcard and len(labels) < 2 and all(labels)):
        raise _refuse(
            "A wildcard needs at least two labels after *., as in *.example.com: "
            f"{_shown(value)} would cover a whole top-level domain."
        )
    if len(labels) < 2 and all(labels):
        raise _refuse(
            "A hostname needs at least two labels separated by a dot, such as example.com "
            "or www.example.com."
        )
    encoded = []
    for label in labels:
        ascii_label = _to_ascii(label) if label else label
        problem = _label_problem(ascii_label)
        if problem:
            raise _refuse(problem)
        encoded.append(ascii_label)
    if _NUMERIC_LABEL.fullmatch(encoded[-1]):
        raise _refuse(
            f"{_shown(value)} ends in a number, so browsers read it as an IP address: a "
            "zone must be a hostname such as www.example.com."
        )
    result = (WILDCARD if wildcard else "") + ".".join(encoded)
    if len(result) > MAX_LENGTH:
        raise _refuse(
            f"A hostname may be at most {MAX_LENGTH} characters long (after IDNA encoding); "
            f"this one has {len(result)}."
        )
    return result


def is_wildcard(zone: str) -> bool:
    return zone.startswith(WILDCARD)


def covers(zone: str, host: str) -> bool:
    """Whether ``zone`` lets its account purge what is cached for ``host``.

    Both are in normalised form (:func:`normalise`, :func:`url_host`). A plain zone covers
    exactly its hostname; ``*.example.com`` covers ``a.example.com`` and
    ``b.a.example.com`` but neither ``example.com`` nor ``badexample.com``.
    """
    if not is_wildcard(zone):
        return host == zone
    suffix = zone[1:]  # ".example.com": the dot keeps badexample.com out
    return len(host) > len(suffix) and host.endswith(suffix)


def candidates(host: str) -> list[str]:
    """The zone hostnames that could cover ``host``, the most specific first: ``host``
    itself, then ``*.`` and each parent with at least two labels.

    ``a.shop.example.com`` → ``a.shop.example.com``, ``*.shop.example.com``,
    ``*.example.com``. The most specific zone that is held owns the host (a wildcard
    never reaches a hostname another zone names more precisely).
    """
    labels = host.split(".")
    return [host] + ["*." + ".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def beneath(wildcard: str, zone: str) -> bool:
    """Whether ``zone`` (plain or wildcard) names hostnames inside wildcard zone
    ``wildcard`` more precisely: ``shop.example.com`` and ``*.eu.example.com`` are
    beneath ``*.example.com``; ``example.com`` and ``*.example.com`` are not."""
    return is_wildcard(wildcard) and covers(wildcard, zone.removeprefix("*."))


def url_host(url: str) -> str | None:
    """The host an absolute http(s) ``url`` is fetched from, as a browser sends it.

    Lowercase, IDNA-encoded, without the trailing dot, so that it compares with zones.
    None when the URL has no host, is not http(s), or names its host in a way that no
    zone can cover (percent-encoding and other characters a hostname cannot hold): a
    caller that checks coverage then refuses it, which is the safe side.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = parts.hostname  # lowercased, userinfo and port removed, [::1] unbracketed
    if not host:
        return None
    if _is_ip(host):
        return host
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            return None
    if not host or not _URL_HOST.fullmatch(host):
        return None
    return host


def challenge_name(hostname: str) -> str:
    """The DNS name whose TXT record proves control of ``hostname``.

    A wildcard zone is proven at its base name (``*.example.com`` at
    ``_paradarum-challenge.example.com``): a DNS label cannot be ``*`` in a query.
    """
    base = hostname[len(WILDCARD) :] if is_wildcard(hostname) else hostname
    return f"{CHALLENGE_LABEL}.{base}"
