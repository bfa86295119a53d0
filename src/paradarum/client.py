"""The Paradarum API from Python, on httpx: :class:`Client` and :class:`AsyncClient`.

::

    from paradarum.client import Client

    with Client(api_key="pdm_...", base_url="https://paradarum.example") as paradarum:
        purge = paradarum.purge.urls(["https://www.example.com/blog/hello"])
        print(paradarum.purges.wait(purge.id).status)

Without arguments a client reads ``PARADARUM_URL`` and ``PARADARUM_API_KEY``.
Every failure raises a subclass of :class:`ParadarumError`. A ``429`` (or a
``503``) is retried after the ``Retry-After`` it carries, at most ``max_retries``
times and never for longer than ``max_retry_wait`` seconds per wait; then the
error is raised. The credential is kept private: it is not in ``repr()``, in an
error message or in a log line.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from paradarum import __version__

__all__ = [
    "Account",
    "AlreadyRevokedError",
    "ApiKey",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "LimitError",
    "NetworkError",
    "NewKey",
    "NotFoundError",
    "Page",
    "ParadarumError",
    "Purge",
    "PurgeNode",
    "RateLimitedError",
    "ServerError",
    "Session",
    "ValidationError",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
FINISHED = frozenset({"done", "failed"})
T = TypeVar("T")


# -- errors -----------------------------------------------------------------------


class ParadarumError(Exception):
    """Base of every client error. ``message`` is the server's (or ours), safe to show."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.errors: dict[str, list[str]] = errors or {}


class AuthenticationError(ParadarumError):
    """401/403: the credential is missing, wrong, revoked or expired (or not allowed)."""


class NotFoundError(ParadarumError):
    """404: no such thing in this account."""


class ValidationError(ParadarumError):
    """400: the request was refused; ``errors`` maps fields to problems."""


class LimitError(ValidationError):
    """400: a limit was reached, such as the most active keys an account may hold."""


class AlreadyRevokedError(ValidationError):
    """400: the key was already revoked."""


class RateLimitedError(ParadarumError):
    """429: still rate limited after the retries; ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None, status_code: int = 429) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ServerError(ParadarumError):
    """5xx: the server could not complete the request."""


class NetworkError(ParadarumError):
    """No answer: the server could not be reached or did not answer in time."""


# -- results ----------------------------------------------------------------------


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    created_at: datetime
    active_keys: int
    key_limit: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never the key itself."""

    id: int
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_from: str | None
    is_revoked: bool
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created. ``key`` is shown this once; it is left out of ``repr()``."""

    id: int
    name: str
    key: str = field(repr=False)
    key_prefix: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    token: str = field(repr=False)
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class PurgeNode:
    node: str
    status: str  # queued | done | failed
    attempts: int
    last_error: str | None
    updated_at: datetime | None
    next_attempt_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class Purge:
    id: int
    kind: str  # urls | tags | everything
    targets: list[str]
    status: str  # queued | running | done | failed
    created_at: datetime
    completed_at: datetime | None = None
    nodes: list[PurgeNode] | None = None  # only from purges.get()

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _account(data: dict[str, Any]) -> Account:
    return Account(
        id=int(data["id"]),
        email=str(data["email"]),
        created_at=_when(data["createdAt"]),  # type: ignore[arg-type]
        active_keys=int(data["activeKeys"]),
        key_limit=int(data["keyLimit"]),
    )


def _key(data: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=int(data["id"]),
        name=str(data["name"]),
        key_prefix=str(data["keyPrefix"]),
        created_at=_when(data["createdAt"]),  # type: ignore[arg-type]
        last_used_at=_when(data.get("lastUsedAt")),
        last_used_from=data.get("lastUsedFrom"),
        is_revoked=bool(data["isRevoked"]),
        revoked_at=_when(data.get("revokedAt")),
    )


def _new_key(data: dict[str, Any]) -> NewKey:
    return NewKey(
        id=int(data["id"]),
        name=str(data["name"]),
        key=str(data["key"]),
        key_prefix=str(data["keyPrefix"]),
        created_at=_when(data["createdAt"]),  # type: ignore[arg-type]
    )


def _purge(data: dict[str, Any]) -> Purge:
    nodes = data.get("nodes")
    return Purge(
        id=int(data["id"]),
        kind=str(data["kind"]),
        targets=[str(target) for target in data["targets"]],
        status=str(data["status"]),
        created_at=_when(data["createdAt"]),  # type: ignore[arg-type]
        completed_at=_when(data.get("completedAt")),
        nodes=None
        if nodes is None
        else [
            PurgeNode(
                node=str(node["node"]),
                status=str(node["status"]),
                attempts=int(node["attempts"]),
                last_error=node.get("lastError"),
                updated_at=_when(node.get("updatedAt")),
                next_attempt_at=_when(node.get("nextAttemptAt")),
            )
            for node in nodes
        ],
    )


# -- the wire ---------------------------------------------------------------------


def _as_list(values: str | Iterable[str]) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def _next_cursor(response: httpx.Response) -> str | None:
    """The ``cursor`` of the ``Link: <...>; rel="next"`` header, if any."""
    link = response.links.get("next")
    if not link or "url" not in link:
        return None
    values = parse_qs(urlsplit(link["url"]).query).get("cursor")
    return values[0] if values else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _error(response: httpx.Response, *, on_400: type[ValidationError]) -> ParadarumError:
    status = response.status_code
    try:
        body = response.json()
        message = str(body.get("message") or "")
        errors = body.get("errors") or None
    except (ValueError, AttributeError):
        message, errors = "", None
    message = message or f"HTTP {status} {response.reason_phrase}".strip()
    if status in (401, 403):
        return AuthenticationError(message, status_code=status)
    if status == 404:
        return NotFoundError(message, status_code=status)
    if status == 429:
        return RateLimitedError(message, retry_after=_retry_after(response))
    if status >= 500:
        return ServerError(message, status_code=status)
    if status == 400 and errors:
        return ValidationError(message, status_code=status, errors=errors)
    if status == 400:
        return on_400(message, status_code=status)
    return ValidationError(message, status_code=status, errors=errors)


def _data(response: httpx.Response, *, on_400: type[ValidationError]) -> Any:
    if response.is_success:
        try:
            return response.json().get("data")
        except ValueError as exc:
            raise ServerError("The server's answer is not JSON.", status_code=200) from exc
    raise _error(response, on_400=on_400)


class _Base:
    """What both clients share: configuration and the retry decision."""

    def __init__(
        self,
        api_key: str | None,
        *,
        token: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        if api_key is None and token is None:
            api_key = os.environ.get("PARADARUM_API_KEY") or None
        if api_key is not None and token is not None:
            raise ValueError("Give an API key or a session token, not both.")
        self.base_url = (base_url or os.environ.get("PARADARUM_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._credential = api_key if api_key is not None else token
        self._credential_kind = (
            "api key" if api_key is not None else "session token" if token else None
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"paradarum-python/{__version__}"}
        if self._credential:
            headers["Authorization"] = f"Bearer {self._credential}"
        return headers

    def _delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``response``, or None to give up now."""
        if response.status_code not in (429, 503) or attempt >= self.max_retries:
            return None
        delay = _retry_after(response)
        if delay is None:
            delay = float(2**attempt)
        return delay if delay <= self.max_retry_wait else None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"credential={self._credential_kind or 'none'})"
        )


