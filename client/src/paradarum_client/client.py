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
from typing import Any, Literal

import httpx

from paradarum_client.errors import AlreadyRevokedError, LimitError, ValidationError
from paradarum_client.models import (
    Account,
    AccountMembership,
    AccountSettingsIn,
    ApiKey,
    CodeIn,
    CredentialsIn,
    Invitation,
    InvitationIn,
    InvitationTokenIn,
    KeyUsage,
    Member,
    NewKey,
    OidcKey,
    OidcTokenIn,
    Purge,
    PurgeIn,
    RecoveryCodes,
    RemoveMemberIn,
    RoleIn,
    RollIn,
    Session,
    SignInChallenge,
    SwitchIn,
    TotpEnrolment,
    TwoFactorStatus,
    Zone,
    ZoneIn,
    to_wire,
)
from paradarum_client.protocol import (
    BaseClient,
    Page,
    as_list,
    data_of,
    grace_minutes,
    new_key_body,
    next_cursor,
    parse,
    parse_list,
    parse_new_key,
    parse_purge,
    reauthenticate_body,
    second_step_body,
    session_or_raise,
    signed_in,
)


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

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        on_400: type[ValidationError] = ValidationError,
        retry_limited: bool = True,
    ) -> tuple[Any, httpx.Response]:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.RequestError as exc:
                raise self._unreachable(exc) from exc
            delay = self._delay(response, attempt, retry_limited=retry_limited)
            if delay is None:
                return data_of(response, on_400=on_400), response
            attempt += 1
            self._sleep(delay)

    def account(self) -> Account:
        """Who the credential belongs to."""
        return parse(Account, self._send("GET", "/api/account")[0])

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
        data, _ = self._send(
            "POST",
            "/api/auth/login",
            json=to_wire(CredentialsIn(email=email, password=password)),
            retry_limited=False,
        )
        answer = signed_in(data)
        if isinstance(answer, SignInChallenge) and (code or recovery_code):
            return self.login_two_factor(answer.challenge, code=code, recovery_code=recovery_code)
        return session_or_raise(data)

    def login_two_factor(
        self, challenge: str, *, code: str | None = None, recovery_code: str | None = None
    ) -> Session:
        """The second step of a sign-in: the challenge and a code or a recovery code."""
        body = second_step_body(challenge, code=code, recovery_code=recovery_code)
        data, _ = self._send("POST", "/api/auth/login/two-factor", json=body, retry_limited=False)
        return parse(Session, data)

    def reauthenticate(
        self, password: str, *, code: str | None = None, recovery_code: str | None = None
    ) -> Session:
        """Confirm it is you (step-up): a fresh session, needed for keys, members, the
        password, second factors and trust policies once a sign-in is 10 minutes old
        (:class:`~paradarum_client.StepUpRequiredError`). Not stored here."""
        body = reauthenticate_body(password, code=code, recovery_code=recovery_code)
        data, _ = self._send("POST", "/api/auth/reauthenticate", json=body, retry_limited=False)
        return parse(Session, data)

    def require_two_factor(self, required: bool = True) -> Account:
        """Require (or stop requiring) a second factor of every member (owners)."""
        data, _ = self._send(
            "PATCH",
            "/api/account",
            json=to_wire(AccountSettingsIn(require_two_factor=required)),
        )
        return parse(Account, data)

    def login_with_link(self, token: str) -> Session:
        """Finish a sign-in with the token of the one-time link mailed when the right
        password came from a new address while the account was under attack."""
        data, _ = self._send(
            "POST", "/api/auth/login/link", json={"token": token}, retry_limited=False
        )
        return session_or_raise(data)

    def forgot_password(self, email: str) -> None:
        """Ask for a link to reset the password of ``email``'s person, sent there by
        email. The answer is the same whether or not the email has an account."""
        self._send("POST", "/api/auth/password/forgot", json={"email": email}, retry_limited=False)

    def reset_password(self, token: str, password: str) -> None:
        """Choose a new password with the token from the emailed link (its
        ``#token=`` part). Every session of the person ends; a used or expired
        token raises :class:`ValidationError`."""
        self._send("POST", "/api/auth/password/reset", json={"token": token, "password": password})

    def logout(self) -> None:
        """End the session token this client uses."""
        self._send("POST", "/api/auth/logout")

    def exchange_oidc_token(self, id_token: str, *, policy_id: int | None = None) -> OidcKey:
        """Trade a CI job's OpenID Connect ID token for a short-lived key
        (``POST /api/oidc/token``; the account's trust policy decides the rest).
        ``policy_id`` is needed only when several accounts trust the same workload.
        Any refusal is an :class:`~paradarum_client.AuthenticationError`."""
        body = OidcTokenIn(token=id_token, policy_id=policy_id)
        data, _ = self._send("POST", "/api/oidc/token", json=to_wire(body))
        return parse(OidcKey, data)

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
        *,
        expires_at: datetime | date | timedelta | None = None,
        allowed_cidrs: Iterable[str] | None = None,
        purge_only: bool = False,
        zone_ids: Iterable[int] | None = None,
    ) -> NewKey:
        """Create a key. The returned ``key`` is the only time it is ever shown.

        Every setting is optional; without them the key has full access to the
        account and never expires. ``expires_at``: a moment (naive means UTC), a
        ``date`` (the key works through that day, UTC) or a ``timedelta`` from now, at
        most 366 days ahead. ``allowed_cidrs``: the only
        networks it may be used from. ``purge_only``: purges (and ``account()``)
        only. ``zone_ids``: the only zones it may purge.
        """
        body = new_key_body(
            name,
            expires_at=expires_at,
            allowed_cidrs=allowed_cidrs,
            purge_only=purge_only,
            zone_ids=zone_ids,
        )
        data, _ = self._client._send("POST", "/api/account/apikeys", json=body, on_400=LimitError)
        return parse_new_key(data)

    def roll(self, key_id: int, *, grace: timedelta | Literal[0] = 0) -> NewKey:
        """Replace a key with a new one of the same name and settings, shown this once.

        The old key keeps working for ``grace`` (whole minutes, at most 7 days; 0:
        it is revoked now), so that the new one can be deployed first. The answer's
        ``replaces`` is the old key's ID. A grace period out of range is refused
        before anything is sent (:class:`ValidationError`).
        """
        body = to_wire(RollIn(grace_period_minutes=grace_minutes(grace)))
        data, _ = self._client._send("POST", f"/api/account/apikeys/{int(key_id)}/roll", json=body)
        return parse_new_key(data)

    def usage(self, key_id: int) -> KeyUsage:
        """Requests made with the key and refused to it, per UTC day, oldest first.

        The server adds up counts in memory and writes them every few seconds, so
        the last seconds of use may be missing from today.
        """
        data, _ = self._client._send("GET", f"/api/account/apikeys/{int(key_id)}/usage")
        return parse(KeyUsage, data)

    def list(self, *, status: str = "all") -> list[ApiKey]:
        """Every key, newest first (all pages); ``status``: all, active, expired, revoked."""
        keys: list[ApiKey] = []
        params: dict[str, Any] = {"status": status}
        while True:
            data, response = self._client._send("GET", "/api/account/apikeys", params=params)
            keys += parse_list(ApiKey, data)
            cursor = next_cursor(response)
            if cursor is None:
                return keys
            params = {"status": status, "cursor": cursor}

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke for good."""
        data, _ = self._client._send(
            "DELETE", f"/api/account/apikeys/{int(key_id)}", on_400=AlreadyRevokedError
        )
        return parse(ApiKey, data)


class Zones:
    """``client.zones``: the hostnames the account may purge, once verified."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def add(self, hostname: str) -> Zone:
        """Add a pending zone; ``verification`` names the DNS TXT record to create."""
        data, _ = self._client._send(
            "POST", "/api/account/zones", json=to_wire(ZoneIn(hostname=hostname))
        )
        return parse(Zone, data)

    def list(self) -> list[Zone]:
        """Every zone, newest first (all pages)."""
        zones: list[Zone] = []
        params: dict[str, Any] = {}
        while True:
            data, response = self._client._send("GET", "/api/account/zones", params=params)
            zones += parse_list(Zone, data)
            cursor = next_cursor(response)
            if cursor is None:
                return zones
            params = {"cursor": cursor}

    def verify(self, zone_id: int) -> Zone:
        """Ask the server to look up the TXT record: found, the zone is active.

        Not found: :class:`ValidationError` whose message says what DNS returned.
        """
        data, _ = self._client._send("POST", f"/api/account/zones/{int(zone_id)}/verify")
        return parse(Zone, data)

    def delete(self, zone_id: int) -> Zone:
        """Delete a zone: its hostname can no longer be purged from this account."""
        data, _ = self._client._send("DELETE", f"/api/account/zones/{int(zone_id)}")
        return parse(Zone, data)


