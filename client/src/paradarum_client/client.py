"""The Paradarum API from Python, blocking: :class:`Client`.

::

    from paradarum_client import Client

    with Client(api_key="pdm_...", base_url="https://paradarum.example") as paradarum:
        purge = paradarum.purge.urls(["https://www.example.com/blog/hello"])
        print(paradarum.purges.wait(purge.id).status)

Without arguments a client reads ``PARADARUM_URL`` and ``PARADARUM_API_KEY``. A URL
without ``http://``/``https://`` or a key that is not a Paradarum key is refused when
the client is built (:class:`~paradarum_client.ConfigurationError`, saying what is
wrong). Every failure raises a subclass of :class:`~paradarum_client.ParadarumError`.
A ``429`` (or a ``503``) is retried after the ``Retry-After`` it carries, at most
``max_retries`` times and never for longer than ``max_retry_wait`` seconds per wait;
then the error is raised. A sign-in's ``429`` is raised at once. The credential is
kept private: it is not in ``repr()``, in an error message or in a log line.

:class:`~paradarum_client.AsyncClient` (``async_client.py``) is the same API for
asyncio; the two share everything but their I/O (``protocol.py``).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, TypeVar, Unpack

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


class Client(BaseClient):
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
        self.zones = Zones(self)
        self.purge = PurgeActions(self)
        self.purges = Purges(self)
        self.accounts = Accounts(self)
        self.members = Members(self)
        self.two_factor = TwoFactor(self)
        self.webhooks = Webhooks(self)
        self.audit = Audit(self)

    def _answer(self, call: Call[T]) -> tuple[T, httpx.Response]:
        """Send ``call``, retried as its answers allow; its ``data`` read, and the response."""
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
            except httpx.RequestError as exc:
                raise self._unreachable(exc) from exc
            delay = self._delay(response, attempt, retry_limited=call.retry_limited)
            if delay is None:
                return call.read(data_of(response, on_400=call.on_400)), response
            attempt += 1
            self._sleep(delay)

    def _call(self, call: Call[T]) -> T:
        return self._answer(call)[0]

    def _page(self, call: Call[builtins.list[T]]) -> Page[T]:
        items, response = self._answer(call)
        return Page(items=items, next_cursor=next_cursor(response))

    def _all(self, page: Callable[[str | None], Call[builtins.list[T]]]) -> builtins.list[T]:
        """Every item of a list, following its pages."""
        items: builtins.list[T] = []
        cursor: str | None = None
        while True:
            found = self._page(page(cursor))
            items += found.items
            if found.next_cursor is None:
                return items
            cursor = found.next_cursor

    def _each(self, call: Call[T]) -> Iterator[T]:
        """The items of an NDJSON answer, each read as it arrives: a long export is
        never held in memory. A refusal before the first line is retried like any
        other; a connection lost halfway is a :class:`NetworkError`."""
        attempt = 0
        while True:
            try:
                with self._http.stream(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params,
                    headers={"Accept": api.NDJSON},
                ) as response:
                    if response.is_success:
                        for line in response.iter_lines():
                            if line.strip():
                                yield api.line_item(call, line)
                        return
                    response.read()
            except httpx.RequestError as exc:
                raise self._unreachable(exc) from exc
            delay = self._delay(response, attempt)
            if delay is None:
                raise api.error_for(response, on_400=call.on_400)
            attempt += 1
            self._sleep(delay)

    def account(self) -> Account:
        """Who the credential belongs to."""
        return self._call(api.get_account())

    def login(
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
        answer = self._call(api.login(email, password))
        if isinstance(answer, SignInChallenge) and (code or recovery_code):
            return self.login_two_factor(answer.challenge, code=code, recovery_code=recovery_code)
        return api.session_of(answer)

    def login_two_factor(
        self, challenge: str, *, code: str | None = None, recovery_code: str | None = None
    ) -> Session:
        """The second step of a sign-in: the challenge and a code or a recovery code."""
        call = api.login_two_factor(challenge, code=code, recovery_code=recovery_code)
        return self._call(call)

    def reauthenticate(
        self, password: str, *, code: str | None = None, recovery_code: str | None = None
    ) -> Session:
        """Confirm it is you (step-up): a fresh session, needed for keys, members, the
        password, second factors and trust policies once a sign-in is 10 minutes old
        (:class:`~paradarum_client.StepUpRequiredError`). Not stored here."""
        call = api.reauthenticate(password, code=code, recovery_code=recovery_code)
        return self._call(call)

    def require_two_factor(self, required: bool = True) -> Account:
        """Require (or stop requiring) a second factor of every member (owners)."""
        return self._call(api.require_two_factor(required))

    def login_with_link(self, token: str) -> Session:
        """Finish a sign-in with the token of the one-time link mailed when the right
        password came from a new address while the account was under attack."""
        return self._call(api.login_with_link(token))

    def forgot_password(self, email: str) -> None:
        """Ask for a link to reset the password of ``email``'s person, sent there by
        email. The answer is the same whether or not the email has an account."""
        self._call(api.forgot_password(email))

    def reset_password(self, token: str, password: str) -> None:
        """Choose a new password with the token from the emailed link (its
        ``#token=`` part). Every session of the person ends; a used or expired
        token raises :class:`ValidationError`."""
        self._call(api.reset_password(token, password))

    def logout(self) -> None:
        """End the session token this client uses."""
        self._call(api.logout())

    def exchange_oidc_token(self, id_token: str, *, policy_id: int | None = None) -> OidcKey:
        """Trade a CI job's OpenID Connect ID token for a short-lived key
        (``POST /api/oidc/token``; the account's trust policy decides the rest).
        ``policy_id`` is needed only when several accounts trust the same workload.
        Any refusal is an :class:`~paradarum_client.AuthenticationError`."""
        return self._call(api.exchange_oidc_token(id_token, policy_id))

    @classmethod
    def from_oidc_token(
        cls,
        id_token: str,
        *,
        base_url: str | None = None,
        policy_id: int | None = None,
        **options: Any,
    ) -> tuple[Client, OidcKey]:
        """A client that uses the key minted for ``id_token``, and that key's facts
        (when it expires, which trust policy made it)."""
        # No credential of its own: the ID token is the only one this request carries.
        with cls(token="", base_url=base_url, **options) as anonymous:
            minted = anonymous.exchange_oidc_token(id_token, policy_id=policy_id)
            base_url = anonymous.base_url
        return cls(minted.key, base_url=base_url, **options), minted

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
    """``client.keys``: the account's API keys."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        name: str,
        **settings: Unpack[api.KeySettings],
    ) -> NewKey:
        """Create a key. The returned ``key`` is the only time it is ever shown.

        Its settings are keyword arguments, each optional
        (:class:`~paradarum_client.protocol.KeySettings`: ``expires_at``,
        ``allowed_cidrs``, ``purge_only``, ``zone_ids``); without them the key has
        full access to the account and never expires. A setting it does not know is
        a ``TypeError``, never a key with fewer restrictions.
        """
        return self._client._call(api.create_key(name, **settings))

    def roll(self, key_id: int, *, grace: timedelta | Literal[0] = 0) -> NewKey:
        """Replace a key with a new one of the same name and settings, shown this once.

        The old key keeps working for ``grace`` (whole minutes, at most 7 days; 0:
        it is revoked now), so that the new one can be deployed first. The answer's
        ``replaces`` is the old key's ID. A grace period out of range is refused
        before anything is sent (:class:`ValidationError`).
        """
        return self._client._call(api.roll_key(key_id, grace))

    def usage(self, key_id: int) -> KeyUsage:
        """Requests made with the key and refused to it, per UTC day, oldest first.

        The server adds up counts in memory and writes them every few seconds, so
        the last seconds of use may be missing from today.
        """
        return self._client._call(api.key_usage(key_id))

    def list(self, *, status: str = "all") -> list[ApiKey]:
        """Every key, newest first (all pages); ``status``: all, active, expired, revoked."""
        return self._client._all(lambda cursor: api.list_keys(status, cursor))

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke for good."""
        return self._client._call(api.revoke_key(key_id))


class Zones:
    """``client.zones``: the hostnames the account may purge, once verified."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def add(self, hostname: str) -> Zone:
        """Add a pending zone; ``verification`` names the DNS TXT record to create."""
        return self._client._call(api.add_zone(hostname))

    def list(self) -> list[Zone]:
        """Every zone, newest first (all pages)."""
        return self._client._all(api.list_zones)

    def verify(self, zone_id: int) -> Zone:
        """Ask the server to look up the TXT record: found, the zone is active.

        Not found: :class:`ValidationError` whose message says what DNS returned.
        """
        return self._client._call(api.verify_zone(zone_id))

    def delete(self, zone_id: int) -> Zone:
        """Delete a zone: its hostname can no longer be purged from this account."""
        return self._client._call(api.delete_zone(zone_id))


class PurgeActions:
    """``client.purge``: ask every cache node to drop URLs, tags or everything."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def urls(self, urls: str | Iterable[str]) -> Purge:
        """Purge 1–100 absolute URLs from every cache node."""
        return self._client._call(api.purge_urls(urls))

    def tags(self, tags: str | Iterable[str]) -> Purge:
        """Purge everything tagged with any of 1–100 cache tags."""
        return self._client._call(api.purge_tags(tags))

    def everything(self) -> Purge:
        """Purge the whole cache."""
        return self._client._call(api.purge_everything())


class Purges:
    """``client.purges``: the purges already asked for, and their results."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Purge]:
        """One page of purges, newest first; pass ``next_cursor`` for the next."""
        return self._client._page(api.list_purges(limit, cursor))

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
        return self._client._call(api.get_purge(purge_id))

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


class Accounts:
    """``client.accounts``: the accounts the signed-in person belongs to (a session
    token only; an API key belongs to one account)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[AccountMembership]:
        """Each account with the person's role in it."""
        return self._client._call(api.list_accounts())

    def switch(self, account_id: int) -> Session:
        """A new session token for another of the person's accounts (not stored here)."""
        return self._client._call(api.switch_account(account_id))

    def accept_invitation(self, token: str) -> AccountMembership:
        """Join the account an invitation (its link's ``token``) is for."""
        return self._client._call(api.accept_invitation(token))


class Members:
    """``client.members``: who belongs to the account, as what, and invitations
    (a session token only)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[Member]:
        """The members, in the order they joined."""
        return self._client._call(api.list_members())

    def invite(self, email: str, role: str) -> Invitation:
        """Email an invitation (valid 7 days, for that address only)."""
        return self._client._call(api.invite(email, role))

    def invitations(self) -> builtins.list[Invitation]:
        """Pending invitations, newest first."""
        return self._client._call(api.list_invitations())

    def withdraw(self, invitation_id: int) -> Invitation:
        """Withdraw a pending invitation: its link stops working."""
        return self._client._call(api.withdraw_invitation(invitation_id))

    def set_role(self, member_id: int, role: str) -> Member:
        """Change a member's role; their keys the new role could not create are revoked."""
        return self._client._call(api.set_role(member_id, role))

    def remove(self, member_id: int, *, keys: Literal["keep", "revoke"]) -> Member:
        """Remove a member (your own id: leave). ``keys``: revoke theirs, or keep them
        working (you vouch for them from then on)."""
        return self._client._call(api.remove_member(member_id, keys))


class TwoFactor:
    """``client.two_factor``: the signed-in person's second factors (a
    session token only). Changes need a recent sign-in (step-up)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def status(self) -> TwoFactorStatus:
        """Whether TOTP is on, the passkeys, the recovery codes left."""
        return self._client._call(api.two_factor_status())

    def start_totp(self) -> TotpEnrolment:
        """A new TOTP secret (and its ``otpauth://`` URI) for an authenticator app;
        on once :meth:`confirm_totp` gets its first code."""
        return self._client._call(api.start_totp())

    def confirm_totp(self, code: str) -> builtins.list[str]:
        """Turn TOTP on with its first code; the ten recovery codes, shown this once."""
        return self._client._call(api.confirm_totp(code))

    def disable_totp(self, code: str) -> None:
        """Turn TOTP off (needs a current code)."""
        self._client._call(api.disable_totp(code))

    def renew_recovery_codes(self) -> builtins.list[str]:
        """Ten new recovery codes; the old ones stop working."""
        return self._client._call(api.renew_recovery_codes())

    def remove_passkey(self, passkey_id: int) -> None:
        """Remove a passkey (passkeys are added in the panel: a browser makes them)."""
        self._client._call(api.remove_passkey(passkey_id))


class Webhooks:
    """``client.webhooks``: where the account's events are sent (Standard Webhooks),
    and what became of each delivery. Adding an endpoint, changing its URL or events
    and rolling its secret need a session token: a key cannot redirect the
    account's events."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, url: str, *, events: Iterable[str]) -> NewWebhook:
        """Add an endpoint for ``events``; the answer's ``secret`` signs every request
        to it, and this is the only time it is shown."""
        return self._client._call(api.create_webhook(url, events))

    def list(self) -> builtins.list[Webhook]:
        """Every endpoint, newest first; never their secrets."""
        return self._client._call(api.list_webhooks())

    def get(self, webhook_id: int) -> Webhook:
        """One endpoint."""
        return self._client._call(api.get_webhook(webhook_id))

    def update(
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
        return self._client._call(call)

    def delete(self, webhook_id: int) -> Webhook:
        """Delete an endpoint and its delivery log."""
        return self._client._call(api.delete_webhook(webhook_id))

    def roll_secret(
        self, webhook_id: int, *, grace: timedelta | Literal[0] | None = None
    ) -> NewWebhook:
        """A new signing secret for the endpoint, shown this once in ``secret``.

        The previous secret signs every request too for ``grace`` (whole minutes, at
        most 7 days; 0: it stops now; None: the server's default, a day), until
        ``previous_secret_expires_at``, so that the receiver can switch without
        refusing an event."""
        return self._client._call(api.roll_webhook_secret(webhook_id, grace))

    def deliveries(
        self, webhook_id: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[WebhookDelivery]:
        """One page of the endpoint's delivery log, newest first."""
        return self._client._page(api.list_deliveries(webhook_id, limit, cursor))

    def iter_deliveries(self, webhook_id: int, *, page_size: int = 50) -> Iterator[WebhookDelivery]:
        """Every delivery to the endpoint, newest first, fetching pages as needed."""
        cursor: str | None = None
        while True:
            page = self.deliveries(webhook_id, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def resend(self, webhook_id: int, delivery_id: int) -> WebhookDelivery:
        """Send a delivery's message again (the same ``webhook-id`` and body) as a new
        delivery, queued now; the answer is that new delivery."""
        return self._client._call(api.resend_delivery(webhook_id, delivery_id))


class Audit:
    """``client.audit``: the account's security log, for a SIEM."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def export(self, *, since: datetime | date | None = None) -> Iterator[AuditEvent]:
        """Every entry of the security log from ``since`` on (a naive ``datetime`` is
        UTC, a ``date`` the start of that day, UTC; None: from the first), oldest
        first, each as it arrives from the server (NDJSON, streamed)."""
        return self._client._each(api.export_audit_log(since))