# -- sync -------------------------------------------------------------------------


class Client(_Base):
    """Blocking client. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        token: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            api_key,
            token=token,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self._headers(),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self.keys = Keys(self)
        self.purge = PurgeActions(self)
        self.purges = Purges(self)

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        on_400: type[ValidationError] = ValidationError,
    ) -> tuple[Any, httpx.Response]:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.TimeoutException as exc:
                raise NetworkError(f"No answer from {self.base_url} in time.") from exc
            except httpx.TransportError as exc:
                raise NetworkError(f"Cannot reach {self.base_url}: {type(exc).__name__}.") from exc
            delay = self._delay(response, attempt)
            if delay is None:
                return _data(response, on_400=on_400), response
            attempt += 1
            self._sleep(delay)

    def account(self) -> Account:
        """Who the credential belongs to."""
        return _account(self._send("GET", "/api/account")[0])

    def login(self, email: str, password: str) -> Session:
        """Sign in with email and password; returns a session token (not stored here)."""
        data, _ = self._send("POST", "/api/auth/login", json={"email": email, "password": password})
        return Session(token=str(data["token"]), expires_at=_when(data.get("expiresAt")))

    def logout(self) -> None:
        """End the session token this client uses."""
        self._send("POST", "/api/auth/logout")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Keys:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, name: str) -> NewKey:
        """Create a key. The returned ``key`` is the only time it is ever shown."""
        data, _ = self._client._send(
            "POST", "/api/account/apikeys", json={"name": name}, on_400=LimitError
        )
        return _new_key(data)

    def list(self, *, status: str = "all") -> list[ApiKey]:
        """Every key, newest first (all pages); ``status`` is all, active or revoked."""
        keys: list[ApiKey] = []
        params: dict[str, Any] = {"status": status}
        while True:
            data, response = self._client._send("GET", "/api/account/apikeys", params=params)
            keys += [_key(item) for item in data]
            cursor = _next_cursor(response)
            if cursor is None:
                return keys
            params = {"status": status, "cursor": cursor}

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke for good."""
        data, _ = self._client._send(
            "DELETE", f"/api/account/apikeys/{int(key_id)}", on_400=AlreadyRevokedError
        )
        return _key(data)