class PurgeActions:
    """``client.purge``: ask every cache node to drop URLs, tags or everything."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _request(self, body: PurgeIn) -> Purge:
        return parse_purge(self._client._send("POST", "/api/account/purge", json=to_wire(body))[0])

    def urls(self, urls: str | Iterable[str]) -> Purge:
        """Purge 1–100 absolute URLs from every cache node."""
        return self._request(PurgeIn(urls=as_list(urls)))

    def tags(self, tags: str | Iterable[str]) -> Purge:
        """Purge everything tagged with any of 1–100 cache tags."""
        return self._request(PurgeIn(tags=as_list(tags)))

    def everything(self) -> Purge:
        """Purge the whole cache."""
        return self._request(PurgeIn(everything=True))


class Purges:
    """``client.purges``: the purges already asked for, and their results."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Purge]:
        """One page of purges, newest first; pass ``next_cursor`` for the next."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        data, response = self._client._send("GET", "/api/account/purges", params=params)
        return Page(items=parse_list(Purge, data), next_cursor=next_cursor(response))

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
        return parse(Purge, self._client._send("GET", f"/api/account/purges/{int(purge_id)}")[0])

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
        return parse_list(AccountMembership, self._client._send("GET", "/api/accounts")[0])

    def switch(self, account_id: int) -> Session:
        """A new session token for another of the person's accounts (not stored here)."""
        data, _ = self._client._send(
            "POST", "/api/auth/switch", json=to_wire(SwitchIn(account_id=int(account_id)))
        )
        return parse(Session, data)

    def accept_invitation(self, token: str) -> AccountMembership:
        """Join the account an invitation (its link's ``token``) is for."""
        data, _ = self._client._send(
            "POST", "/api/invitations/accept", json=to_wire(InvitationTokenIn(token=token))
        )
        return parse(AccountMembership, data)


