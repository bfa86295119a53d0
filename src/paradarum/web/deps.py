"""Who is calling, and the runtime behind the app. Used by routes via ``Depends``."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from paradarum import keys
from paradarum.errors import NotAuthenticated, RateLimited
from paradarum.ratelimit import address_bucket
from paradarum.runtime import Runtime
from paradarum.services.auth import KeyUse
from paradarum.services.context import ClientInfo, Principal


# Dependencies are ``async def`` although they never await: FastAPI runs a plain
# ``def`` dependency in the thread pool, a hop that costs far more than the work.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def client_address(request: Request, trusted: list[str]) -> str | None:
    """The socket peer, unless it is a trusted proxy: then the right-most
    ``X-Forwarded-For`` hop that is not itself trusted. A forged header from an
    untrusted peer changes nothing. A hop that is not an IP address means the
    chain cannot be read (a proxy that passes garbage on): the peer is used."""
    peer = request.client.host if request.client else None
    if not trusted or peer is None:
        return peer
    networks = request.app.state.trusted_networks
    if not _in_networks(peer, networks):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(ip in network for network in networks):
            return str(ip)
    return peer


def _in_networks(
    address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


async def get_client(request: Request, runtime: RuntimeDep) -> ClientInfo:
    return ClientInfo(
        address=client_address(request, runtime.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


ClientDep = Annotated[ClientInfo, Depends(get_client)]


def extract_credential(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value or " " in value:
            return None
        return value
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        api_key = api_key.strip()
        return api_key if keys.looks_like_key(api_key) else None
    return None


async def get_principal(request: Request) -> Principal:
    """Authenticate the request by session JWT or API key, or raise 401/429.

    This runs on every authenticated request, so it is kept flat: it takes the
    runtime from the app state itself rather than through nested dependencies,
    and the lookup never goes through the general thread pool: inline on SQLite,
    awaited on the event loop on PostgreSQL (``Database.hot_read_async``).
    """
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    address = client_address(request, settings.trusted_proxies)
    failures_bucket = f"auth-fail:{address_bucket(address)}"
    # auth_failures answers from process memory: no round trip on this path.
    retry = runtime.auth_failures.peek(
        failures_bucket,
        limit=settings.auth_failures_per_address,
        window=settings.auth_failure_window_seconds,
    )
    if retry:
        raise RateLimited(retry, "Too many failed authentications. Try again later.")
    # (A credential in the query string was already refused by EdgeMiddleware.)
    credential = extract_credential(request)
    authenticator = runtime.authenticator
    try:
        if credential is None:
            raise NotAuthenticated
        if keys.looks_like_key(credential):
            use: KeyUse = await authenticator.authenticate_key(credential)
        else:
            return await authenticator.authenticate_session(credential)
    except NotAuthenticated:
        runtime.auth_failures.hit(failures_bucket, window=settings.auth_failure_window_seconds)
        raise
    if use.first_use or use.refresh:
        client = ClientInfo(address=address, user_agent=request.headers.get("user-agent"))
        if use.first_use:
            # Written before the response so that the next list shows it.
            await run_in_threadpool(runtime.usage.record, use, client)
        elif use.principal.key_id is not None and runtime.usage.claim(use.principal.key_id):
            # Work after the answer (not a BackgroundTask: those run only when the
            # route answers normally, and the claim must be released whatever the
            # route does next, 404 or 400 included).
            runtime.deferred.submit(runtime.usage.record, use, client)
    return use.principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
