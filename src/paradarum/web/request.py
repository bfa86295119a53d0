"""One request as routes see it: who is calling, from where, with what.

Headers are read once, lazily, from the ASGI scope: the hot path looks at three
of them (``authorization``, ``x-api-key``, ``user-agent``) and nothing is built that
it does not use.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope

from paradarum import keys
from paradarum.errors import OneCredential
from paradarum.services.context import ClientInfo, Principal

if TYPE_CHECKING:
    from paradarum.runtime import Runtime

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# Keys this project adds to the ASGI scope: the body, read once by ``edge.BodyGuard``,
# and the client's address, worked out once (the route and the access log both need it).
BODY = "paradarum.body"
CLIENT = "paradarum.client"


def client_address(scope: Scope, trusted: Sequence[Network]) -> str | None:
    """The client's address as the trusted-proxy rules see it, worked out once per
    request (:func:`forwarded_client`)."""
    if CLIENT in scope:
        return scope[CLIENT]
    peer = scope["client"][0] if scope.get("client") else None
    if trusted and peer is not None:
        forwarded = [
            value.decode("latin-1")
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
        ]
        peer = forwarded_client(peer, forwarded, trusted)
    scope[CLIENT] = peer
    return peer


def forwarded_client(peer: str, forwarded: list[str], trusted: Sequence[Network]) -> str:
    """The socket peer, unless it is a trusted proxy: then the right-most
    ``X-Forwarded-For`` hop that is not itself trusted. A forged header from an
    untrusted peer changes nothing. A hop that is not an IP address means the
    chain cannot be read (a proxy that passes garbage on): the peer is used."""
    if not _in_networks(peer, trusted):
        return peer
    hops = [hop.strip() for hop in ",".join(forwarded).split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(ip in network for network in trusted):
            return str(ip)
    return peer


def _in_networks(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def credential(authorization: list[str], api_key: list[str]) -> str | None:
    """The one credential of a request, from ``Authorization: Bearer`` or ``X-API-Key``.

    Two headers, or two different credentials, are refused (400) rather than one
    of them silently chosen: a proxy that adds its own ``Authorization`` must not
    make a request act as someone else. Anything unreadable counts as none (401).
    """
    given: list[str] = []
    for value in authorization:
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            given.append("")
        else:
            given.append(token)
    for value in api_key:
        value = value.strip()
        given.append(value if keys.looks_like_key(value) else "")
    if not given:
        return None
    if len(given) > 1:
        raise OneCredential
    return given[0] or None


class Request:
    """Who is calling and from where. What the request carries (body, query, path
    ids) is not here: the router validates it and passes it to the handler as typed
    arguments (``web/routing.py``)."""

    __slots__ = ("_client", "_headers", "principal", "receive", "runtime", "scope", "trusted")

    def __init__(
        self, scope: Scope, receive: Receive, runtime: Runtime, trusted: Sequence[Network]
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.runtime = runtime
        self.trusted = trusted
        self.principal: Principal = None  # type: ignore[assignment]  # set when authenticated
        self._headers: dict[bytes, list[str]] | None = None
        self._client: ClientInfo | None = None

    def headers(self, name: bytes) -> list[str]:
        """Every value of a header (lowercase name), in order."""
        if self._headers is None:
            found: dict[bytes, list[str]] = {}
            for key, value in self.scope["headers"]:
                found.setdefault(key, []).append(value.decode("latin-1"))
            self._headers = found
        return self._headers.get(name, [])

    def header(self, name: bytes) -> str | None:
        values = self.headers(name)
        return values[0] if values else None

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def client(self) -> ClientInfo:
        if self._client is None:
            user_agent = None
            for key, value in self.scope["headers"]:
                if key == b"user-agent":
                    user_agent = value.decode("latin-1")
                    break
            self._client = ClientInfo(
                address=client_address(self.scope, self.trusted), user_agent=user_agent
            )
        return self._client

    def credential(self) -> str | None:
        # Every request asks: the two headers are picked out in one pass, without
        # decoding the others.
        authorization: list[str] = []
        api_key: list[str] = []
        for key, value in self.scope["headers"]:
            if key == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif key == b"x-api-key":
                api_key.append(value.decode("latin-1"))
        return credential(authorization, api_key)