class Members:
    """``client.members``: who belongs to the account, as what, and invitations
    (a session token only)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self) -> list[Member]:
        """The members, in the order they joined."""
        return parse_list(Member, self._client._send("GET", "/api/account/members")[0])

    def invite(self, email: str, role: str) -> Invitation:
        """Email an invitation (valid 7 days, for that address only)."""
        data, _ = self._client._send(
            "POST", "/api/account/invitations", json=to_wire(InvitationIn(email=email, role=role))
        )
        return parse(Invitation, data)

    def invitations(self) -> builtins.list[Invitation]:
        """Pending invitations, newest first."""
        return parse_list(Invitation, self._client._send("GET", "/api/account/invitations")[0])

    def withdraw(self, invitation_id: int) -> Invitation:
        """Withdraw a pending invitation: its link stops working."""
        data, _ = self._client._send("DELETE", f"/api/account/invitations/{int(invitation_id)}")
        return parse(Invitation, data)

    def set_role(self, member_id: int, role: str) -> Member:
        """Change a member's role; their keys the new role could not create are revoked."""
        data, _ = self._client._send(
            "PATCH", f"/api/account/members/{int(member_id)}", json=to_wire(RoleIn(role=role))
        )
        return parse(Member, data)

    def remove(self, member_id: int, *, keys: Literal["keep", "revoke"]) -> Member:
        """Remove a member (your own id: leave). ``keys``: revoke theirs, or keep them
        working (you vouch for them from then on)."""
        data, _ = self._client._send(
            "DELETE",
            f"/api/account/members/{int(member_id)}",
            json=to_wire(RemoveMemberIn(keys=keys)),
        )
        return parse(Member, data)


class TwoFactor:
    """``client.two_factor``: the signed-in person's second factors (a
    session token only). Changes need a recent sign-in (step-up)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def status(self) -> TwoFactorStatus:
        """Whether TOTP is on, the passkeys, the recovery codes left."""
        data, _ = self._client._send("GET", "/api/account/two-factor")
        return parse(TwoFactorStatus, data)

    def start_totp(self) -> TotpEnrolment:
        """A new TOTP secret (and its ``otpauth://`` URI) for an authenticator app;
        on once :meth:`confirm_totp` gets its first code."""
        data, _ = self._client._send("POST", "/api/account/two-factor/totp")
        return parse(TotpEnrolment, data)

    def confirm_totp(self, code: str) -> builtins.list[str]:
        """Turn TOTP on with its first code; the ten recovery codes, shown this once."""
        data, _ = self._client._send(
            "POST", "/api/account/two-factor/totp/confirm", json=to_wire(CodeIn(code=code))
        )
        return parse(RecoveryCodes, data).recovery_codes

    def disable_totp(self, code: str) -> None:
        """Turn TOTP off (needs a current code)."""
        self._client._send(
            "DELETE", "/api/account/two-factor/totp", json=to_wire(CodeIn(code=code))
        )

    def renew_recovery_codes(self) -> builtins.list[str]:
        """Ten new recovery codes; the old ones stop working."""
        data, _ = self._client._send("POST", "/api/account/two-factor/recovery-codes")
        return parse(RecoveryCodes, data).recovery_codes

    def remove_passkey(self, passkey_id: int) -> None:
        """Remove a passkey (passkeys are added in the panel: a browser makes them)."""
        self._client._send("DELETE", f"/api/account/two-factor/passkeys/{int(passkey_id)}")
