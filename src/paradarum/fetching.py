"""Documents fetched from the outside world: a bounded wait and a bounded size.

Signing keys (GitHub's leak reports, OpenID Connect issuers) are fetched while a
request waits. Whoever runs the other end may be down, slow, or hostile, so a
fetch never waits longer than its timeout as a whole (not per read: a server that
drips one byte a second is bounded too), never follows a redirect, and stops
reading past ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx


class FetchFailed(Exception):
    """The document could not be had: the message is safe to log (no URL)."""


async def fetch_document(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    accept: str = "application/json",
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, str] | None = None,
) -> bytes:
    """The body of a ``200`` answer to ``GET url``, or :class:`FetchFailed`.

    Every other failure (network, TLS, timeout, status, size) becomes
    :class:`FetchFailed` too, named by its kind. ``headers`` and ``extensions``
    aim a request at an address checked beforehand (``egress.pinned``).
    """
    try:
        async with asyncio.timeout(timeout):
            return await _download(
                url,
                timeout=timeout,
                max_bytes=max_bytes,
                headers={"Accept": accept, **(headers or {})},
                extensions=dict(extensions or {}),
            )
    except FetchFailed:
        raise
    except TimeoutError:
        raise FetchFailed(f"no answer within {timeout:g} s") from None
    except Exception as exc:
        raise FetchFailed(type(exc).__name__) from None


async def _download(
    url: str, *, timeout: float, max_bytes: int, headers: dict[str, str], extensions: dict[str, Any]
) -> bytes:
    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
        client.stream("GET", url, headers=headers, extensions=extensions) as response,
    ):
        if response.status_code != 200:
            raise FetchFailed(f"status {response.status_code}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchFailed("document too large")
            chunks.append(chunk)
        return b"".join(chunks)


def parse_json(document: bytes) -> Any:
    """A fetched document as JSON, or ``ValueError``: not JSON, or nested deeper than
    the decoder goes (a few KiB of ``[[[…]]]`` would otherwise escape as a
    ``RecursionError``)."""
    try:
        return json.loads(document)
    except RecursionError:
        raise ValueError("the document is nested too deeply") from None


class LoopLock:
    """An :class:`asyncio.Lock` for the running event loop.

    An asyncio lock belongs to the loop it first waited on; a process may run
    several loops in turn (tests, the CLI), so each gets its own.
    """

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock
