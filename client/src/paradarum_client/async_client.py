"""The Paradarum API for asyncio: :class:`AsyncClient`, the same methods as coroutines.

::

    async with AsyncClient(api_key="pdm_...") as paradarum:
        purge = await paradarum.purge.tags(["product-42"])
        async for earlier in paradarum.purges.iter():
            ...

Built, checked and retried exactly like :class:`~paradarum_client.Client`
(``protocol.py`` holds what they share); only the I/O differs.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Literal, TypeVar, Unpack

import httpx

from paradarum_client import protocol as api
from paradarum_client.models import (
    Account,
    AccountMembership,
    ApiKey,
    AuditEvent,
    Invitation,
    KeyUsage,
    Member,
    NewKey,
    NewWebhook,
    OidcKey,
    Purge,
    Session,
    SignInChallenge,
    TotpEnrolment,
    TwoFactorStatus,
    Webhook,
    WebhookDelivery,
    Zone,
)
from paradarum_client.protocol import BaseClient, Call, Page, data_of, next_cursor

T = TypeVar("T")


class AsyncClient(BaseClient):
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
        self.zones = AsyncZones(self)
        self.purge = AsyncPurgeActions(self)
        self.purges = AsyncPurges(self)
        self.accounts = AsyncAccounts(self)
        self.members = AsyncMembers(self)
        self.two_factor = AsyncTwoFactor(self)
        self.webhooks = AsyncWebhooks(self)
        self.audit = AsyncAudit(self)

    async def _answer(self, call: Call[T]) -> tuple[T, httpx.Response]:
        """Send ``call``, retried as its answers allow; its ``data`` read, and the response."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
            except httpx.RequestError as exc:
                raise self._unreachable(exc) from exc
            delay = self._delay(response, attempt, retry_limited=call.retry_limited)
            if delay is None:
                return call.read(data_of(response, on_400=call.on_400)), response
            attempt += 1
            await self._sleep(delay)

    async def _call(self, call: Call[T]) -> T:
        return (await self._answer(call))[0]

    async def _page(self, call: Call[builtins.list[T]]) -> Page[T]:
        items, response = await self._answer(call)
        return Page(items=items, next_cursor=next_cursor(response))

    async def _all(self, page: Callable[[str | None], Call[builtins.list[T]]]) -> builtins.list[T]:
        """Every item of a list, following its pages."""
        items: builtins.list[T] = []
        cursor: str | None = None
        while True:
            found = await self._page(page(cursor))
            items += found.items
            if found.next_cursor is None:
                return items
            cursor = found.next_cursor

    async def _each(self, call: Call[T]) -> AsyncIterator[T]:
        """The items of an NDJSON answer, each read as it arrives (``Client._each``)."""
        attempt = 0
        while True:
            try:
                async with self._http.stream(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers={"Accept": api.NDJSON},
                ) as response:
                    if response.is_success:
                        async for line in response.aiter_lines():
                            if line.strip():
                                yield api.line_item(call, line)
                        return
                    await response.aread()
            except httpx.RequestError as exc:
                raise self._unreachable(exc) from exc
            delay = self._delay(response, attempt)
            if delay is None:
                raise api.error_for(response, on_400=call.on_400)
            attempt += 1
            await self._sleep(delay)

    async def account(self) -> Account:
        """Who the credential belongs to."""
        return await self._call(api.get_account())

    async def login(
        self,
        email: str,
        password: str,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
    ) -> Session:
        """Sign in with email and password; returns a session token (not stored here).

        Where a second factor is on, give ``code`` (the authenticator app's) or
        ``recovery_code``; without either, :class:`~paradarum_client.TwoFactorRequired`
        is raised with the ``challenge`` for :meth:`login_two_factor`."""
        answer = await self._call(api.login(email, password))
        if isinstance(answer, SignInChallenge) and (code or recovery_code):
            return await self.login_two_factor(
                answer.challenge, code=code, recovery_code=recovery_code
            )
        return api.session_of(answer)

    async def login_two_factor(
        self, challenge: str, *, code: str | None = None, recovery_code: str | None = None
    ) -> Session:
        """The second step of a sign-in: the challenge and a code or a recovery code."""
        call = api.login_two_factor(challenge, code=code, recovery_code=recovery_code)
        return await self._call(call)

    async def reauthenticate(
        self, password: str, *, code: str | None = None, recovery_code: str | None = None
    ) -> Session:
        """Confirm it is you (step-up): a fresh session, needed for keys, members, the
        password, second factors and trust policies once a sign-in is 10 minutes old
        (:class:`~paradarum_client.StepUpRequiredError`). Not stored here."""
        call = api.reauthenticate(password, code=code, recovery_code=recovery_code)
        return await self._call(call)

    async def require_two_factor(self, required: bool = True) -> Account:
        """Require (or stop requiring) a second factor of every member (owners)."""
        return await self._call(api.require_two_factor(required))

    async def login_with_link(self, token: str) -> Session:
        """Finish a sign-in with the token of the one-time link mailed when the right
        password came from a new address while the account was under attack."""
        return await self._call(api.login_with_link(token))

    async def logout(self) -> None:
        """End the session token this client uses."""
        await self._call(api.logout())

    async def forgot_password(self, email: str) -> None:
        """Ask for a link to reset the password of ``email``'s account, sent there by
        email. The answer is the same whether or not the email has an account."""
        await self._call(api.forgot_password(email))

    async def reset_password(self, token: str, password: str) -> None:
        """Choose a new password with the token from the emailed link (its
        ``#token=`` part). Every session of the account ends; a used or expired
        token raises :class:`ValidationError`."""
        await self._call(api.reset_password(token, password))

    async def exchange_oidc_token(self, id_token: str, *, policy_id: int | None = None) -> OidcKey:
        """Trade a CI job's OpenID Connect ID token for a short-lived key (as
        :meth:`Client.exchange_oidc_token <paradarum_client.Client.exchange_oidc_token>`)."""
        return await self._call(api.exchange_oidc_token(id_token, policy_id))

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
    """``client.keys``: the account's API keys."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self,
        name: str,
        **settings: Unpack[api.KeySettings],
    ) -> NewKey:
        """Create a key (settings as for :meth:`paradarum_client.client.Keys.create`)."""
        return await self._client._call(api.create_key(name, **settings))

    async def roll(self, key_id: int, *, grace: timedelta | Literal[0] = 0) -> NewKey:
        """Replace a key; the old one works for ``grace`` (see ``Keys.roll``)."""
        return await self._client._call(api.roll_key(key_id, grace))

    async def usage(self, key_id: int) -> KeyUsage:
        """Requests made with the key and refused to it, per UTC day, oldest first."""
        return await self._client._call(api.key_usage(key_id))

    async def list(self, *, status: str = "all") -> list[ApiKey]:
        """Every key, newest first (all pages); ``status``: all, active, expired, revoked."""
        return await self._client._all(lambda cursor: api.list_keys(status, cursor))

    async def revoke(self, key_id: int) -> ApiKey:
        """Revoke for good."""
        return await self._client._call(api.revoke_key(key_id))


class AsyncZones:
    """``client.zones``: the hostnames the account may purge, once verified."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def add(self, hostname: str) -> Zone:
        """Add a pending zone; ``verification`` names the DNS TXT record to create."""
        return await self._client._call(api.add_zone(hostname))

    async def list(self) -> list[Zone]:
        """Every zone, newest first (all pages)."""
        return await self._client._all(api.list_zones)

    async def verify(self, zone_id: int) -> Zone:
        """Look up the TXT record; not found: :class:`ValidationError` saying what DNS said."""
        return await self._client._call(api.verify_zone(zone_id))

    async def delete(self, zone_id: int) -> Zone:
        """Delete a zone: its hostname can no longer be purged from this account."""
        return await self._client._call(api.delete_zone(zone_id))


class AsyncPurgeActions:
    """``client.purge``: ask every cache node to drop URLs, tags or everything."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def urls(self, urls: str | Iterable[str]) -> Purge:
        """Purge 1–100 absolute URLs from every cache node."""
        return await self._client._call(api.purge_urls(urls))

    async def tags(self, tags: str | Iterable[str]) -> Purge:
        """Purge everything tagged with any of 1–100 cache tags."""
        return await self._client._call(api.purge_tags(tags))

    async def everything(self) -> Purge:
        """Purge the whole cache."""
        return await self._client._call(api.purge_everything())


class AsyncPurges:
    """``client.purges``: the purges already asked for, and their results."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Purge]:
        """One page of purges, newest first; pass ``next_cursor`` for the next."""
        return await self._client._page(api.list_purges(limit, cursor))

    async def iter(self, *, page_size: int = 50) -> AsyncIterator[Purge]:
        """Every purge, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor)
            for purge in page.items:
                yield purge
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get(self, purge_id: int) -> Purge:
        """One purge with each cache node's result in ``nodes``."""
        return await self._client._call(api.get_purge(purge_id))

    async def wait(
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
            purge = await self.get(purge_id)
            if on_update is not None:
                on_update(purge)
            if purge.finished:
                return purge
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Purge {purge_id} is still {purge.status}.")
            await self._client._sleep(interval)


class AsyncAccounts:
    """``client.accounts`` (async): the accounts the signed-in person belongs to (a session
    token only; an API key belongs to one account)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> list[AccountMembership]:
        """Each account with the person's role in it."""
        return await self._client._call(api.list_accounts())

    async def switch(self, account_id: int) -> Session:
        """A new session token for another of the person's accounts (not stored here)."""
        return await self._client._call(api.switch_account(account_id))

    async def accept_invitation(self, token: str) -> AccountMembership:
        """Join the account an invitation (its link's ``token``) is for."""
        return await self._client._call(api.accept_invitation(token))


class AsyncMembers:
    """``client.members`` (async): who belongs to the account, as what, and invitations
    (a session token only)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self) -> list[Member]:
        """The members, in the order they joined."""
        return await self._client._call(api.list_members())

    async def invite(self, email: str, role: str) -> Invitation:
        """Email an invitation (valid 7 days, for that address only)."""
        return await self._client._call(api.invite(email, role))

    async def invitations(self) -> builtins.list[Invitation]:
        """Pending invitations, newest first."""
        return await self._client._call(api.list_invitations())

    async def withdraw(self, invitation_id: int) -> Invitation:
        """Withdraw a pending invitation: its link stops working."""
        return await self._client._call(api.withdraw_invitation(invitation_id))

    async def set_role(self, member_id: int, role: str) -> Member:
        """Change a member's role; their keys the new role could not create are revoked."""
        return await self._client._call(api.set_role(member_id, role))

    async def remove(self, member_id: int, *, keys: Literal["keep", "revoke"]) -> Member:
        """Remove a member (your own id: leave). ``keys``: revoke theirs, or keep them
        working (you vouch for them from then on)."""
        return await self._client._call(api.remove_member(member_id, keys))


class AsyncTwoFactor:
    """``client.two_factor`` (async): the signed-in person's second factors (a
    session token only). Changes need a recent sign-in (step-up)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def status(self) -> TwoFactorStatus:
        """Whether TOTP is on, the passkeys, the recovery codes left."""
        return await self._client._call(api.two_factor_status())

    async def start_totp(self) -> TotpEnrolment:
        """A new TOTP secret (and its ``otpauth://`` URI) for an authenticator app;
        on once :meth:`confirm_totp` gets its first code."""
        return await self._client._call(api.start_totp())

    async def confirm_totp(self, code: str) -> builtins.list[str]:
        """Turn TOTP on with its first code; the ten recovery codes, shown this once."""
        return await self._client._call(api.confirm_totp(code))

    async def disable_totp(self, code: str) -> None:
        """Turn TOTP off (needs a current code)."""
        await self._client._call(api.disable_totp(code))

    async def renew_recovery_codes(self) -> builtins.list[str]:
        """Ten new recovery codes; the old ones stop working."""
        return await self._client._call(api.renew_recovery_codes())

    async def remove_passkey(self, passkey_id: int) -> None:
        """Remove a passkey (passkeys are added in the panel: a browser makes them)."""
        await self._client._call(api.remove_passkey(passkey_id))


class AsyncWebhooks:
    """``client.webhooks``: where the account's events are sent (Standard Webhooks),
    and what became of each delivery. Adding an endpoint, changing its URL or events
    and rolling its secret need a session token: a key cannot redirect the
    account's events."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, url: str, *, events: Iterable[str]) -> NewWebhook:
        """Add an endpoint for ``events``; the answer's ``secret`` signs every request
        to it, and this is the only time it is shown."""
        return await self._client._call(api.create_webhook(url, events))

    async def list(self) -> builtins.list[Webhook]:
        """Every endpoint, newest first; never their secrets."""
        return await self._client._call(api.list_webhooks())

    async def get(self, webhook_id: int) -> Webhook:
        """One endpoint."""
        return await self._client._call(api.get_webhook(webhook_id))

    async def update(
        self,
        webhook_id: int,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        enabled: bool | None = None,
    ) -> Webhook:
        """Change what is given: the address, the events (replacing them), or turn
        the endpoint off (``enabled=False``) and on again."""
        call = api.update_webhook(webhook_id, url=url, events=events, enabled=enabled)
        return await self._client._call(call)

    async def delete(self, webhook_id: int) -> Webhook:
        """Delete an endpoint and its delivery log."""
        return await self._client._call(api.delete_webhook(webhook_id))

    async def roll_secret(
        self, webhook_id: int, *, grace: timedelta | Literal[0] | None = None
    ) -> NewWebhook:
        """A new signing secret for the endpoint, shown this once in ``secret``.

        The previous secret signs every request too for ``grace`` (whole minutes, at
        most 7 days; 0: it stops now; None: the server's default, a day), until
        ``previous_secret_expires_at``, so that the receiver can switch without
        refusing an event."""
        return await self._client._call(api.roll_webhook_secret(webhook_id, grace))

    async def deliveries(
        self, webhook_id: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[WebhookDelivery]:
        """One page of the endpoint's delivery log, newest first."""
        return await self._client._page(api.list_deliveries(webhook_id, limit, cursor))

    async def iter_deliveries(
        self, webhook_id: int, *, page_size: int = 50
    ) -> AsyncIterator[WebhookDelivery]:
        """Every delivery to the endpoint, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = await self.deliveries(webhook_id, limit=page_size, cursor=cursor)
            for delivery in page.items:
                yield delivery
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def resend(self, webhook_id: int, delivery_id: int) -> WebhookDelivery:
        """Send a delivery's message again (the same ``webhook-id`` and body) as a new
        delivery, queued now; the answer is that new delivery."""
        return await self._client._call(api.resend_delivery(webhook_id, delivery_id))


class AsyncAudit:
    """``client.audit``: the account's security log, for a SIEM."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def export(self, *, since: datetime | date | None = None) -> AsyncIterator[AuditEvent]:
        """Every entry of the security log from ``since`` on, oldest first, as it
        arrives: ``async for event in client.audit.export(since=...)``."""
        return self._client._each(api.export_audit_log(since))