class PurgeActions:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _request(self, body: dict[str, Any]) -> Purge:
        return _purge(self._client._send("POST", "/api/account/purge", json=body)[0])

    def urls(self, urls: str | Iterable[str]) -> Purge:
        """Purge 1–100 absolute URLs from every cache node."""
        return self._request({"urls": _as_list(urls)})

    def tags(self, tags: str | Iterable[str]) -> Purge:
        """Purge everything tagged with any of 1–100 cache tags."""
        return self._request({"tags": _as_list(tags)})

    def everything(self) -> Purge:
        """Purge the whole cache."""
        return self._request({"everything": True})


class Purges:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Purge]:
        """One page of purges, newest first; pass ``next_cursor`` for the next."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        data, response = self._client._send("GET", "/api/account/purges", params=params)
        return Page(items=[_purge(item) for item in data], next_cursor=_next_cursor(response))

    def iter(self, *, page_size: int = 50) -> Iterator[Purge]:
        """Every purge, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, purge_id: int) -> Purge:
        """One purge with each cache node's result in ``nodes``."""
        return _purge(self._client._send("GET", f"/api/account/purges/{int(purge_id)}")[0])

    def wait(
        self,
        purge_id: int,
        *,
        timeout: float = 120.0,
        interval: float = 0.5,
        on_update: Callable[[Purge], None] | None = None,
    ) -> Purge:
        """Poll until every node has answered (``done`` or ``failed``).

        Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            purge = self.get(purge_id)
            if on_update is not None:
                on_update(purge)
            if purge.finished:
                return purge
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Purge {purge_id} is still {purge.status}.")
            self._client._sleep(interval)


# -- async ------------------------------------------------------------------------


class AsyncClient(_Base):
    """The same API for asyncio: ``async with AsyncClient(...) as paradarum: ...``."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        token: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            api_key,
            token=token,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers(),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )
        self.keys = AsyncKeys(self)
        self.purge = AsyncPurgeActions(self)
        self.purges = AsyncPurges(self)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        on_400: type[ValidationError] = ValidationError,
    ) -> tuple[Any, httpx.Response]:
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.TimeoutException as exc:
                raise NetworkError(f"No answer from {self.base_url} in time.") from exc
            except httpx.TransportError as exc:
                raise NetworkError(f"Cannot reach {self.base_url}: {type(exc).__name__}.") from exc
            delay = self._delay(response, attempt)
            if delay is None:
                return _data(response, on_400=on_400), response
            attempt += 1
            await self._sleep(delay)

    async def account(self) -> Account:
        return _account((await self._send("GET", "/api/account"))[0])

    async def login(self, email: str, password: str) -> Session:
        data, _ = await self._send(
            "POST", "/api/auth/login", json={"email": email, "password": password}
        )
        return Session(token=str(data["token"]), expires_at=_when(data.get("expiresAt")))

    async def logout(self) -> None:
        await self._send("POST", "/api/auth/logout")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncKeys:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, name: str) -> NewKey:
        data, _ = await self._client._send(
            "POST", "/api/account/apikeys", json={"name": name}, on_400=LimitError
        )
        return _new_key(data)

    async def list(self, *, status: str = "all") -> list[ApiKey]:
        keys: list[ApiKey] = []
        params: dict[str, Any] = {"status": status}
        while True:
            data, response = await self._client._send("GET", "/api/account/apikeys", params=params)
            keys += [_key(item) for item in data]
            cursor = _next_cursor(response)
            if cursor is None:
                return keys
            params = {"status": status, "cursor": cursor}

    async def revoke(self, key_id: int) -> ApiKey:
        data, _ = await self._client._send(
            "DELETE", f"/api/account/apikeys/{int(key_id)}", on_400=AlreadyRevokedError
        )
        return _key(data)


class AsyncPurgeActions:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _request(self, body: dict[str, Any]) -> Purge:
        return _purge((await self._client._send("POST", "/api/account/purge", json=body))[0])

    async def urls(self, urls: str | Iterable[str]) -> Purge:
        return await self._request({"urls": _as_list(urls)})

    async def tags(self, tags: str | Iterable[str]) -> Purge:
        return await self._request({"tags": _as_list(tags)})

    async def everything(self) -> Purge:
        return await self._request({"everything": True})


class AsyncPurges:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Purge]:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        data, response = await self._client._send("GET", "/api/account/purges", params=params)
        return Page(items=[_purge(item) for item in data], next_cursor=_next_cursor(response))

    async def iter(self, *, page_size: int = 50) -> AsyncIterator[Purge]:
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor)
            for purge in page.items:
                yield purge
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get(self, purge_id: int) -> Purge:
        return _purge((await self._client._send("GET", f"/api/account/purges/{int(purge_id)}"))[0])

    async def wait(
        self,
        purge_id: int,
        *,
        timeout: float = 120.0,
        interval: float = 0.5,
        on_update: Callable[[Purge], None] | None = None,
    ) -> Purge:
        deadline = time.monotonic() + timeout
        while True:
            purge = await self.get(purge_id)
            if on_update is not None:
                on_update(purge)
            if purge.finished:
                return purge
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Purge {purge_id} is still {purge.status}.")
            await self._client._sleep(interval)
